// Typing indicators: members only, throttled per socket and conversation, passed on to the other
// members' joined sockets on every api process, never back to the typist's own sockets, not stored.
import t from 'tap'
import pg from 'pg'
import { onTeardown, users, waitFor } from '@chatty/db/testing'
import type { TypingEventFrame } from '@chatty/client'
import { chatClient, createChat, listen, openSocket, type RawSocket } from './ws-helper.ts'

const { alice, bob, eve, carol } = users

async function joinAll (sockets: RawSocket[], chat: string): Promise<void> {
  for (const socket of sockets) {
    socket.send({ type: 'join', conversation_id: chat })
    await socket.until((frame) => frame.type === 'joined')
  }
}

const typingFrames = (socket: RawSocket) => socket.frames.filter((frame) => frame.type === 'typing')

t.test('typing reaches the other members on every api process, throttled per socket, never echoed to the typist', async (t) => {
  const one = await listen(t)
  const two = await listen(t, {}, one.dbUrl)
  const chat = await createChat(one.app, [alice, bob, carol])
  const a = await openSocket(t, one.url, alice)
  const c = await openSocket(t, two.url, carol)
  const b1 = await openSocket(t, two.url, bob)
  const b2 = await openSocket(t, one.url, bob)
  await joinAll([a, c, b1, b2], chat)

  const expected = { type: 'typing', conversation_id: chat, user_id: bob }
  // Ten in a burst: one is passed on. The message after them on the same socket is handled after
  // them, so once it arrives every typing frame before it has been handled.
  for (let i = 0; i < 10; i++) b1.send({ type: 'typing', conversation_id: chat })
  b1.send({ type: 'message', conversation_id: chat, body: 'barrier', ref: 'm1' })
  await b1.until((frame) => frame.type === 'sent')
  for (const socket of [a, c]) await socket.until((frame) => frame.type === 'message')
  // Markers through the same path after the burst: alice's typing reaches carol and bob, carol's
  // reaches alice; anything more the burst caused arrives before them.
  const typingOf = (user: string) => ({ type: 'typing', conversation_id: chat, user_id: user })
  a.send({ type: 'typing', conversation_id: chat })
  c.send({ type: 'typing', conversation_id: chat })
  await a.until((frame) => frame.type === 'typing' && frame.user_id === carol)
  for (const socket of [c, b1, b2]) await socket.until((frame) => frame.type === 'typing' && frame.user_id === alice)
  t.same(typingFrames(a), [expected, typingOf(carol)], 'a member on the same process as one of bob\'s sockets')
  t.same(typingFrames(c), [expected, typingOf(alice)], 'a member on the other process')
  t.same(typingFrames(b1).filter((frame) => frame.user_id === bob), [], 'not echoed to the typist')
  t.same(typingFrames(b2).filter((frame) => frame.user_id === bob), [], 'nor to the typist\'s other device')

  // The throttle is per socket: Bob's other device is not held back by the first.
  b2.send({ type: 'typing', conversation_id: chat })
  await a.until((frame) => frame.type === 'typing')
  await c.until((frame) => frame.type === 'typing')
  t.equal(typingFrames(a).length, 3)

  // A member that has not joined may type too; the members that joined see it.
  const cNotJoined = await openSocket(t, one.url, carol)
  cNotJoined.send({ type: 'typing', conversation_id: chat })
  t.same(await a.until((frame) => frame.type === 'typing'), { type: 'typing', conversation_id: chat, user_id: carol })
  // The marker: typing from a fresh socket of alice's, through the same path.
  const a2 = await openSocket(t, one.url, alice)
  a2.send({ type: 'typing', conversation_id: chat })
  await c.until((frame) => frame.type === 'typing' && frame.user_id === alice)
  t.same(typingFrames(c).filter((frame) => frame.user_id === carol), [], 'carol\'s joined socket does not see her own typing')
})

t.test('outsiders cannot type into a conversation, every time, and typing stores nothing', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await openSocket(t, url, alice)
  await joinAll([a], chat)
  const e = await openSocket(t, url, eve)
  for (const ref of ['e1', 'e2']) {
    e.send({ type: 'typing', conversation_id: chat, ref })
    t.same(await e.next(), { type: 'error', code: 'forbidden', error: 'user is not a participant in this conversation', ref }, 'not silently throttled either')
  }
  e.send({ type: 'typing', conversation_id: '99999999-9999-4999-8999-999999999999', ref: 'e3' })
  t.equal((await e.next()).code, 'forbidden', 'an unknown conversation')
  e.send({ type: 'typing', ref: 'e4' })
  t.same(await e.next(), { type: 'error', code: 'bad_request', error: 'frame must have required properties conversation_id', ref: 'e4' })
  const b = await openSocket(t, url, bob)
  b.send({ type: 'typing', conversation_id: chat, ref: 'b1' })
  await a.until((frame) => frame.type === 'typing')
  // Markers: typing from bob's second socket through the same path, and a ref'd frame on b whose
  // reply comes after any answer to the typing frame.
  const b2 = await openSocket(t, url, bob)
  b2.send({ type: 'typing', conversation_id: chat })
  await a.until((frame) => frame.type === 'typing')
  t.same(typingFrames(a), [{ type: 'typing', conversation_id: chat, user_id: bob }, { type: 'typing', conversation_id: chat, user_id: bob }], 'only the member\'s')
  b.send({ type: 'join', conversation_id: chat, ref: 'marker' })
  await b.until((frame) => frame.ref === 'marker')
  t.same(b.frames.slice(1).map((frame) => [frame.type, frame.ref]), [['joined', 'marker']], 'a typing frame is not answered, even with a ref')
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  onTeardown(t, () => client.end())
  const { rows } = await client.query('SELECT (SELECT count(*) FROM chat.message)::int AS messages, (SELECT count(*) FROM chat.receipt)::int AS receipts')
  t.same(rows, [{ messages: 0, receipts: 0 }])
})

t.test('the client library: typing() and the typing event', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await chatClient(t, url, alice)
  await a.join(chat)
  const seen: TypingEventFrame[] = []
  a.on('typing', (frame) => seen.push(frame))
  const b = await chatClient(t, url, bob)
  b.typing(chat)
  await waitFor(() => seen.length === 1, 'the typing event', 5000)
  t.same(seen, [{ type: 'typing', conversation_id: chat, user_id: bob }])
})
