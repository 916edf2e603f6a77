// Replies and mentions over the wire (docs/design.md section 8, docs/protocol.md): REST sends
// through the jobs service and websocket sends, thread and top-level history, the inbox's
// unread_mention_count and GET /users/:user_id/mentions, the rules' errors on both paths, and
// what go-chatty's clients (snake_case and camelCase) still see.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { onTeardown, testDatabase, users, waitFor } from '@chatty/db/testing'
import { connectChat, createRestClient, type Message } from '@chatty/client'
import { LIMITS, SEND_MESSAGE_TASK } from '@chatty/chat'
import { DEFAULT_QUEUE } from '@chatty/queue'
import { buildTestApp, query, startJobs } from './helper.ts'
import { createChat, listen, openSocket, rawSocket } from './ws-helper.ts'
import { startService } from './process-helper.ts'

const { alice, bob, carol, dave } = users

t.test('a reply and a mention across two api processes, over the websocket and over HTTP', async (t) => {
  const database = await testDatabase(t)
  const env = { DB_URL: database.url, DB_POOL_MAX: '5' }
  const [api1, api2] = await Promise.all([
    startService(t, 'services/api/src/server.ts', env),
    startService(t, 'services/api/src/server.ts', env),
    startService(t, 'services/jobs/src/server.ts', env)
  ])
  const rest = [createRestClient({ baseUrl: api1!.url }), createRestClient({ baseUrl: api2!.url })] as const
  const { id: chatId } = await rest[0].createChat({ participant_ids: [alice, bob, carol] })
  const received = new Map<string, Message[]>()
  const connect = async (user: string, url: string) => {
    const chat = await connectChat({ url, userId: user, requestTimeoutMs: 30_000 })
    onTeardown(t, () => chat.close())
    const list: Message[] = []
    received.set(user, list)
    chat.on('message', (message) => list.push(message))
    await chat.join(chatId)
    return chat
  }
  const aliceChat = await connect(alice, api1!.url)
  await connect(bob, api2!.url)

  const parent = await aliceChat.send(chatId, { body: 'lunch?' })
  const reply = await aliceChat.send(chatId, { body: 'at noon, @bob', parent_id: parent.id, mentioned_user_ids: [bob] })
  t.equal(reply.parent_id, parent.id)
  t.same(reply.mentioned_user_ids, [bob])
  const bobs = await waitFor(() => received.get(bob)!.find((m) => m.id === reply.id), 'bob, on the other process, to get the reply')
  t.same(bobs, reply, 'bob gets the reply as stored, parent_id and mentions included')

  // Over HTTP to the second process: the jobs service stores it and it reaches alice on the first.
  const accepted = await rest[1].sendMessage(chatId, { sender_id: bob, body: 'fine by me @alice', parent_id: parent.id, mentioned_user_ids: [alice] })
  const overHttp = await waitFor(() => received.get(alice)!.find((m) => m.id === accepted.message_id), 'alice to get the HTTP reply')
  t.equal(overHttp.parent_id, parent.id)
  t.same(overHttp.mentioned_user_ids, [alice])

  const history = await rest[0].listMessages(chatId)
  const stored = history.messages.find((m) => m.id === parent.id)!
  t.equal(stored.reply_count, 2, 'both replies counted on the parent')
  t.equal(stored.last_reply_at, overHttp.created_at, 'last_reply_at is the latest reply\'s created_at')
  t.same((await rest[1].listMessages(chatId, { parent_id: parent.id })).messages.map((m) => m.id), [overHttp.id, reply.id], 'the thread')
  t.same((await rest[1].listMessages(chatId, { top_level: true })).messages.map((m) => m.id), [parent.id], 'top level')

  const inbox = await rest[0].listConversations(bob)
  t.equal(inbox.conversations[0]!.unread_mention_count, 1)
  t.same((await rest[1].mentions(alice)).messages.map((m) => m.id), [overHttp.id])
})

t.test('the rules of a reply and of mentions, over REST and the websocket: 400 / bad_request, nothing stored', async (t) => {
  const { url, app } = await listen(t)
  const jobs = await startJobs(t, app.config.DB_URL, { WORKER_CONCURRENCY: 1 })
  t.ok(jobs)
  // Alice creates it, so she owns it and may add members.
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob, carol], creator_id: alice } })).json().id as string
  const other = await createChat(app, [alice, bob])
  const socket = await openSocket(t, url, alice)
  const send = async (frame: Record<string, unknown>) => {
    const ref = randomUUID()
    socket.send({ type: 'message', conversation_id: chat, body: 'x', ...frame, ref })
    return socket.until((f) => f.ref === ref)
  }
  const parent = (await send({ body: 'parent' })).message
  const reply = (await send({ body: 'reply', parent_id: parent.id })).message
  const elsewhere = (await send({ conversation_id: other, body: 'elsewhere' })).message
  const stranger = randomUUID()
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a reply to a reply', { parent_id: reply.id }, /not itself a reply/],
    ['a parent in another conversation', { parent_id: elsewhere.id }, /of this conversation/],
    ['an unknown parent', { parent_id: randomUUID() }, /of this conversation/],
    ['a parent that is not a uuid', { parent_id: 'p1' }, /parent_id/],
    ['a mention of a non-member', { mentioned_user_ids: [bob, stranger] }, new RegExp(`${stranger} is not a member`)],
    ['a mention twice', { mentioned_user_ids: [bob, bob] }, /twice/],
    [`${LIMITS.mentions + 1} mentions`, { mentioned_user_ids: Array.from({ length: LIMITS.mentions + 1 }, () => randomUUID()) }, /mentioned_user_ids/],
    ['mentions that are not a list', { mentioned_user_ids: bob }, /mentioned_user_ids/],
    ['a mention that is not a uuid', { mentioned_user_ids: ['bob'] }, /mentioned_user_ids/]
  ]
  for (const [what, fields, error] of cases) {
    const frame = await send(fields)
    t.match(frame, { type: 'error', code: 'bad_request', error }, `ws: ${what}`)
    const answer = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: alice, body: 'x', ...fields } })
    t.equal(answer.statusCode, 400, `REST: ${what}`)
    t.match(answer.json(), { code: 'bad_request', error }, `REST: ${what}`)
  }
  const fifty = Array.from({ length: LIMITS.mentions }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`)
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/participants`, payload: { actor_id: alice, user_ids: fifty } })).statusCode, 200)
  const full = await send({ body: 'everyone', mentioned_user_ids: fifty })
  t.equal(full.type, 'sent', `${LIMITS.mentions} mentions are allowed: ${JSON.stringify(full)}`)
  t.same(full.message.mentioned_user_ids, fifty)

  // The marker: a send after the refused ones, over the queue; then the count is final.
  const marker = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: alice, body: 'marker' } })
  await waitFor(async () => (await app.inject({ url: `/api/v1/chat/${chat}/messages?limit=1` })).json().messages[0]?.id === marker.json().message_id, 'the marker to be stored')
  const sql = await query(t, app.config.DB_URL)
  const rows = await sql('SELECT body FROM chat.message WHERE conversation_id = $1 AND msg_type <> 3 ORDER BY seq', [chat])
  t.same(rows.map((r) => r.body), ['parent', 'reply', 'everyone', 'marker'], 'nothing refused was stored')
  t.same(await sql('SELECT reply_count FROM chat.message WHERE id = $1', [parent.id]), [{ reply_count: 1 }])

  const listing = async (search: string) => app.inject({ url: `/api/v1/chat/${chat}/messages?${search}` })
  t.equal((await listing(`parent_id=${randomUUID()}`)).statusCode, 404, 'a thread of an unknown message')
  t.match((await listing(`parent_id=${parent.id}&top_level=true`)).json(), { code: 'bad_request' })
  t.equal((await listing('parent_id=nope')).statusCode, 400)
  t.equal((await listing('top_level=maybe')).statusCode, 400)
  t.match((await app.inject({ url: `/api/v1/users/${bob}/mentions?cursor=nope` })).json(), { code: 'bad_request' })
  t.equal((await app.inject({ url: `/api/v1/users/${bob}/mentions?limit=101` })).statusCode, 400)
})

t.test('a repeat with the same dedupe_key is counted on the parent once, over REST and the websocket', async (t) => {
  const { url, app } = await listen(t)
  await startJobs(t, app.config.DB_URL, { WORKER_CONCURRENCY: 1 })
  const chat = await createChat(app, [alice, bob])
  const socket = await openSocket(t, url, bob)
  socket.send({ type: 'message', conversation_id: chat, body: 'parent', ref: 'p' })
  const parent = (await socket.until((f) => f.ref === 'p')).message
  for (const ref of ['w1', 'w2']) socket.send({ type: 'message', conversation_id: chat, body: 'ws reply', parent_id: parent.id, dedupe_key: 'ws-1', ref })
  const [first, second] = [await socket.until((f) => f.ref === 'w1'), await socket.until((f) => f.ref === 'w2')]
  t.equal(second.message.id, first.message.id, 'the repeat answers the first message')

  const body = { sender_id: alice, body: 'http reply', parent_id: parent.id, dedupe_key: 'http-1' }
  const answers = [await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: body }), await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: body })]
  t.equal(answers[1]!.json().message_id, answers[0]!.json().message_id)
  // One worker runs jobs in order: once the marker is stored, both repeats have run.
  const marker = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: alice, body: 'marker' } })
  await waitFor(async () => (await app.inject({ url: `/api/v1/chat/${chat}/messages?limit=1` })).json().messages[0]?.id === marker.json().message_id, 'the marker to be stored')
  const thread = (await app.inject({ url: `/api/v1/chat/${chat}/messages?parent_id=${parent.id}` })).json()
  t.same(thread.messages.map((m: Message) => m.body), ['http reply', 'ws reply'], 'one of each stored')
  const top = (await app.inject({ url: `/api/v1/chat/${chat}/messages?top_level=true` })).json()
  t.same(top.messages.map((m: Message) => [m.body, m.reply_count]), [['marker', 0], ['parent', 2]], 'the parent counts two replies, not four')
})

t.test('unread_mention_count follows the read position; the mentions route pages newest first, members only, deleted left out', async (t) => {
  const { app } = await buildTestApp(t)
  const chat = await createChat(app, [alice, bob, carol])
  const other = await createChat(app, [alice, bob])
  const post = async (conversation: string, fields: Record<string, unknown>) => {
    const { sendMessage } = await import('@chatty/chat')
    return (await sendMessage(app.chat, { conversationId: conversation, senderId: alice, ...fields })).message
  }
  const m1 = await post(chat, { body: '@bob one', mentioned_user_ids: [bob] })
  const m2 = await post(other, { body: '@bob two', mentioned_user_ids: [bob] })
  const m3 = await post(chat, { body: '@bob @carol three', mentioned_user_ids: [bob, carol] })
  await post(chat, { body: 'not a mention' })
  const inbox = async (user: string) => Object.fromEntries((await app.inject({ url: `/api/v1/users/${user}/conversations` })).json().conversations.map((c: { id: string, unread_mention_count: number }) => [c.id, c.unread_mention_count]))
  t.same(await inbox(bob), { [chat]: 2, [other]: 1 })
  t.same(await inbox(carol), { [chat]: 1 })
  await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/read`, payload: { user_id: bob, message_id: m1.id } })
  t.same(await inbox(bob), { [chat]: 1, [other]: 1 }, 'a read mention is no longer unread')

  const page = async (search = '') => (await app.inject({ url: `/api/v1/users/${bob}/mentions${search}` })).json()
  const first = await page('?limit=2')
  t.same(first.messages.map((m: Message) => m.id), [m3.id, m2.id])
  const second = await page(`?limit=2&cursor=${first.next_cursor}`)
  t.same(second, { messages: [{ ...m1 }], next_cursor: null }, 'the last page, whole messages')

  const deleted = await app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat}/messages/${m3.id}?sender_id=${alice}` })
  t.same(deleted.json().message.mentioned_user_ids, [], 'the tombstone loses its mentions with its content')
  t.same((await page()).messages.map((m: Message) => m.id), [m2.id, m1.id], 'a deleted message no longer mentions anyone')
  t.same(await inbox(bob), { [chat]: 0, [other]: 1 })
  await app.inject({ method: 'DELETE', url: `/api/v1/chat/${other}/participants/${bob}?actor_id=${bob}` })
  t.same((await page()).messages.map((m: Message) => m.id), [m1.id], 'a conversation left is left out')
})

t.test('with AUTH_MODE=jwt the mentions are the token user\'s own: another user_id is 403', async (t) => {
  const secret = 'a-secret-of-at-least-32-characters-for-tests'
  const { app } = await buildTestApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: secret })
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(bob).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(secret))
  const headers = { authorization: `Bearer ${token}` }
  t.equal((await app.inject({ url: `/api/v1/users/${bob}/mentions`, headers })).statusCode, 200)
  const other = await app.inject({ url: `/api/v1/users/${alice}/mentions`, headers })
  t.equal(other.statusCode, 403)
  t.equal(other.json().code, 'forbidden')
  t.equal((await app.inject({ url: `/api/v1/users/${bob}/mentions` })).statusCode, 401, 'no token')
})

t.test('go-chatty clients: camelCase sends may reply and mention; old send jobs without the new fields still store', async (t) => {
  const { url, app } = await listen(t)
  await startJobs(t, app.config.DB_URL)
  const chat = await createChat(app, [alice, bob, dave])
  const camel = rawSocket(t, url, { userId: alice })
  t.same(await camel.next(), { type: 'connected' })
  camel.send({ type: 'join', conversationId: chat })
  await camel.until((f) => f.type === 'joined')
  const snake = await openSocket(t, url, bob)
  snake.send({ type: 'join', conversation_id: chat })
  await snake.until((f) => f.type === 'joined')

  // A go-chatty snake_case frame, none of the new fields: the message it knew, plus fields to ignore.
  snake.send({ type: 'message', conversation_id: chat, body: 'old style', msg_type: 0, attachment_url: null, attachment_meta: null, dedupe_key: null })
  const old = (await snake.until((f) => f.type === 'message')).message
  t.match(old, { conversation_id: chat, sender_id: bob, body: 'old style', msg_type: 0, attachment_url: null, attachment_meta: null, dedupe_key: null })
  t.same([old.parent_id, old.reply_count, old.last_reply_at, old.mentioned_user_ids], [null, 0, null, []])

  camel.send({ type: 'message', conversationId: chat, body: 'camel reply', parentId: old.id, mentionedUserIds: [bob] })
  const camelFrame = await camel.until((f) => f.type === 'message' && f.message.body === 'camel reply')
  t.match(camelFrame.message, { parentId: old.id, mentionedUserIds: [bob] })
  t.notOk('lastReplyAt' in camelFrame.message, 'nulls left out, as go-chatty does')
  t.notOk('replyCount' in camelFrame.message || 'reactions' in camelFrame.message, 'and empty additions: no replies, no reactions yet')
  const snakeFrame = await snake.until((f) => f.type === 'message' && f.message.body === 'camel reply')
  t.equal(snakeFrame.message.parent_id, old.id)

  const rest = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { senderId: dave, body: 'camel http', parentId: old.id, mentionedUserIds: [alice] } })
  t.equal(rest.statusCode, 202)
  const overHttp = await snake.until((f) => f.type === 'message' && f.message.id === rest.json().message_id)
  t.same([overHttp.message.parent_id, overHttp.message.mentioned_user_ids], [old.id, [alice]])

  // A send job queued by an api from before replies: its content has none of the new fields.
  const id = randomUUID()
  await app.queue.enqueue({
    type: SEND_MESSAGE_TASK,
    payload: { message_id: id, conversation_id: chat, sender_id: dave, content: { body: 'old job', msg_type: 0, attachment_url: null, attachment_meta: null, dedupe_key: null } }
  }, { queue: DEFAULT_QUEUE })
  const fromOldJob = await snake.until((f) => f.type === 'message' && f.message.id === id, 15_000)
  t.same([fromOldJob.message.body, fromOldJob.message.parent_id, fromOldJob.message.mentioned_user_ids], ['old job', null, []])
  const history = (await app.inject({ url: `/api/v1/chat/${chat}/messages?top_level=true` })).json()
  t.same(history.messages.map((m: Message) => [m.body, m.reply_count]), [['old job', 0], ['old style', 2]])
})
