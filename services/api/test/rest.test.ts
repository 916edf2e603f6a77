import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { users, waitFor } from '@chatty/db/testing'
import type { GroupCommit } from '@chatty/chat'
import { buildTestApp, countRows, handedOver, startJobs, UNTOUCHED, whileLocked } from './helper.ts'

const { alice, bob, eve } = users
const unknownId = '99999999-9999-4999-8999-999999999999'


const countMessages = (dbUrl: string) => countRows(dbUrl, 'chat.message')
/** Jobs in the queue, waiting, running or failed. */
const queuedJobs = (dbUrl: string) => countRows(dbUrl, 'graphile_worker._private_jobs')

t.test('GET / answers go-chatty\'s status, /healthz and /readyz report health', async (t) => {
  const { app } = await buildTestApp(t)
  t.same((await app.inject('/')).json(), { status: 'OK' })
  t.same((await app.inject('/healthz')).json(), { status: 'ok' })
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok', checks: { postgres: 'ok', bus: 'ok' } })
})

t.test('creating a conversation answers 201 with its id, time and members (repeats dropped)', async (t) => {
  const { app } = await buildTestApp(t)
  const res = await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob, alice] } })
  t.equal(res.statusCode, 201)
  const body = res.json()
  t.match(body, { id: /^[0-9a-f-]{36}$/, participant_ids: [alice, bob] })
  t.ok(Math.abs(Date.parse(body.created_at) - Date.now()) < 60_000, 'created_at is now, in ISO 8601 UTC')
  t.match(body.created_at, /Z$/)
  const members = await app.inject(`/api/v1/chat/${body.id}/participants`)
  t.same(members.json(), { participant_ids: [alice, bob].sort(), participants: [alice, bob].sort().map((user_id) => ({ user_id, role: 'member' })) }, 'no creator: no owner')
})

t.test('a message sent over HTTP is accepted with 202 and appears in the history within a second', async (t) => {
  const { app, dbUrl } = await buildTestApp(t)
  await startJobs(t, dbUrl)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json()
  const started = Date.now()
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/chat/${chat.id}`,
    payload: { sender_id: alice, body: '  hello bob  ', msg_type: 0, attachment_url: null, attachment_meta: { lang: 'en' }, dedupe_key: 'd-1' }
  })
  t.equal(res.statusCode, 202)
  const accepted = res.json()
  t.match(accepted, { task_id: /\S/, message_id: /^[0-9a-f-]{36}$/ })
  const page = await waitFor(async () => {
    const body = (await app.inject(`/api/v1/chat/${chat.id}/messages`)).json()
    return body.count > 0 ? body : undefined
  })
  t.comment(`accepted to readable in ${Date.now() - started} ms`)
  t.same(page.messages, [{
    id: accepted.message_id,
    conversation_id: chat.id,
    sender_id: alice,
    seq: 1,
    created_at: page.messages[0].created_at,
    body: 'hello bob',
    msg_type: 0,
    attachment_url: null,
    attachment_meta: { lang: 'en' },
    dedupe_key: 'd-1',
    ...UNTOUCHED
  }])
  t.same({ limit: page.limit, offset: page.offset, count: page.count }, { limit: 50, offset: 0, count: 1 })

  // The client retries the same send: still one message.
  await app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { sender_id: alice, body: 'hello bob', dedupe_key: 'd-1' } })
  // The marker: a later send through the same queue. Once it is stored and the queue is empty,
  // the retry has been handled too.
  const marker = (await app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { sender_id: bob, body: 'after' } })).json()
  const after = await waitFor(async () => {
    const body = (await app.inject(`/api/v1/chat/${chat.id}/messages`)).json()
    if (!body.messages.some((m: { id: string }) => m.id === marker.message_id)) return undefined
    return await queuedJobs(dbUrl) === 0 ? body : undefined
  }, 'the marker stored and the queue drained')
  t.equal(await countMessages(dbUrl), 2, 'the retried send stored nothing new')
  t.same(after.messages.map((m: { body: string, seq: number }) => [m.seq, m.body]), [[2, 'after'], [1, 'hello bob']])
})


t.test('the jobs service stores many HTTP sends at once: more than its WORKER_CONCURRENCY, in a few statements', async (t) => {
  const { app, dbUrl } = await buildTestApp(t)
  // Ten slots; a send job takes a sixteenth of one, so all forty below run at once.
  const jobs = await startJobs(t, dbUrl, { WORKER_CONCURRENCY: 10 })
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json()
  const group = jobs.chat.writer as GroupCommit
  const before = group.stats()
  const senders = Array.from({ length: 40 }, (_, i) => i % 2 === 0 ? alice : bob)
  let posts: Promise<LightMyRequestResponse[]> | undefined
  await whileLocked(t, dbUrl, chat.id, () => {
    posts = Promise.all(senders.map((sender_id, i) => app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { sender_id, body: `m${i}` } })))
  }, async () => {
    t.same((await posts!).map((res) => res.statusCode), Array(40).fill(202), 'all accepted')
    // The first batch waits for the row; the other messages are in it or wait beside it.
    await waitFor(() => handedOver(group, before) === 40, 'all forty messages in the jobs service\'s store at once')
  })
  await waitFor(async () => await queuedJobs(dbUrl) === 0, 'the queue drained')
  const page = (await app.inject(`/api/v1/chat/${chat.id}/messages?limit=100`)).json()
  t.same(page.messages.map((m: { seq: number }) => m.seq).sort((a: number, b: number) => a - b), Array.from({ length: 40 }, (_, i) => i + 1), 'each stored once, seqs 1..40')
  t.same(page.messages.map((m: { body: string }) => m.body).sort(), senders.map((_, i) => `m${i}`).sort())
  t.ok(group.stats().batches - before.batches <= 3, `stored by a few statements (${group.stats().batches - before.batches})`)
})
t.test('history pages newest first with limit, offset, before_seq and after_seq', async (t) => {
  const { app, dbUrl } = await buildTestApp(t)
  await startJobs(t, dbUrl)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice] } })).json()
  for (let i = 1; i <= 7; i++) {
    t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { sender_id: alice, body: `m${i}`, dedupe_key: `k${i}` } })).statusCode, 202)
  }
  await waitFor(async () => ((await app.inject(`/api/v1/chat/${chat.id}/messages`)).json().count === 7 ? true : undefined))
  const seqs = async (query: string) => (await app.inject(`/api/v1/chat/${chat.id}/messages?${query}`)).json().messages.map((m: { seq: number }) => m.seq)
  t.same(await seqs(''), [7, 6, 5, 4, 3, 2, 1])
  t.same(await seqs('limit=2&offset=1'), [6, 5])
  t.same(await seqs('limit=2&before_seq=4'), [3, 2])
  t.same(await seqs('limit=2&after_seq=4'), [6, 5])
  t.same(new Set((await seqs('limit=100')).map(String)).size, 7, 'every seq once')
})

t.test('bad requests answer the right 4xx with {error, code}, never a 500, and store nothing', async (t) => {
  const { app, dbUrl } = await buildTestApp(t)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json()
  const send = (payload: unknown, id = chat.id) => app.inject({ method: 'POST', url: `/api/v1/chat/${id}`, payload: payload as object })
  const cases: Array<[string, () => Promise<LightMyRequestResponse>, number, string]> = [
    ['invalid chat id in the path', () => send({ sender_id: alice, body: 'x' }, 'not-a-uuid'), 400, 'bad_request'],
    ['invalid sender id', () => send({ sender_id: 'bob', body: 'x' }), 400, 'bad_request'],
    ['missing sender id', () => send({ body: 'x' }), 400, 'bad_request'],
    ['body of the wrong type', () => send({ sender_id: alice, body: 123 }), 400, 'bad_request'],
    ['msg_type as a string', () => send({ sender_id: alice, body: 'x', msg_type: '1' }), 400, 'bad_request'],
    ['msg_type out of range', () => send({ sender_id: alice, body: 'x', msg_type: 9 }), 400, 'bad_request'],
    ['system message from a client', () => send({ sender_id: alice, body: 'x', msg_type: 3 }), 400, 'bad_request'],
    ['a JSON array as the body', () => send([1, 2]), 400, 'bad_request'],
    ['broken JSON', () => app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, headers: { 'content-type': 'application/json' }, payload: '{"sender_id": ' }), 400, 'bad_request'],
    ['empty content', () => send({ sender_id: alice, body: '   ' }), 400, 'bad_request'],
    ['no content at all', () => send({ sender_id: alice }), 400, 'bad_request'],
    ['over-long body', () => send({ sender_id: alice, body: 'x'.repeat(4001) }), 400, 'bad_request'],
    ['image without attachment_url', () => send({ sender_id: alice, msg_type: 1 }), 400, 'bad_request'],
    ['attachment_url that is not http(s)', () => send({ sender_id: alice, body: 'x', attachment_url: 'file:///etc/passwd' }), 400, 'bad_request'],
    ['over-long dedupe_key', () => send({ sender_id: alice, body: 'x', dedupe_key: 'k'.repeat(65) }), 400, 'bad_request'],
    ['request larger than the body limit', () => send({ sender_id: alice, body: 'x'.repeat(70_000) }), 413, 'payload_too_large'],
    ['unknown conversation', () => send({ sender_id: alice, body: 'x' }, unknownId), 404, 'not_found'],
    ['sender who is not a participant', () => send({ sender_id: eve, body: 'x' }), 403, 'forbidden'],
    ['text/plain body', () => app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, headers: { 'content-type': 'text/plain' }, payload: 'hi' }), 415, 'unsupported_media_type'],
    ['create with no participants', () => app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [] } }), 400, 'bad_request'],
    ['create with an invalid participant id', () => app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: ['x'] } }), 400, 'bad_request'],
    ['create with participant_ids not an array', () => app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: alice } }), 400, 'bad_request'],
    ['create with an invalid tenant id', () => app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice], tenant_id: 5 } }), 400, 'bad_request'],
    ['history of an unknown conversation', () => app.inject(`/api/v1/chat/${unknownId}/messages`), 404, 'not_found'],
    ['history with an invalid id', () => app.inject('/api/v1/chat/123/messages'), 400, 'bad_request'],
    ['history with limit=0', () => app.inject(`/api/v1/chat/${chat.id}/messages?limit=0`), 400, 'bad_request'],
    ['history with limit=abc', () => app.inject(`/api/v1/chat/${chat.id}/messages?limit=abc`), 400, 'bad_request'],
    ['history with a negative offset', () => app.inject(`/api/v1/chat/${chat.id}/messages?offset=-1`), 400, 'bad_request'],
    ['history read by a non-member (X-User-Id)', () => app.inject({ url: `/api/v1/chat/${chat.id}/messages`, headers: { 'x-user-id': eve } }), 403, 'forbidden'],
    ['history with an invalid X-User-Id', () => app.inject({ url: `/api/v1/chat/${chat.id}/messages`, headers: { 'x-user-id': 'me' } }), 400, 'bad_request'],
    ['participants of an unknown conversation', () => app.inject(`/api/v1/chat/${unknownId}/participants`), 404, 'not_found'],
    ['participants read by a non-member (X-User-Id)', () => app.inject({ url: `/api/v1/chat/${chat.id}/participants`, headers: { 'x-user-id': eve } }), 403, 'forbidden'],
    ['unknown route', () => app.inject('/api/v1/nope'), 404, 'not_found']
  ]
  for (const [name, call, status, code] of cases) {
    const res = await call()
    t.equal(res.statusCode, status, `${name}: status`)
    const body = res.json()
    t.equal(body.code, code, `${name}: code`)
    t.type(body.error, 'string', `${name}: error text`)
    t.notMatch(res.body, /\bat .+\.ts:\d+/, `${name}: no stack trace`)
  }
  const accepted = await send({ sender_id: bob, body: 'x'.repeat(4000) })
  t.equal(accepted.statusCode, 202, 'a 4000-character body is accepted')
  t.equal(await countMessages(dbUrl), 0, 'nothing was stored by the rejected sends (no worker runs here)')
})

t.test('a reader who is a member may read history and participants with X-User-Id', async (t) => {
  const { app } = await buildTestApp(t)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json()
  const res = await app.inject({ url: `/api/v1/chat/${chat.id}/messages`, headers: { 'x-user-id': bob } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { messages: [], limit: 50, offset: 0, count: 0 })
})

t.test('the OpenAPI document describes every route and the UI is served at /docs', async (t) => {
  const { app } = await buildTestApp(t)
  const ui = await app.inject('/docs/')
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  const doc = (await app.inject('/docs/json')).json()
  t.equal(doc.openapi, '3.1.0')
  for (const path of ['/', '/api/v1/chat', '/api/v1/chat/{chat_id}', '/api/v1/chat/{chat_id}/messages', '/api/v1/chat/{chat_id}/participants', '/api/v1/chat/{chat_id}/mute', '/api/v1/users/{user_id}/blocks', '/api/v1/users/{user_id}/blocks/{blocked_id}', '/healthz', '/readyz']) {
    t.ok(doc.paths[path], `documents ${path}`)
  }
  t.ok(doc.paths['/api/v1/chat/{chat_id}'].post.responses['202'], 'send documents its 202')
  t.ok(doc.paths['/api/v1/chat/{chat_id}'].post.responses['403'], 'and its errors')
})

t.test('bad configuration stops start-up with a message naming the variable', async (t) => {
  await t.rejects(buildTestApp(t, { PORT: 'eighty' }), /PORT/)
  await t.rejects(buildTestApp(t, { QUEUE_BACKEND: 'kafka' }), /QUEUE_BACKEND/)
  await t.rejects(buildTestApp(t, { NODE_ENV: 'production', AUTH_MODE: 'none' }), /AUTH_MODE=none is refused/)
})
