// The websocket protocol (docs/design.md section 4, docs/protocol.md) against a listening server with
// real ws clients: frames byte for byte, every error case, devices, rooms, limits and liveness.
import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { FrameError } from '@chatty/client'
import { conversationTopic } from '@chatty/bus'
import { storeMessage, type GroupCommit } from '@chatty/chat'
import { users, waitFor } from '@chatty/db/testing'
import { messageFrame } from '../src/socket/frames.ts'
import { handedOver, startJobs, UNTOUCHED, whileLocked } from './helper.ts'
import { chatClient, createChat, listen, openSocket, rawSocket, type Frame } from './ws-helper.ts'

const { alice, bob, eve, carol } = users
const unknownChat = '99999999-9999-4999-8999-999999999999'

function isMessage (frame: Frame): boolean {
  return frame.type === 'message'
}

t.test('a missing or invalid user_id is refused with a 400 JSON error before the upgrade', async (t) => {
  const { url } = await listen(t)
  for (const [query, error] of [
    [{}, 'querystring must have required property \'user_id\''],
    [{ user_id: 'not-a-uuid' }, 'querystring/user_id must match format "uuid"']
  ] as const) {
    const socket = rawSocket(t, url, query)
    const refused = await socket.refused
    t.same(refused, { status: 400, body: { error, code: 'bad_request' } }, JSON.stringify(query))
    await socket.closed
  }
  const plain = await fetch(`${url}/api/v1/chat/ws?user_id=${alice}`)
  t.equal(plain.status, 426, 'a plain GET is told to upgrade')
  t.same(await plain.json(), { error: 'this endpoint is a websocket: connect with an Upgrade request', code: 'upgrade_required' })
})

t.test('go-chatty frames: connected, joined, left, and one broadcast string for every joined socket', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = rawSocket(t, url, { user_id: alice })
  t.equal(await a.next().then(() => a.texts[0]), '{"type":"connected"}', 'the greeting is exactly go-chatty\'s')
  const b = await openSocket(t, url, bob)

  a.send({ type: 'join', conversation_id: chat })
  t.same(await a.next(), { type: 'joined', conversation_id: chat, last_seq: 0 }, 'no ref asked, none echoed')
  b.send({ type: 'join', conversation_id: chat })
  t.same(await b.next(), { type: 'joined', conversation_id: chat, last_seq: 0 })

  a.send({ type: 'message', conversation_id: chat, body: ' hello ', msg_type: 0, attachment_url: null, attachment_meta: { k: 'v' }, dedupe_key: 'a-1' })
  const toAlice = await a.next()
  const toBob = await b.next()
  t.same(toAlice, {
    type: 'message',
    conversation_id: chat,
    message: {
      id: toAlice.message.id,
      conversation_id: chat,
      sender_id: alice,
      seq: 1,
      created_at: toAlice.message.created_at,
      body: 'hello',
      msg_type: 0,
      attachment_url: null,
      attachment_meta: { k: 'v' },
      dedupe_key: 'a-1',
      ...UNTOUCHED
    }
  }, 'the sender gets the broadcast too, with the whole message object')
  t.match(toAlice.message.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.equal(a.texts.at(-1), b.texts.at(-1), 'every receiver gets the same serialised frame')
  t.same(Object.keys(toAlice.message), ['id', 'conversation_id', 'sender_id', 'seq', 'created_at', 'body', 'msg_type', 'attachment_url', 'attachment_meta', 'dedupe_key', 'edited_at', 'deleted_at',
    // go-chatty's fields first, in its order; then chatty's, which its clients ignore.
    'parent_id', 'reply_count', 'last_reply_at', 'mentioned_user_ids', 'reactions', 'pinned_at', 'pinned_by'])

  const other = await createChat(app, [alice, bob])
  a.send({ type: 'join', conversation_id: other })
  t.equal((await a.next()).type, 'joined')
  a.send({ type: 'leave', conversation_id: chat })
  t.same(await a.next(), { type: 'left', conversation_id: chat })
  b.send({ type: 'message', conversation_id: chat, body: 'after alice left' })
  t.equal((await b.next()).message.seq, 2)
  // The marker: a later message through the same fan-out, in a chat alice is still in.
  b.send({ type: 'message', conversation_id: other, body: 'marker' })
  t.match(await a.next(), { type: 'message', message: { conversation_id: other, body: 'marker' } }, 'a socket that left gets nothing more: the next frame is the later marker')

  a.send({ type: 'leave', conversation_id: chat })
  t.same(await a.next(), { type: 'left', conversation_id: chat }, 'leaving twice is not an error')
})

t.test('every reply echoes the ref of its frame, strings and numbers alike', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await openSocket(t, url, alice)
  a.send({ type: 'join', conversation_id: chat, ref: 'j-1' })
  t.same(await a.next(), { type: 'joined', conversation_id: chat, last_seq: 0, ref: 'j-1' })
  a.send({ type: 'join', conversation_id: chat, ref: 2 })
  t.same(await a.next(), { type: 'joined', conversation_id: chat, last_seq: 0, ref: 2 }, 'joining again answers joined again')

  a.send({ type: 'message', conversation_id: chat, body: 'with a ref', ref: 'm-1' })
  // Two frames, in either order: the acknowledgement goes straight back, the broadcast round
  // the bus.
  const [broadcast, sent] = [await a.next(), await a.next()].sort((x, y) => x.type.localeCompare(y.type))
  t.equal(broadcast!.type, 'message')
  t.notOk('ref' in broadcast!, 'the broadcast is shared, so it carries no ref')
  t.same(sent, { type: 'sent', conversation_id: chat, message: broadcast!.message, ref: 'm-1' }, 'the sender also gets an acknowledgement')

  a.send({ type: 'message', conversation_id: chat, body: '', ref: 'm-2' })
  t.same(await a.next(), { type: 'error', code: 'bad_request', error: 'a message needs a body or an attachment', ref: 'm-2' })
  a.send({ type: 'bogus', ref: 'x' })
  t.same(await a.next(), { type: 'error', code: 'bad_request', error: 'unknown frame type "bogus"; expected one of join, leave, message, read, delivered, typing, edit, delete, react, unreact, pin, unpin', ref: 'x' })
  a.send({ type: 'leave', conversation_id: chat, ref: 0 })
  t.same(await a.next(), { type: 'left', conversation_id: chat, ref: 0 })
})

t.test('every malformed frame is answered with bad_request and the socket stays open', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice])
  const a = await openSocket(t, url, alice)
  const cases: Array<[unknown, string]> = [
    ['{nope', 'invalid JSON'],
    ['', 'invalid JSON'],
    ['[1,2]', 'a frame must be a JSON object'],
    ['42', 'a frame must be a JSON object'],
    ['null', 'a frame must be a JSON object'],
    [{ conversation_id: chat }, 'frame must have required property \'type\''],
    [{ type: 'subscribe', conversation_id: chat }, 'unknown frame type "subscribe"; expected one of join, leave, message, read, delivered, typing, edit, delete, react, unreact, pin, unpin'],
    [{ type: 7 }, 'unknown frame type 7; expected one of join, leave, message, read, delivered, typing, edit, delete, react, unreact, pin, unpin'],
    [{ type: 'join' }, 'frame must have required properties conversation_id'],
    [{ type: 'join', conversation_id: 'chat-1' }, 'conversation_id must match format "uuid"'],
    [{ type: 'join', conversation_id: 12 }, 'conversation_id must be string'],
    [{ type: 'join', conversation_id: chat, since_seq: -1 }, 'since_seq must be >= 0'],
    [{ type: 'join', conversation_id: chat, since_seq: 'x' }, 'since_seq must be integer'],
    [{ type: 'leave' }, 'frame must have required properties conversation_id'],
    [{ type: 'leave', conversation_id: 'x' }, 'conversation_id must match format "uuid"'],
    [{ type: 'message', body: 'hi' }, 'frame must have required properties conversation_id'],
    [{ type: 'message', conversation_id: 'nope', body: 'hi' }, 'conversation_id must match format "uuid"'],
    [{ type: 'message', conversation_id: chat }, 'a message needs a body or an attachment'],
    [{ type: 'message', conversation_id: chat, body: '   ' }, 'a message needs a body or an attachment'],
    [{ type: 'message', conversation_id: chat, body: null, attachment_url: null }, 'a message needs a body or an attachment'],
    [{ type: 'message', conversation_id: chat, body: 5 }, 'body must be string'],
    [{ type: 'message', conversation_id: chat, body: 'x'.repeat(4001) }, 'body is longer than 4000 characters'],
    [{ type: 'message', conversation_id: chat, body: 'hi', msg_type: 3 }, 'system messages (msg_type 3) are written by the server only'],
    [{ type: 'message', conversation_id: chat, msg_type: 1, body: 'no url' }, 'image and file messages need an attachment_url'],
    [{ type: 'message', conversation_id: chat, attachment_url: 'ftp://x/y' }, 'attachment_url must be an absolute http(s) URL'],
    [{ type: 'message', conversation_id: chat, body: 'hi', dedupe_key: '' }, 'dedupe_key must be 1 to 64 characters'],
    [{ type: 'join', conversation_id: chat, ref: { a: 1 } }, 'ref must be a string of at most 128 characters or a number']
  ]
  for (const [frame, error] of cases) {
    a.send(frame)
    t.same(await a.next(), { type: 'error', code: 'bad_request', error }, typeof frame === 'string' ? frame : JSON.stringify(frame).slice(0, 80))
  }
  a.ws.send(Buffer.from('{"type":"join"}'), { binary: true })
  t.same(await a.next(), { type: 'error', code: 'bad_request', error: 'frames are JSON text; binary frames are not accepted' })

  a.send({ type: 'join', conversation_id: chat })
  t.same(await a.next(), { type: 'joined', conversation_id: chat, last_seq: 0 }, 'after all that the socket still works')
  a.send({ type: 'message', conversation_id: chat, body: 'still here' })
  t.equal((await a.next()).message.seq, 1, 'and nothing bad was stored')
})

t.test('a non-member cannot join or send, and an unknown conversation is forbidden too', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const e = await openSocket(t, url, eve)
  e.send({ type: 'join', conversation_id: chat, ref: 1 })
  t.same(await e.next(), { type: 'error', code: 'forbidden', error: 'user is not a participant in this conversation', ref: 1 })
  e.send({ type: 'message', conversation_id: chat, body: 'let me in', ref: 2 })
  t.same(await e.next(), { type: 'error', code: 'forbidden', error: 'user is not a participant in this conversation', ref: 2 })
  e.send({ type: 'join', conversation_id: unknownChat, ref: 3 })
  t.same(await e.next(), { type: 'error', code: 'forbidden', error: 'conversation not found', ref: 3 })
  e.send({ type: 'message', conversation_id: unknownChat, body: 'hello?' })
  t.same(await e.next(), { type: 'error', code: 'forbidden', error: 'conversation not found' })
  t.same(app.rooms.stats(), { rooms: 0, members: 0 }, 'refused joins hold nothing')
  const page = (await app.inject(`/api/v1/chat/${chat}/messages`)).json()
  t.equal(page.count, 0, 'nothing was stored')
})

t.test('a user on several devices gets every message on each joined device', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const phone = await openSocket(t, url, alice)
  const laptop = await openSocket(t, url, alice)
  const idle = await openSocket(t, url, alice)
  const b = await openSocket(t, url, bob)
  for (const socket of [phone, laptop, b]) {
    socket.send({ type: 'join', conversation_id: chat })
    t.equal((await socket.next()).type, 'joined')
  }
  b.send({ type: 'message', conversation_id: chat, body: 'hi alice' })
  t.equal((await phone.next()).message.body, 'hi alice')
  t.equal((await laptop.next()).message.body, 'hi alice')
  t.equal((await b.next()).message.body, 'hi alice')

  phone.send({ type: 'message', conversation_id: chat, body: 'from my phone' })
  for (const socket of [phone, laptop, b]) t.equal((await socket.next()).message.body, 'from my phone')

  // A device that has not joined gets only the echo of its own sends (as in go-chatty).
  idle.send({ type: 'message', conversation_id: chat, body: 'from the idle device' })
  const echo = await idle.next()
  t.same({ type: echo.type, body: echo.message.body, seq: echo.message.seq }, { type: 'message', body: 'from the idle device', seq: 3 })
  for (const socket of [phone, laptop, b]) t.equal((await socket.next()).message.seq, 3)

  laptop.send({ type: 'leave', conversation_id: chat })
  t.equal((await laptop.next()).type, 'left')
  b.send({ type: 'message', conversation_id: chat, body: 'only the phone now' })
  t.equal((await phone.next()).message.body, 'only the phone now')
  t.same(app.rooms.stats(), { rooms: 1, members: 2 })
  // Markers after it: a message in a chat the laptop is still in, and the idle device's own echo.
  const other = await createChat(app, [alice, bob])
  laptop.send({ type: 'join', conversation_id: other })
  t.equal((await laptop.next()).type, 'joined')
  b.send({ type: 'message', conversation_id: other, body: 'marker' })
  t.match(await laptop.next(), { type: 'message', message: { conversation_id: other, body: 'marker' } }, 'the device that left gets nothing more: the next frame is the later marker')
  idle.send({ type: 'message', conversation_id: other, body: 'idle marker' })
  t.match(await idle.next(), { type: 'message', message: { body: 'idle marker' } }, 'the idle device never got other people\'s messages: the next frame is its own echo')
})

t.test('closing a socket removes it from every room it joined, and the process unsubscribes', async (t) => {
  const { app, url } = await listen(t)
  const first = await createChat(app, [alice, bob])
  const second = await createChat(app, [alice, bob])
  const a = await openSocket(t, url, alice)
  const b = await openSocket(t, url, bob)
  for (const chat of [first, second]) {
    a.send({ type: 'join', conversation_id: chat })
    await a.next()
  }
  b.send({ type: 'join', conversation_id: first })
  await b.next()
  t.same(app.rooms.stats(), { rooms: 2, members: 3 })
  a.ws.close()
  t.equal((await a.closed).code, 1005, 'a clean close from the client')
  await waitFor(() => app.rooms.stats().members === 1, 'alice out of her rooms', 2000)
  t.same(app.rooms.stats(), { rooms: 1, members: 1 }, 'the room nobody is in is gone')
  b.send({ type: 'message', conversation_id: first, body: 'still delivered' })
  t.equal((await b.next()).message.body, 'still delivered')
})

t.test('a frame larger than WS_MAX_PAYLOAD closes the socket with 1009', async (t) => {
  const { app, url } = await listen(t, { WS_MAX_PAYLOAD: 2048 })
  const chat = await createChat(app, [alice])
  const a = await openSocket(t, url, alice)
  a.send({ type: 'join', conversation_id: chat })
  await a.next()
  a.send({ type: 'message', conversation_id: chat, body: 'x'.repeat(1900) })
  t.equal((await a.next()).type, 'message', 'a frame under the limit is fine')
  a.send({ type: 'message', conversation_id: chat, body: 'x'.repeat(2100) })
  t.equal((await a.closed).code, 1009)
  await waitFor(() => app.rooms.stats().members === 0, 'the closed socket out of its room', 2000)
})

t.test('a socket that does not answer pings is terminated; one that answers stays', async (t) => {
  const { app, url } = await listen(t, { WS_PING_INTERVAL_MS: 150 })
  const chat = await createChat(app, [alice, bob])
  // Ping listeners go on before anything is awaited: the first ping may come at any moment.
  const silent = rawSocket(t, url, { user_id: alice }, { autoPong: false })
  let pings = 0
  silent.ws.on('ping', () => pings++)
  const healthy = rawSocket(t, url, { user_id: bob })
  let healthyPings = 0
  healthy.ws.on('ping', () => healthyPings++)
  t.equal((await silent.next()).type, 'connected')
  t.equal((await healthy.next()).type, 'connected')
  silent.send({ type: 'join', conversation_id: chat })
  const closed = await silent.closed
  t.equal(closed.code, 1006, 'terminated without a close frame')
  t.ok(pings >= 1, 'it was pinged first')
  await waitFor(() => app.rooms.stats().members === 0, 'the dead socket out of its room', 5000)
  // Three more pings answered: the healthy socket lived through several ping periods.
  const seen = healthyPings
  await waitFor(() => healthyPings >= seen + 3, 'more pings to the healthy socket', 5000)
  t.equal(healthy.ws.readyState, healthy.ws.OPEN, 'a socket that answers pings stays open')
  healthy.send({ type: 'join', conversation_id: chat })
  t.equal((await healthy.next()).type, 'joined')
})

t.test('a message sent over HTTP reaches the joined sockets through the bus, with the same frame', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  await startJobs(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const a = await openSocket(t, url, alice)
  const b = await openSocket(t, url, bob)
  for (const socket of [a, b]) {
    socket.send({ type: 'join', conversation_id: chat })
    await socket.next()
  }
  a.send({ type: 'message', conversation_id: chat, body: 'over the websocket' })
  const overSocket = await b.next()
  const accepted = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: bob, body: 'over HTTP', attachment_meta: { n: 1 } } })
  t.equal(accepted.statusCode, 202)
  const overHttp = await b.next(10_000)
  t.same(overHttp, {
    type: 'message',
    conversation_id: chat,
    message: {
      id: accepted.json().message_id,
      conversation_id: chat,
      sender_id: bob,
      seq: 2,
      created_at: overHttp.message.created_at,
      body: 'over HTTP',
      msg_type: 0,
      attachment_url: null,
      attachment_meta: { n: 1 },
      dedupe_key: null,
      ...UNTOUCHED
    }
  })
  t.same(Object.keys(overHttp), Object.keys(overSocket), 'the same frame shape on both paths')
  t.same(Object.keys(overHttp.message), Object.keys(overSocket.message))
  await a.until(isMessage)
  t.same(await a.until(isMessage), overHttp, 'the sender\'s own sockets get it too')
})

t.test('a send retried with the same dedupe_key is stored once and broadcast once', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await openSocket(t, url, alice)
  const b = await openSocket(t, url, bob)
  b.send({ type: 'join', conversation_id: chat })
  await b.next()
  for (const ref of [1, 2]) a.send({ type: 'message', conversation_id: chat, body: 'once', dedupe_key: 'k-1', ref })
  const first = await a.until((frame) => frame.type === 'sent')
  const second = await a.until((frame) => frame.type === 'sent')
  t.same([first.ref, second.ref], [1, 2])
  t.same(second.message, first.message, 'the retry answers with the first message')
  t.equal((await b.next()).message.seq, 1)
  a.send({ type: 'message', conversation_id: chat, body: 'next' })
  t.equal((await b.next()).message.seq, 2, 'the repeat reached nobody twice')
})

t.test('messages a socket keeps outstanding reach the store together and are stored, answered and delivered in the order sent', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await openSocket(t, url, alice)
  const b = await openSocket(t, url, bob)
  b.send({ type: 'join', conversation_id: chat })
  await b.next()
  const group = app.chat.writer as GroupCommit
  const before = group.stats()
  await whileLocked(t, dbUrl, chat, () => {
    for (let ref = 1; ref <= 8; ref++) a.send({ type: 'message', conversation_id: chat, body: `m${ref}`, ref })
  }, async () => {
    // The other seven do not wait for it to be stored before they reach the store: they are in
    // its batch or wait for it there.
    await waitFor(() => handedOver(group, before) === 8, 'all eight messages in the store')
  })
  const sent: Frame[] = []
  for (let i = 0; i < 8; i++) sent.push(await a.until((frame) => frame.type === 'sent'))
  t.same(sent.map((frame) => [frame.ref, frame.message.seq, frame.message.body]), [1, 2, 3, 4, 5, 6, 7, 8].map((n) => [n, n, `m${n}`]), 'answered in the order sent, numbered in that order')
  t.ok(group.stats().batches - before.batches <= 2, 'the eight were stored by one or two statements')
  const delivered: Frame[] = []
  for (let i = 0; i < 8; i++) delivered.push(await b.next())
  t.same(delivered.map((frame) => frame.message.seq), [1, 2, 3, 4, 5, 6, 7, 8], 'delivered in that order')
})

t.test('a refused message is answered in its place: after the answers to the messages before it', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await openSocket(t, url, alice)
  const group = app.chat.writer as GroupCommit
  const before = group.stats()
  await whileLocked(t, dbUrl, chat, () => {
    a.send({ type: 'message', conversation_id: chat, body: 'first', ref: 1 })
    // Refused by the content rules, long before the first is stored.
    a.send({ type: 'message', conversation_id: chat, body: 'not mine to send', msg_type: 3, ref: 2 })
    a.send({ type: 'message', conversation_id: chat, body: 'third', ref: 3 })
  }, async () => {
    await waitFor(() => handedOver(group, before) === 2, 'the first and third messages in the store')
  })
  // The socket has not joined, so each stored message is also echoed to it as a `message` frame.
  const answer = async () => await a.until((frame) => frame.type !== 'message')
  const answers = [await answer(), await answer(), await answer()]
  t.same(answers.map((frame) => [frame.type, frame.ref]), [['sent', 1], ['error', 2], ['sent', 3]])
  t.equal(answers[1]!.code, 'bad_request')
  t.same([answers[0]!.message.seq, answers[2]!.message.seq], [1, 2])
})

t.test('the client library: join, send and leave resolve with their replies; refusals reject', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await chatClient(t, url, alice)
  const b = await chatClient(t, url, bob)
  t.same(await a.join(chat), { type: 'joined', conversation_id: chat, last_seq: 0, ref: 'r1' })
  await b.join(chat)
  const message = await a.send(chat, { body: 'typed' })
  t.match(message, { conversation_id: chat, sender_id: alice, seq: 1, body: 'typed', dedupe_key: /^[0-9a-f-]{36}$/ })
  await waitFor(() => b.received.length === 1 && a.received.length === 1, 'both to receive it', 5000)
  t.same(b.received, [message])
  t.equal(b.lastSeq(chat), 1)
  const error = await a.send(chat, { body: '' }).catch((error: unknown) => error)
  t.ok(error instanceof FrameError)
  t.match(error, { code: 'bad_request', message: 'a message needs a body or an attachment' })
  const refused = await a.join(unknownChat).catch((error: unknown) => error)
  t.match(refused, { code: 'forbidden' })
  t.same(a.joined(), [chat], 'a refused join is not joined again after a reconnect')
  t.same(await a.leave(chat), { type: 'left', conversation_id: chat, ref: 'r5' })

  const iterator = b.messages()
  await a.send(chat, { body: 'iterated' })
  const next = await iterator.next()
  t.equal(next.value?.body, 'iterated')
  await iterator.return?.()
})

t.test('a client that is not a member cannot use the socket either way', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob, carol])
  const e = await chatClient(t, url, eve)
  await t.rejects(e.join(chat), { code: 'forbidden' })
  await t.rejects(e.send(chat, { body: 'x' }), { code: 'forbidden' })
})

t.test('shutting down closes every socket with 1001 so clients go elsewhere', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice])
  const a = await openSocket(t, url, alice)
  a.send({ type: 'join', conversation_id: chat })
  await a.next()
  const started = Date.now()
  await app.close()
  t.same(await a.closed, { code: 1001, reason: 'server shutting down' })
  t.ok(Date.now() - started < 3000, 'without waiting for a timeout')
})

t.test('with AUTH_MODE=jwt the socket takes the token from the header or access_token', async (t) => {
  const secret = 'test-secret-test-secret-test-secret!'
  const key = new TextEncoder().encode(secret)
  const token = (sub: string, exp: string | number = '1h') =>
    new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(exp).sign(key)
  const { app, url } = await listen(t, { AUTH_MODE: 'jwt', JWT_SECRET: secret })
  const created = await app.inject({ method: 'POST', url: '/api/v1/chat', headers: { authorization: `Bearer ${await token(alice)}` }, payload: { participant_ids: [bob] } })
  const chat = created.json().id

  const anonymous = rawSocket(t, url, { user_id: alice })
  t.same(await anonymous.refused, { status: 401, body: { error: 'a bearer token is required', code: 'unauthorized' } })
  const impostor = rawSocket(t, url, { user_id: alice, access_token: await token(eve) })
  t.same(await impostor.refused, { status: 403, body: { error: 'the user in the request is not the authenticated user', code: 'forbidden' } })

  const byQuery = rawSocket(t, url, { access_token: await token(bob) })
  t.equal((await byQuery.next()).type, 'connected', 'user_id defaults to the token\'s user')
  byQuery.send({ type: 'join', conversation_id: chat })
  t.equal((await byQuery.next()).type, 'joined')
  const byHeader = rawSocket(t, url, { user_id: alice }, { headers: { authorization: `Bearer ${await token(alice)}` } })
  await byHeader.next()
  byHeader.send({ type: 'message', conversation_id: chat, body: 'signed' })
  t.match(await byQuery.next(), { type: 'message', message: { sender_id: alice, body: 'signed' } })

  const expiring = rawSocket(t, url, { access_token: await token(bob, Math.floor(Date.now() / 1000) + 2) })
  t.equal((await expiring.next()).type, 'connected')
  t.same(await expiring.closed, { code: 4001, reason: 'token expired' }, 'closed when its token expires')
})

t.test('frames that reach a process out of order, twice, or never still reach each socket once, in seq order', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await openSocket(t, url, alice)
  a.send({ type: 'join', conversation_id: chat })
  await a.next()
  // Stored without being published, as if their publishers were slow, repeated or lost.
  const stored = []
  for (const body of ['one', 'two', 'three', 'four']) {
    stored.push((await storeMessage(app.chat, { conversationId: chat, senderId: bob, content: { body, msg_type: 0, attachment_url: null, attachment_meta: null, dedupe_key: null } })).message)
  }
  const topic = conversationTopic(chat)
  await app.bus.publish(topic, messageFrame(stored[2]!))
  await app.bus.publish(topic, messageFrame(stored[0]!))
  await app.bus.publish(topic, messageFrame(stored[0]!))
  await app.bus.publish(topic, 'not json')
  await app.bus.publish(topic, JSON.stringify({ type: 'message', conversation_id: unknownChat, message: { seq: 2 } }))
  // seq 2 is never published, and 4 only much later: the room reads what it misses.
  const received = [await a.next(), await a.next(), await a.next()]
  t.same(received.map((frame) => frame.message.body), ['one', 'two', 'three'], 'in seq order; the missing one read from the database')
  t.equal(a.texts[2], messageFrame(stored[0]!), 'the frame as published')
  t.equal(a.texts[3], messageFrame(stored[1]!), 'a filled gap looks the same')
  await app.bus.publish(topic, messageFrame(stored[3]!))
  await app.bus.publish(topic, messageFrame(stored[2]!))
  t.equal((await a.next()).message.body, 'four')
  // The marker: a later message published on the same topic.
  const five = (await storeMessage(app.chat, { conversationId: chat, senderId: bob, content: { body: 'five', msg_type: 0, attachment_url: null, attachment_meta: null, dedupe_key: null } })).message
  await app.bus.publish(topic, messageFrame(five))
  t.equal((await a.next()).message.body, 'five', 'nothing twice: the next frame is the later marker')
  t.equal(a.frames.length, 7)
})

t.test('the OpenAPI document describes the websocket route as far as OpenAPI can', async (t) => {
  const { app } = await listen(t)
  const doc = (await app.inject('/docs/json')).json()
  const route = doc.paths['/api/v1/chat/ws']?.get
  t.ok(route, 'documents GET /api/v1/chat/ws')
  t.same(route.parameters.map((parameter: { name: string, in: string }) => `${parameter.in}:${parameter.name}`).sort(), ['query:access_token', 'query:presence', 'query:user_id'])
  t.same(Object.keys(route.responses).sort(), ['101', '400', '401', '403', '426', '429'])
  t.match(route.description, /docs\/protocol\.md/)
})
