// Websocket abuse limits over real sockets: the per-socket frame rate (WS_RATE_LIMIT_PER_SEC,
// WS_RATE_LIMIT_BURST), sockets per user (WS_MAX_SOCKETS_PER_USER), joins per socket
// (WS_MAX_JOINS_PER_SOCKET) and allowed browser origins (WS_ALLOWED_ORIGINS). A limited frame is answered, never stored, and never closes the socket.
import t from 'tap'
import pg from 'pg'
import { onTeardown, sleep, users, waitFor } from '@chatty/db/testing'
import { buildApp } from '../src/app.ts'
import { chatClient, createChat, listen, openSocket, rawSocket, type Frame, type RawSocket } from './ws-helper.ts'

const { alice, bob } = users

async function countMessages (t: Parameters<typeof onTeardown>[0], dbUrl: string): Promise<() => Promise<number>> {
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  onTeardown(t, () => client.end())
  return async () => (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM chat.message')).rows[0]!.n
}

/** Takes `count` replies that carry a ref (the sends' acknowledgements and errors). */
async function replies (socket: RawSocket, count: number): Promise<Frame[]> {
  const taken: Frame[] = []
  while (taken.length < count) taken.push(await socket.until((frame) => frame.ref !== undefined, 10_000))
  return taken
}

t.test('frames over the socket\'s rate get rate_limited with retry_after_ms and their ref; nothing of them is stored; the socket stays open', async (t) => {
  // 0.2 frames a second: no token comes back while the test sends its burst, however slow the machine.
  const { app, url, dbUrl } = await listen(t, { WS_RATE_LIMIT_PER_SEC: 0.2, WS_RATE_LIMIT_BURST: 6 })
  const messages = await countMessages(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const socket = await openSocket(t, url, alice)

  socket.send({ type: 'join', conversation_id: chat, ref: 'join' })
  t.same(await socket.next(), { type: 'joined', conversation_id: chat, last_seq: 0, ref: 'join' })
  for (let i = 1; i <= 10; i++) socket.send({ type: 'message', conversation_id: chat, body: `m${i}`, ref: i })
  const answers = await replies(socket, 10)
  const sent = answers.filter((frame) => frame.type === 'sent')
  const limited = answers.filter((frame) => frame.type === 'error')
  t.same(sent.map((frame) => frame.ref).sort((a, b) => a - b), [1, 2, 3, 4, 5], 'the burst (6, the join included) goes through')
  t.same(limited.map((frame) => frame.ref).sort((a, b) => a - b), [6, 7, 8, 9, 10], 'every frame after it is answered rate_limited, with its ref')
  for (const frame of limited) {
    t.same(Object.keys(frame).sort(), ['code', 'error', 'ref', 'retry_after_ms', 'type'])
    t.equal(frame.code, 'rate_limited')
    t.match(frame.error, /too many frames/)
    t.ok(Number.isInteger(frame.retry_after_ms) && frame.retry_after_ms > 0 && frame.retry_after_ms <= 5000, `retry_after_ms ${frame.retry_after_ms}`)
  }
  t.equal(await messages(), 5, 'only the accepted frames were stored')
  t.same(sent.map((frame) => frame.message.body).sort(), ['m1', 'm2', 'm3', 'm4', 'm5'])

  // Invalid frames count too, and a limited one gets rate_limited rather than bad_request.
  socket.send('{not json')
  socket.send({ type: 'nonsense', ref: 'x' })
  const [first, second] = [await socket.until((frame) => frame.type === 'error'), await socket.until((frame) => frame.type === 'error')]
  t.same([first.code, second.code], ['rate_limited', 'rate_limited'])
  t.equal(second.ref, 'x', 'the ref of a limited frame is echoed when it can be read')

  t.equal(socket.ws.readyState, socket.ws.OPEN, 'the socket is still open')
  // After retry_after_ms the socket may send again.
  await sleep(limited.at(-1)!.retry_after_ms + 100)
  socket.send({ type: 'message', conversation_id: chat, body: 'after the wait', ref: 'later' })
  const later = await socket.until((frame) => frame.ref === 'later')
  t.equal(later.type, 'sent', 'after the wait a frame is accepted again')
  t.equal(later.message.seq, 6, 'and stored right after the accepted ones: nothing in between')
  t.equal(await messages(), 6)
})

t.test('the limit is per socket: another socket of the same user is not slowed down', async (t) => {
  const { app, url } = await listen(t, { WS_RATE_LIMIT_PER_SEC: 0.2, WS_RATE_LIMIT_BURST: 2 })
  const chat = await createChat(app, [alice, bob])
  const noisy = await openSocket(t, url, alice)
  for (let i = 1; i <= 4; i++) noisy.send({ type: 'leave', conversation_id: chat, ref: i })
  const answers = await replies(noisy, 4)
  // An over-limit frame is answered at once, before earlier frames finish: compare as sets.
  t.same(answers.map((frame) => `${frame.ref}:${frame.type}`).sort(), ['1:left', '2:left', '3:error', '4:error'])
  const quiet = await openSocket(t, url, alice)
  quiet.send({ type: 'leave', conversation_id: chat, ref: 'q' })
  t.same(await quiet.next(), { type: 'left', conversation_id: chat, ref: 'q' })
})

t.test('WS_RATE_LIMIT_PER_SEC=0 turns the frame limit off', async (t) => {
  const { app, url, dbUrl } = await listen(t, { WS_RATE_LIMIT_PER_SEC: 0, WS_RATE_LIMIT_BURST: 1 })
  const messages = await countMessages(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const socket = await openSocket(t, url, alice)
  for (let i = 1; i <= 200; i++) socket.send({ type: 'message', conversation_id: chat, body: `m${i}`, ref: i })
  const answers = await replies(socket, 200)
  t.equal(answers.filter((frame) => frame.type === 'sent').length, 200, 'every frame is accepted')
  t.equal(await messages(), 200)
})

t.test('the client library sends a rate-limited request again after retry_after_ms: every send is stored once', async (t) => {
  const { app, url, dbUrl } = await listen(t, { WS_RATE_LIMIT_PER_SEC: 50, WS_RATE_LIMIT_BURST: 5 })
  const messages = await countMessages(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const client = await chatClient(t, url, alice)
  const limited: Frame[] = []
  client.on('frame', (frame) => { if (frame.type === 'error') limited.push(frame) })
  await client.join(chat)
  const stored = await Promise.all(Array.from({ length: 40 }, (_, i) => client.send(chat, { body: `c${i}` })))
  t.ok(limited.length > 0, `the server limited ${limited.length} of the frames`)
  t.ok(limited.every((frame) => frame.code === 'rate_limited'))
  t.same(stored.map((message) => message.body).sort(), Array.from({ length: 40 }, (_, i) => `c${i}`).sort(), 'every send resolved with its message')
  t.equal(new Set(stored.map((message) => message.id)).size, 40)
  t.equal(await messages(), 40, 'each stored once')
})

t.test('a user over WS_MAX_SOCKETS_PER_USER is refused with 429 before the upgrade; a closed socket frees its slot', async (t) => {
  const { url } = await listen(t, { WS_MAX_SOCKETS_PER_USER: 2 })
  const first = await openSocket(t, url, alice)
  await openSocket(t, url, alice)
  const third = rawSocket(t, url, { user_id: alice })
  t.same(await third.refused, {
    status: 429,
    body: { error: 'a user may hold at most 2 websockets on one server; close one first', code: 'rate_limited' }
  }, 'the third socket is refused with a JSON answer')
  t.same(third.frames, [], 'no websocket was opened')
  await openSocket(t, url, bob).then(() => t.pass('another user is not affected'))
  // The id's letter case does not make another user.
  const upper = rawSocket(t, url, { user_id: alice.toUpperCase() })
  t.equal((await upper.refused).status, 429, 'the same user in upper case counts as the same user')

  first.ws.close()
  await first.closed
  let again: RawSocket | undefined
  await waitFor(async () => {
    const attempt = rawSocket(t, url, { user_id: alice })
    const outcome = await Promise.race([attempt.next().then(() => 'open'), attempt.refused.then(() => 'refused')])
    if (outcome === 'open') again = attempt
    return outcome === 'open'
  }, 'a slot freed by the closed socket', 10_000)
  t.equal(again?.frames[0]?.type, 'connected', 'after one socket closed, a new one is accepted')
})

t.test('concurrent upgrades cannot pass the per-user socket limit together', async (t) => {
  const { url } = await listen(t, { WS_MAX_SOCKETS_PER_USER: 3 })
  const attempts = Array.from({ length: 12 }, () => rawSocket(t, url, { user_id: alice }))
  const outcomes = await Promise.all(attempts.map((socket) => Promise.race([
    socket.next().then(() => 'open'),
    socket.refused.then((refused) => String(refused.status))
  ])))
  t.same(outcomes.filter((outcome) => outcome === 'open').length, 3, 'exactly the limit opened')
  t.same(outcomes.filter((outcome) => outcome === '429').length, 9, 'the rest were refused with 429')
})

t.test('WS_MAX_SOCKETS_PER_USER=0 turns the socket limit off', async (t) => {
  const { url } = await listen(t, { WS_MAX_SOCKETS_PER_USER: 0 })
  const sockets = await Promise.all(Array.from({ length: 15 }, () => openSocket(t, url, alice)))
  t.equal(sockets.length, 15, '15 sockets for one user')
})

t.test('WS_ALLOWED_ORIGINS: an upgrade from another origin is refused with 403; a listed origin and clients without Origin connect', async (t) => {
  const { url } = await listen(t, { WS_ALLOWED_ORIGINS: 'https://chat.example.com, http://localhost:3000' })
  for (const origin of ['https://evil.example.com', 'https://chat.example.com.evil.example', 'http://chat.example.com', 'null']) {
    const socket = rawSocket(t, url, { user_id: alice }, { headers: { origin } })
    t.same(await socket.refused, { status: 403, body: { error: 'this origin may not open the websocket', code: 'forbidden' } }, `Origin ${origin} is refused`)
  }
  for (const origin of ['https://chat.example.com', 'HTTPS://Chat.Example.COM:443', 'http://localhost:3000']) {
    const socket = await openSocket(t, url, alice, { headers: { origin } })
    t.equal(socket.frames[0]!.type, 'connected', `Origin ${origin} connects`)
  }
  const noOrigin = await openSocket(t, url, alice)
  t.equal(noOrigin.frames[0]!.type, 'connected', 'a client that sends no Origin (not a browser) connects')
})

t.test('a WS_ALLOWED_ORIGINS entry that is not an origin stops start-up with a message naming it', async (t) => {
  for (const value of ['chat.example.com', 'https://chat.example.com/path', 'https://a.example, *']) {
    await t.rejects(buildApp({ config: { DB_URL: 'postgres://127.0.0.1:1/none', WS_ALLOWED_ORIGINS: value } }), /WS_ALLOWED_ORIGINS/, value)
  }
})

t.test('joins sent at once cannot pass WS_MAX_JOINS_PER_SOCKET together; a failed or left join frees its slot', async (t) => {
  const { app, url } = await listen(t, { WS_MAX_JOINS_PER_SOCKET: 5, WS_RATE_LIMIT_PER_SEC: 0 })
  const chats: string[] = []
  for (let i = 0; i < 9; i++) chats.push(await createChat(app, [alice, bob]))
  const outsider = await createChat(app, [bob])
  const socket = await openSocket(t, url, alice)
  for (const [i, chat] of chats.slice(0, 8).entries()) socket.send({ type: 'join', conversation_id: chat, ref: i })
  const answers = await replies(socket, 8)
  const joined = answers.filter((frame) => frame.type === 'joined')
  t.equal(joined.length, 5, 'exactly the cap joined')
  t.same(answers.filter((frame) => frame.type !== 'joined').map(({ ref: _ref, ...frame }) => frame),
    Array.from({ length: 3 }, () => ({ type: 'error', code: 'bad_request', error: 'a socket may join at most 5 conversations' })),
    'the rest get a bad_request error frame')

  // Leaving frees a slot; a join that fails (not a member) gives its slot back.
  const left = joined[0]!.conversation_id
  socket.send({ type: 'leave', conversation_id: left, ref: 'leave' })
  t.match(await replies(socket, 1), [{ type: 'left', ref: 'leave' }])
  socket.send({ type: 'join', conversation_id: outsider, ref: 'outsider' })
  t.match(await replies(socket, 1), [{ type: 'error', code: 'forbidden', ref: 'outsider' }])
  socket.send({ type: 'join', conversation_id: chats[8], ref: 'last' })
  t.match(await replies(socket, 1), [{ type: 'joined', conversation_id: chats[8], ref: 'last' }])
  socket.send({ type: 'join', conversation_id: left, ref: 'over' })
  t.match(await replies(socket, 1), [{ type: 'error', code: 'bad_request', ref: 'over' }])
})
