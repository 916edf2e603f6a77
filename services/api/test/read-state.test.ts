// Read state: the read position (never backwards), read and delivered receipts, the read frame
// to the other members' sockets on every api process, and unread counts.
import t from 'tap'
import { query, storeMessages } from './helper.ts'
import { createRestClient, type ReadEventFrame } from '@chatty/client'
import { users, waitFor } from '@chatty/db/testing'
import { chatClient, createChat, listen, openSocket } from './ws-helper.ts'

const { alice, bob, eve, carol } = users

t.test('a member marks messages read over REST: the position moves forwards only, receipts are written, others see it live', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const sql = await query(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const a = await openSocket(t, url, alice)
  a.send({ type: 'join', conversation_id: chat })
  await a.until((frame) => frame.type === 'joined')
  const ids = await storeMessages(app, chat, alice, 4)
  await a.until((frame) => frame.type === 'message' && frame.message.seq === 4)

  const read = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/read`, payload: { user_id: bob, message_id: ids[1] } })
  t.equal(read.statusCode, 200)
  t.same(read.json(), { conversation_id: chat, user_id: bob, message_id: ids[1], seq: 2, unread_count: 2 })
  t.same(await a.next(), { type: 'read', conversation_id: chat, user_id: bob, message_id: ids[1], seq: 2 }, 'the other member\'s socket gets the read frame')

  const back = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/read`, payload: { user_id: bob, message_id: ids[0] } })
  t.same(back.json(), { conversation_id: chat, user_id: bob, message_id: ids[1], seq: 2, unread_count: 2 }, 'an older message does not move the position back')
  const upper = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/read`, payload: { user_id: bob.toUpperCase(), message_id: ids[3]!.toUpperCase() } })
  t.same(upper.json(), { conversation_id: chat, user_id: bob, message_id: ids[3], seq: 4, unread_count: 0 }, 'ids are case-insensitive; the answer has them as stored')
  t.same(await a.next(), { type: 'read', conversation_id: chat, user_id: bob, message_id: ids[3], seq: 4 }, 'no frame for the read that did not move')

  t.same(await sql('SELECT last_read_msg FROM chat.participant WHERE conversation_id = $1 AND user_id = $2', [chat, bob]), [{ last_read_msg: ids[3] }])
  const receipts = await sql<{ message_id: string, status: number }>('SELECT message_id, status FROM chat.receipt WHERE user_id = $1 ORDER BY status, message_id', [bob])
  t.same(receipts.map((row) => [row.message_id, row.status]).sort(), [ids[0], ids[1], ids[3]].map((id) => [id, 1]).sort(), 'a read receipt for each message named')

  // Alice's own messages never count as unread for her.
  const own = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/read`, payload: { user_id: alice, message_id: ids[0] } })
  t.equal(own.json().unread_count, 0)
})

t.test('bad reads: 400 for bad input, 404 for a message of another conversation, 403 for outsiders, and nothing is written', async (t) => {
  const { app, dbUrl } = await listen(t)
  const sql = await query(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const other = await createChat(app, [alice, bob])
  const [mine] = await storeMessages(app, chat, alice, 1)
  const [elsewhere] = await storeMessages(app, other, alice, 1)
  const post = (payload: unknown, chatId = chat) => app.inject({ method: 'POST', url: `/api/v1/chat/${chatId}/read`, payload: payload as object })
  const cases: Array<[string, Awaited<ReturnType<typeof post>>, number, string]> = [
    ['no user_id', await post({ message_id: mine }), 400, 'bad_request'],
    ['no message_id', await post({ user_id: bob }), 400, 'bad_request'],
    ['message_id not a uuid', await post({ user_id: bob, message_id: 'm-1' }), 400, 'bad_request'],
    ['a message of another conversation', await post({ user_id: bob, message_id: elsewhere }), 404, 'not_found'],
    ['an unknown message', await post({ user_id: bob, message_id: '99999999-9999-4999-8999-999999999999' }), 404, 'not_found'],
    ['an unknown conversation', await post({ user_id: bob, message_id: mine }, '99999999-9999-4999-8999-999999999999'), 404, 'not_found'],
    ['an outsider', await post({ user_id: eve, message_id: mine }), 403, 'forbidden']
  ]
  for (const [name, res, status, code] of cases) {
    t.equal(res.statusCode, status, name)
    t.equal(res.json().code, code, name)
  }
  t.same(await sql('SELECT count(*)::int AS n FROM chat.receipt'), [{ n: 0 }])
  t.same(await sql('SELECT count(*)::int AS n FROM chat.participant WHERE last_read_msg IS NOT NULL'), [{ n: 0 }])
})

t.test('read and delivered frames: replies with ref, the broadcast reaches members on another api process, receipts are stored once', async (t) => {
  const one = await listen(t)
  const two = await listen(t, {}, one.dbUrl)
  const sql = await query(t, one.dbUrl)
  const chat = await createChat(one.app, [alice, bob, carol])
  const ids = await storeMessages(one.app, chat, alice, 3)
  // Alice and Bob's second device on process two, Bob on process one.
  const a = await openSocket(t, two.url, alice)
  const bOther = await openSocket(t, two.url, bob)
  const b = await openSocket(t, one.url, bob)
  for (const socket of [a, bOther]) {
    socket.send({ type: 'join', conversation_id: chat })
    await socket.until((frame) => frame.type === 'joined')
  }

  b.send({ type: 'read', conversation_id: chat, message_id: ids[1], ref: 'r1' })
  t.same(await b.next(), { type: 'read', conversation_id: chat, user_id: bob, message_id: ids[1], seq: 2, unread_count: 1, ref: 'r1' }, 'the reader gets the reply with its ref and unread count')
  const broadcast = { type: 'read', conversation_id: chat, user_id: bob, message_id: ids[1], seq: 2 }
  t.same(await a.next(), broadcast, 'another member on another process sees it')
  t.same(await bOther.next(), broadcast, 'so does the reader\'s other device')

  b.send({ type: 'read', conversation_id: chat, message_id: ids[0] })
  t.same(await b.next(), { type: 'read', conversation_id: chat, user_id: bob, message_id: ids[1], seq: 2, unread_count: 1 }, 'a read behind the position answers the position')

  b.send({ type: 'delivered', conversation_id: chat, message_id: ids[2], ref: 7 })
  t.same(await b.next(), { type: 'delivered', conversation_id: chat, user_id: bob, message_id: ids[2], seq: 3, ref: 7 })
  b.send({ type: 'delivered', conversation_id: chat, message_id: ids[2], ref: 8 })
  t.same(await b.next(), { type: 'delivered', conversation_id: chat, user_id: bob, message_id: ids[2], seq: 3, ref: 8 }, 'a repeat is answered too')
  b.send({ type: 'delivered', conversation_id: chat, message_id: ids[0] })
  b.send({ type: 'read', conversation_id: chat, message_id: ids[2], ref: 'last' })
  await b.until((frame) => frame.ref === 'last')
  t.same(await sql('SELECT status, count(*)::int AS n FROM chat.receipt WHERE user_id = $1 GROUP BY status ORDER BY status', [bob]),
    [{ status: 0, n: 2 }, { status: 1, n: 3 }], 'delivered receipts once per message; read receipts per message named')

  // Errors keep the socket open and write nothing.
  const other = await createChat(one.app, [bob])
  const [elsewhere] = await storeMessages(one.app, other, bob, 1)
  b.send({ type: 'read', conversation_id: chat, message_id: elsewhere, ref: 'x1' })
  t.same(await b.next(), { type: 'error', code: 'bad_request', error: 'message not found in this conversation', ref: 'x1' })
  b.send({ type: 'read', conversation_id: chat, ref: 'x2' })
  t.same(await b.next(), { type: 'error', code: 'bad_request', error: 'frame must have required properties message_id', ref: 'x2' })
  b.send({ type: 'delivered', conversation_id: chat, message_id: 'nope', ref: 'x3' })
  t.same(await b.next(), { type: 'error', code: 'bad_request', error: 'message_id must match format "uuid"', ref: 'x3' })
  const e = await openSocket(t, one.url, eve)
  e.send({ type: 'read', conversation_id: chat, message_id: ids[2], ref: 'e1' })
  t.same(await e.next(), { type: 'error', code: 'forbidden', error: 'user is not a participant in this conversation', ref: 'e1' })
  e.send({ type: 'delivered', conversation_id: chat, message_id: ids[2], ref: 'e2' })
  t.same(await e.next(), { type: 'error', code: 'forbidden', error: 'user is not a participant in this conversation', ref: 'e2' })
  t.same(await sql('SELECT count(*)::int AS n FROM chat.receipt WHERE user_id = $1', [eve]), [{ n: 0 }])
  // The marker: a later read move, broadcast through the same path; anything else came before it.
  const c = await openSocket(t, one.url, carol)
  c.send({ type: 'read', conversation_id: chat, message_id: ids[2] })
  await a.until((frame) => frame.type === 'read' && frame.user_id === carol)
  t.same(a.frames.filter((frame) => frame.type === 'read').map((frame) => frame.user_id), [bob, bob, carol], 'only moves are broadcast')
  t.notOk(a.frames.some((frame) => frame.type === 'delivered'), 'delivered receipts are not broadcast')
})

t.test('concurrent reads of one member end at the furthest message', async (t) => {
  const { app, dbUrl } = await listen(t)
  const sql = await query(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const ids = await storeMessages(app, chat, alice, 30)
  const order = [...ids].sort(() => Math.random() - 0.5)
  const answers = await Promise.all(order.map((id) => app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/read`, payload: { user_id: bob, message_id: id } })))
  t.ok(answers.every((res) => res.statusCode === 200))
  t.same(await sql('SELECT last_read_msg FROM chat.participant WHERE conversation_id = $1 AND user_id = $2', [chat, bob]), [{ last_read_msg: ids[29] }])
  t.equal(answers.find((res) => res.json().message_id === ids[29]) !== undefined, true)
})

t.test('the client library: markRead over REST and the socket, the read event, markDelivered', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const ids = await storeMessages(app, chat, alice, 3)
  const a = await chatClient(t, url, alice)
  await a.join(chat)
  const seen: ReadEventFrame[] = []
  a.on('read', (frame) => seen.push(frame))
  const b = await chatClient(t, url, bob)
  t.same(await b.markRead(chat, ids[0]!), { type: 'read', conversation_id: chat, user_id: bob, message_id: ids[0], seq: 1, unread_count: 2, ref: 'r1' })
  const rest = createRestClient({ baseUrl: url })
  t.same(await rest.markRead(chat, { user_id: bob, message_id: ids[2]! }), { conversation_id: chat, user_id: bob, message_id: ids[2], seq: 3, unread_count: 0 })
  await waitFor(() => seen.length === 2, 'two read events', 5000)
  t.same(seen.map((frame) => frame.seq), [1, 3])
  t.same(await b.markDelivered(chat, ids[1]!), { type: 'delivered', conversation_id: chat, user_id: bob, message_id: ids[1], seq: 2, ref: 'r2' })
  await t.rejects(rest.markRead(chat, { user_id: eve, message_id: ids[0]! }), { status: 403, code: 'forbidden' })
})
