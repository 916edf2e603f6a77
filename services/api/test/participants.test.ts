// Adding and removing members: owners manage, anyone may leave, every change is a system message
// delivered live, and a removed member's sockets stop receiving at once, on every api process.
import t from 'tap'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { createRestClient } from '@chatty/client'
import { users, waitFor } from '@chatty/db/testing'
import { chatClient, listen, openSocket, type Frame } from './ws-helper.ts'

const { alice, bob, eve, carol, dave } = users

async function createOwned (app: FastifyInstance, creator: string, others: string[]): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: others, creator_id: creator } })
  if (res.statusCode !== 201) throw new Error(res.body)
  return res.json().id
}

const add = (app: FastifyInstance, chat: string, actor: string, userIds: string[]) =>
  app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/participants`, payload: { actor_id: actor, user_ids: userIds } })
const remove = (app: FastifyInstance, chat: string, actor: string, userId: string) =>
  app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat}/participants/${userId}?actor_id=${actor}` })

async function rows (dbUrl: string, sql: string, values: unknown[] = []): Promise<any[]> {
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  try {
    return (await client.query(sql, values)).rows
  } finally {
    await client.end()
  }
}

const isSystem = (frame: Frame) => frame.type === 'message' && frame.message.msg_type === 3

t.test('an owner adds a member: a system message is delivered live and the new member can join and send at once', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const chat = await createOwned(app, alice, [bob])
  t.same((await app.inject(`/api/v1/chat/${chat}/participants`)).json(), {
    participant_ids: [alice, bob],
    participants: [{ user_id: alice, role: 'owner' }, { user_id: bob, role: 'member' }]
  }, 'the creator is the owner')
  const a = await openSocket(t, url, alice)
  const b = await openSocket(t, url, bob)
  a.send({ type: 'join', conversation_id: chat })
  b.send({ type: 'join', conversation_id: chat })
  await a.until((f) => f.type === 'joined')
  await b.until((f) => f.type === 'joined')

  const added = await add(app, chat, alice, [carol, bob, carol])
  t.equal(added.statusCode, 200)
  const body = added.json()
  t.same(body.participant_ids, [alice, bob, carol])
  t.match(body.message, { conversation_id: chat, sender_id: alice, seq: 1, msg_type: 3, attachment_meta: { event: 'participants_added', actor_id: alice, user_ids: [carol] } })
  t.type(body.message.body, 'string')
  for (const socket of [a, b]) {
    const frame = await socket.until(isSystem)
    t.same(frame, { type: 'message', conversation_id: chat, message: body.message }, 'the system message reaches every member live')
  }

  const c = await openSocket(t, url, carol)
  c.send({ type: 'join', conversation_id: chat, ref: 'j' })
  t.same(await c.next(), { type: 'joined', conversation_id: chat, last_seq: 1, ref: 'j' }, 'the added member joins at once')
  c.send({ type: 'message', conversation_id: chat, body: 'hello, I am new', ref: 's' })
  t.equal((await c.until((f) => f.type === 'sent')).message.seq, 2)
  t.equal((await a.until((f) => f.type === 'message' && f.message.seq === 2)).message.body, 'hello, I am new')

  const again = await add(app, chat, alice, [carol])
  t.equal(again.statusCode, 200)
  t.same(again.json(), { conversation_id: chat, participant_ids: [alice, bob, carol], message: null }, 'adding a member again changes nothing')
  t.same(await rows(dbUrl, 'SELECT count(*)::int AS n FROM chat.message'), [{ n: 2 }], 'and stores no message')
})

t.test('only an owner adds or removes others; a refused change has no side effect', async (t) => {
  const { app, dbUrl } = await listen(t)
  const chat = await createOwned(app, alice, [bob, carol])
  const before = await rows(dbUrl, 'SELECT user_id, role FROM chat.participant ORDER BY user_id')
  const refused = [
    ['a member adds', await add(app, chat, bob, [eve])],
    ['a member removes another', await remove(app, chat, bob, carol)],
    ['an outsider adds', await add(app, chat, eve, [eve])],
    ['an outsider removes', await remove(app, chat, eve, bob)],
    ['an outsider leaves', await remove(app, chat, eve, eve)]
  ] as const
  for (const [name, res] of refused) {
    t.equal(res.statusCode, 403, name)
    t.equal(res.json().code, 'forbidden', name)
  }
  t.same(await rows(dbUrl, 'SELECT user_id, role FROM chat.participant ORDER BY user_id'), before, 'members unchanged')
  t.same(await rows(dbUrl, 'SELECT count(*)::int AS n FROM chat.message'), [{ n: 0 }], 'no system message')
  t.equal((await remove(app, chat, alice, dave)).statusCode, 404, 'removing a user who is not a member is 404')
  t.equal((await add(app, '00000000-0000-4000-8000-000000000000', alice, [bob])).statusCode, 404, 'unknown conversation')
  t.equal((await add(app, chat, alice, [])).statusCode, 400, 'no users')
  t.equal((await add(app, chat, alice, ['not-a-uuid'])).statusCode, 400, 'bad uuid')
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/participants`, payload: { user_ids: [dave] } })).statusCode, 400, 'no actor in none mode')
  t.equal((await app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat}/participants/${bob}` })).statusCode, 400, 'no actor in none mode')
})

t.test('a removed member is told, stops receiving at once, and can no longer join, send or read', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createOwned(app, alice, [bob, carol])
  const a = await openSocket(t, url, alice)
  const b = await openSocket(t, url, bob)
  const b2 = await openSocket(t, url, bob)
  for (const socket of [a, b, b2]) {
    socket.send({ type: 'join', conversation_id: chat })
    await socket.until((f) => f.type === 'joined')
  }
  const res = await remove(app, chat, alice, bob)
  t.equal(res.statusCode, 200)
  const { message } = res.json()
  t.match(message, { seq: 1, msg_type: 3, attachment_meta: { event: 'participants_removed', actor_id: alice, user_ids: [bob] } })
  t.same(res.json().participant_ids, [alice, carol])
  for (const socket of [b, b2]) {
    t.same(await socket.next(), { type: 'message', conversation_id: chat, message }, 'the removed member sees the system message')
    t.same(await socket.next(), { type: 'removed', conversation_id: chat, user_id: bob }, 'then a removed frame, on each of their sockets')
  }
  a.send({ type: 'message', conversation_id: chat, body: 'after bob left', ref: 1 })
  await a.until((f) => f.type === 'message' && f.message.body === 'after bob left')

  b.send({ type: 'message', conversation_id: chat, body: 'still here?', ref: 'send' })
  t.match(await b.next(), { type: 'error', code: 'forbidden', ref: 'send' }, 'cannot send')
  b.send({ type: 'join', conversation_id: chat, ref: 'join' })
  t.match(await b.next(), { type: 'error', code: 'forbidden', ref: 'join' }, 'cannot join again')
  t.equal((await app.inject({ url: `/api/v1/chat/${chat}/messages`, headers: { 'x-user-id': bob } })).statusCode, 403, 'cannot read')
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: bob, body: 'x' } })).statusCode, 403, 'cannot send over HTTP')
  t.notOk(b.frames.concat(b2.frames).some((f) => f.type === 'message' && f.message.body === 'after bob left'), 'nothing after the removal reached bob')
  t.same(a.frames.filter((f) => f.type === 'removed'), [], 'other members get no removed frame')

  // Added back, bob joins again and receives what follows.
  t.equal((await add(app, chat, alice, [bob])).statusCode, 200)
  b.send({ type: 'join', conversation_id: chat, ref: 'back' })
  t.match(await b.until((f) => f.ref === 'back'), { type: 'joined' })
})

t.test('a member leaves; when the last owner leaves another member becomes owner', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createOwned(app, alice, [bob, carol])
  const c = await openSocket(t, url, carol)
  c.send({ type: 'join', conversation_id: chat })
  await c.until((f) => f.type === 'joined')
  const left = await remove(app, chat, carol, carol)
  t.equal(left.statusCode, 200)
  t.match(left.json().message.attachment_meta, { event: 'participants_removed', actor_id: carol, user_ids: [carol] })
  t.same(await c.until((f) => f.type === 'removed'), { type: 'removed', conversation_id: chat, user_id: carol }, 'leaving also ends the membership on the socket')

  const ownerLeft = await remove(app, chat, alice, alice)
  t.equal(ownerLeft.statusCode, 200)
  t.match(ownerLeft.json().message.attachment_meta, { event: 'participants_removed', user_ids: [alice], promoted_id: bob })
  t.same((await app.inject(`/api/v1/chat/${chat}/participants`)).json().participants, [{ user_id: bob, role: 'owner' }])
  t.equal((await add(app, chat, bob, [dave])).statusCode, 200, 'the new owner can add members')
})

t.test('two api processes: a removal made on one drops the member\'s sockets on the other; an added member joins there at once', async (t) => {
  // An hour-long cache TTL: only invalidation (or the recheck of a miss) can let the second process notice.
  const config = { MEMBERSHIP_CACHE_TTL_MS: 3_600_000 }
  const first = await listen(t, config)
  const second = await listen(t, config, first.dbUrl)
  const chat = await createOwned(first.app, alice, [bob])
  const b = await openSocket(t, second.url, bob)
  const a = await openSocket(t, second.url, alice)
  for (const socket of [a, b]) {
    socket.send({ type: 'join', conversation_id: chat })
    await socket.until((f) => f.type === 'joined')
  }
  // The second process has the member list cached (the joins above read it).
  const d = await openSocket(t, second.url, dave)
  d.send({ type: 'join', conversation_id: chat, ref: 'early' })
  t.match(await d.next(), { type: 'error', code: 'forbidden', ref: 'early' })

  t.equal((await add(first.app, chat, alice, [dave])).statusCode, 200)
  d.send({ type: 'join', conversation_id: chat, ref: 'now' })
  t.match(await d.next(), { type: 'joined', ref: 'now' }, 'the added member joins on the other process at once')

  const removed = await remove(first.app, chat, alice, bob)
  t.equal(removed.statusCode, 200)
  t.same(await b.until((f) => f.type === 'removed'), { type: 'removed', conversation_id: chat, user_id: bob })
  t.equal(b.frames.filter(isSystem).at(-1)?.message.seq, removed.json().message.seq, 'the system message came first')

  d.send({ type: 'message', conversation_id: chat, body: 'bob is gone', ref: 'd' })
  await a.until((f) => f.type === 'message' && f.message.body === 'bob is gone')
  t.notOk(b.frames.some((f) => f.type === 'message' && f.message.body === 'bob is gone'), 'the removed member got nothing after the removal')
  await waitFor(async () => {
    b.send({ type: 'message', conversation_id: chat, body: 'let me back', ref: 'retry' })
    const answer = await b.until((f) => f.ref === 'retry')
    return answer.type === 'error' && answer.code === 'forbidden' ? true : undefined
  }, { timeoutMs: 5000 })
  t.pass('and the other process refuses their sends')
})

t.test('@chatty/client: members with roles, add and remove, and the removed event', async (t) => {
  const { url } = await listen(t)
  const rest = createRestClient({ baseUrl: url })
  const chat = (await rest.createChat({ participant_ids: [bob], creator_id: alice })).id
  const bobChat = await chatClient(t, url, bob)
  await bobChat.join(chat)
  const removed = new Promise<string>((resolve) => bobChat.once('removed', resolve))
  const change = await rest.addParticipants(chat, [carol], { actorId: alice })
  t.same(change.participant_ids, [alice, bob, carol])
  t.same(await rest.listMembers(chat), [{ user_id: alice, role: 'owner' }, { user_id: bob, role: 'member' }, { user_id: carol, role: 'member' }])
  await t.rejects(rest.addParticipants(chat, [dave], { actorId: bob }), { status: 403, code: 'forbidden' })
  await rest.removeParticipant(chat, bob, { actorId: alice })
  t.equal(await removed, chat)
  t.same(bobChat.joined(), [], 'the client stops tracking (and rejoining) the conversation')
  t.equal(bobChat.received.at(-1)?.msg_type, 3, 'the last message it got is the removal')
})
