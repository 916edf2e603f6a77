// Presence across api processes: two apps on one database (and bus) stand for two processes;
// a spawned api process is killed to show that a crash takes its users offline after the TTL.
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { testDatabase, testWithAndWithoutRedis, users, waitFor } from '@chatty/db/testing'
import { createRestClient, type PresenceFrame } from '@chatty/client'
import { chatClient, createChat, listen, rawSocket, type Frame, type RawSocket } from './ws-helper.ts'
import { startService } from './process-helper.ts'

const { alice, bob, eve, carol, dave } = users
/** Short, so a crashed process's users go offline within the test; heartbeats every 300 ms. */
const TTL_MS = 900
/**
 * For every other test: long enough that a process stalled by a busy machine is never swept as
 * dead (which would announce its users offline and online again), so only clean transitions count.
 */
const STABLE_TTL_MS = 30_000

const isPresence = (user: string, online: boolean) => (frame: Frame) => frame.type === 'presence' && frame.user_id === user && frame.online === online

async function presenceOf (url: string, userId: string, headers: Record<string, string> = {}): Promise<boolean> {
  const response = await fetch(`${url}/api/v1/users/${userId}/presence`, { headers })
  if (response.status !== 200) throw new Error(`presence lookup: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { online: boolean }).online
}

/** A raw socket past `connected` that asked for presence frames. */
async function openSocket (t: Test, url: string, userId: string): Promise<RawSocket> {
  const socket = rawSocket(t, url, { user_id: userId, presence: 'true' })
  const first = await socket.next()
  if (first.type !== 'connected') throw new Error(`expected connected, got ${JSON.stringify(first)}`)
  return socket
}

async function twoProcesses (t: Test, config: Record<string, unknown>) {
  const { url: dbUrl } = await testDatabase(t)
  const settings = { PRESENCE_TTL_MS: STABLE_TTL_MS, ...config }
  const one = await listen(t, settings, dbUrl)
  const two = await listen(t, settings, dbUrl)
  return { one, two }
}

async function frames (t: Test, config: Record<string, unknown>): Promise<void> {
  const { one, two } = await twoProcesses(t, config)
  const chatId = await createChat(one.app, [alice, bob, carol])
  await createChat(one.app, [eve, bob])

  const aliceSocket = await openSocket(t, one.url, alice)
  aliceSocket.send({ type: 'join', conversation_id: chatId })
  await aliceSocket.until((frame) => frame.type === 'joined')
  const eveSocket = await openSocket(t, one.url, eve)
  // Alice's second device did not ask for presence frames (go-chatty's protocol, unchanged).
  const alicePlain = rawSocket(t, two.url, { user_id: alice })
  await alicePlain.next()
  alicePlain.send({ type: 'join', conversation_id: chatId })
  await alicePlain.until((frame) => frame.type === 'joined')
  t.equal(await presenceOf(one.url, bob), false, 'bob starts offline')
  // Carol through the typed client.
  const carolChat = await chatClient(t, two.url, carol, { presence: true })
  const carolHeard: PresenceFrame[] = []
  carolChat.on('presence', (frame) => carolHeard.push(frame))
  await carolChat.join(chatId)

  const bobPhone = await openSocket(t, two.url, bob)
  const online = await aliceSocket.until(isPresence(bob, true))
  t.same(Object.keys(online).sort(), ['at', 'conversation_id', 'online', 'type', 'user_id'], 'alice, on the other process, is told bob came online')
  t.ok(!Number.isNaN(Date.parse(online.at)), 'with when')
  t.equal(online.conversation_id, chatId, 'and through which conversation')
  t.equal(await presenceOf(one.url, bob), true, 'the REST lookup on either process says online')
  t.equal(await presenceOf(two.url, bob), true)
  await waitFor(() => carolHeard.some((frame) => frame.user_id === bob && frame.online), 'carol\'s client to hear of bob', 5000)
  t.same(await createRestClient({ baseUrl: two.url }).presence(bob), { user_id: bob, online: true }, 'the typed client\'s lookup')

  // A second device changes nothing; closing one of two leaves bob online.
  const bobLaptop = await openSocket(t, one.url, bob)
  bobLaptop.ws.close()
  await bobLaptop.closed
  t.equal(await presenceOf(two.url, bob), true, 'bob is still online through his phone')

  bobPhone.ws.close()
  await aliceSocket.until(isPresence(bob, false))
  t.pass('alice is told bob went offline when his last socket closed')
  t.equal(await presenceOf(one.url, bob), false)
  t.notOk(aliceSocket.frames.some((frame) => frame.type === 'presence' && frame.user_id === bob && frame.online === true && frame !== online),
    'one online frame for bob: his second device was no change')

  // A message after all of that reaches the plain socket after any presence frame would have.
  aliceSocket.send({ type: 'message', conversation_id: chatId, body: 'barrier' })
  await alicePlain.until((frame) => frame.type === 'message')
  t.notOk(alicePlain.frames.some((frame) => frame.type === 'presence'), 'a socket that did not ask for presence gets none')

  // Eve shares a conversation with bob but has joined none: the scope is joined conversations.
  t.notOk(eveSocket.frames.some((frame) => frame.type === 'presence'), 'a socket that joined no shared conversation hears nothing')

  const batch = await fetch(`${two.url}/api/v1/users/presence?user_ids=${bob},${alice},${bob.toUpperCase()}`)
  t.same(await batch.json(), { presence: [{ user_id: bob, online: false }, { user_id: alice, online: true }] }, 'the batch lookup answers in order, repeats dropped')
  t.same(await createRestClient({ baseUrl: one.url }).presenceOf([carol, eve]), [{ user_id: carol, online: true }, { user_id: eve, online: true }], 'the typed client\'s batch')
}

await testWithAndWithoutRedis(t, {
  postgres: 'presence frames and lookups across two api processes on the Postgres bus',
  redis: 'the same with REDIS_URL (Redis bus and presence store)'
}, frames)

t.test('a socket sees each change once, however many shared conversations it joined', async (t) => {
  const { one, two } = await twoProcesses(t, {})
  const first = await createChat(one.app, [alice, bob])
  const second = await createChat(one.app, [alice, bob, carol])
  const aliceSocket = await openSocket(t, one.url, alice)
  for (const chatId of [first, second]) {
    aliceSocket.send({ type: 'join', conversation_id: chatId })
    await aliceSocket.until((frame) => frame.type === 'joined' && frame.conversation_id === chatId)
  }
  await openSocket(t, two.url, bob)
  await aliceSocket.until(isPresence(bob, true))
  // carol's transition is published after bob's, by the same process, on the same topics: once
  // it is here, a repeat of bob's would be too.
  await openSocket(t, two.url, carol)
  await aliceSocket.until(isPresence(carol, true))
  t.equal(aliceSocket.frames.filter((frame) => frame.type === 'presence' && frame.user_id === bob).length, 1, 'bob online reported once, not once per conversation')
})

t.test('sockets opened and closed at once, many times on both processes: the changes apply in order and bob ends offline', async (t) => {
  // Each process writes presence in batches; a connect and the disconnect right after it may fall
  // in one batch or in two. Applied out of order, bob would stay recorded on a process with no
  // socket of his, and read as online for good.
  const { one, two } = await twoProcesses(t, {})
  const chatId = await createChat(one.app, [alice, bob, carol, dave])
  const aliceSocket = await openSocket(t, one.url, alice)
  aliceSocket.send({ type: 'join', conversation_id: chatId })
  await aliceSocket.until((frame) => frame.type === 'joined')
  // Twenty others doing the same at the same time keep a flush running on each process, so a
  // connect and its disconnect often arrive while one is under way and meet in the next batch.
  const others = Array.from({ length: 20 }, () => randomUUID())
  const cycle = async (url: string, userId: string, wait: boolean): Promise<void> => {
    const socket = await openSocket(t, url, userId)
    // Now and then bob's socket stays until the store has him; otherwise it closes at once.
    if (wait) await waitFor(async () => await presenceOf(url, userId), 'the user to read as online', 5000)
    socket.ws.close()
    await socket.closed
  }
  for (let round = 0; round < 10; round++) {
    await Promise.all([bob, ...others].flatMap((userId) => [one.url, two.url].map((url) => cycle(url, userId, userId === bob && round % 3 === 2))))
  }
  const anyOnline = async (): Promise<string[]> => {
    const found: string[] = []
    for (const { url } of [one, two]) {
      const response = await fetch(`${url}/api/v1/users/presence?user_ids=${[bob, ...others].join(',')}`)
      const { presence } = await response.json() as { presence: Array<{ user_id: string, online: boolean }> }
      found.push(...presence.filter((entry) => entry.online).map((entry) => entry.user_id))
    }
    return found
  }
  await waitFor(async () => (await anyOnline()).length === 0, 'every user to read as offline on both processes', 5000)
  t.same(await anyOnline(), [], 'every user reads as offline on both processes once their sockets are closed')
  // Markers: each process announces carol or dave after everything it did about bob.
  await openSocket(t, one.url, carol)
  await aliceSocket.until(isPresence(carol, true))
  await openSocket(t, two.url, dave)
  await aliceSocket.until(isPresence(dave, true))
  const aboutBob = aliceSocket.frames.filter((frame) => frame.type === 'presence' && frame.user_id === bob)
  t.ok(aboutBob.length >= 1, 'alice heard of bob')
  t.equal(aboutBob.at(-1)?.online, false, 'and the last she heard is that he went offline')
  t.equal(await presenceOf(two.url, bob), false, 'bob is still offline after the markers')
})

t.test('closing an api process takes its users offline at once', async (t) => {
  const { one, two } = await twoProcesses(t, {})
  const chatId = await createChat(one.app, [alice, bob])
  const aliceSocket = await openSocket(t, one.url, alice)
  aliceSocket.send({ type: 'join', conversation_id: chatId })
  await aliceSocket.until((frame) => frame.type === 'joined')
  await openSocket(t, two.url, bob)
  await aliceSocket.until(isPresence(bob, true))
  await two.app.close()
  t.equal(await presenceOf(one.url, bob), false, 'offline as soon as close returns, not one TTL later')
  await aliceSocket.until(isPresence(bob, false))
  t.pass('and alice is told')
})

t.test('a killed api process\'s users go offline after the TTL, and the others are told', async (t) => {
  const { url: dbUrl } = await testDatabase(t)
  const one = await listen(t, { PRESENCE_TTL_MS: TTL_MS }, dbUrl)
  const doomed = await startService(t, 'services/api/src/server.ts', { DB_URL: dbUrl, PRESENCE_TTL_MS: String(TTL_MS) })
  const chatId = await createChat(one.app, [alice, bob])
  const aliceSocket = await openSocket(t, one.url, alice)
  aliceSocket.send({ type: 'join', conversation_id: chatId })
  await aliceSocket.until((frame) => frame.type === 'joined')
  const bobSocket: RawSocket = await openSocket(t, doomed.url, bob)
  await aliceSocket.until(isPresence(bob, true))
  t.equal(await presenceOf(one.url, bob), true)

  await doomed.kill()
  await bobSocket.closed
  await waitFor(async () => !await presenceOf(one.url, bob), 'bob to go offline', 10_000)
  t.pass('bob is offline once the dead process\'s heartbeat expired')
  await aliceSocket.until(isPresence(bob, false), 10_000)
  t.pass('a live process swept the dead one and told alice')
})

t.test('a user blocked by another does not see their presence, by lookup or by frame; others still do', async (t) => {
  const secret = 'presence-secret-presence-secret-!'
  const { url: dbUrl } = await testDatabase(t)
  const { app, url } = await listen(t, { AUTH_MODE: 'jwt', JWT_SECRET: secret, PRESENCE_TTL_MS: STABLE_TTL_MS }, dbUrl)
  const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(secret))
  const as = async (sub: string) => ({ authorization: `Bearer ${await token(sub)}` })
  // Bob joined alice's group before she blocked him: a conversation with her stays open to him.
  const group = (await app.inject({ method: 'POST', url: '/api/v1/chat', headers: await as(alice), payload: { participant_ids: [bob, carol, dave] } })).json().id as string
  t.equal((await app.inject({ method: 'PUT', url: `/api/v1/users/${alice}/blocks/${bob}`, headers: await as(alice) })).statusCode, 204)

  const lookup = await fetch(`${url}/api/v1/users/${alice}/presence`, { headers: await as(bob) })
  t.equal(lookup.status, 403, 'bob may not look up alice, who blocked him')
  t.same(await lookup.json(), { error: `user ${alice} does not share their presence with you`, code: 'forbidden' })
  t.equal((await fetch(`${url}/api/v1/users/presence?user_ids=${carol},${alice}`, { headers: await as(bob) })).status, 403, 'nor in a batch')
  t.equal(await presenceOf(url, alice, await as(carol)), false, 'carol may')
  t.equal(await presenceOf(url, bob, await as(alice)), false, 'the blocker still sees the blocked user')

  const socketOf = async (user: string) => {
    const socket = rawSocket(t, url, { access_token: await token(user), presence: 'true' })
    t.equal((await socket.next()).type, 'connected')
    socket.send({ type: 'join', conversation_id: group })
    await socket.until((frame) => frame.type === 'joined')
    return socket
  }
  const bobSocket = await socketOf(bob)
  const carolSocket = await socketOf(carol)
  await socketOf(alice)
  const heard = await carolSocket.until(isPresence(alice, true))
  t.same(Object.keys(heard).sort(), ['at', 'conversation_id', 'online', 'type', 'user_id'], 'carol hears alice come online, and nothing about who is hidden')
  // Dave comes online after alice, through the same conversation: once bob hears of dave, he
  // would have heard of alice.
  await socketOf(dave)
  await bobSocket.until(isPresence(dave, true))
  t.notOk(bobSocket.frames.some((frame) => frame.type === 'presence' && frame.user_id === alice), 'bob hears nothing of alice')
  t.notOk(bobSocket.texts.some((text) => text.includes('hidden_from')), 'nor who is hidden')
})

t.test('presence lookups: visibility with a token, bad input', async (t) => {
  const secret = 'presence-secret-presence-secret-!'
  const { one } = await twoProcesses(t, { AUTH_MODE: 'jwt', JWT_SECRET: secret })
  const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(new TextEncoder().encode(secret))
  const bearer = { authorization: `Bearer ${await token(alice)}` }
  const created = await one.app.inject({ method: 'POST', url: '/api/v1/chat', headers: bearer, payload: { participant_ids: [bob] } })
  t.equal(created.statusCode, 201)

  t.equal(await presenceOf(one.url, bob, bearer), false, 'alice may see bob, with whom she shares a conversation')
  t.equal(await presenceOf(one.url, alice, bearer), false, 'and herself (no socket open)')
  const hidden = await fetch(`${one.url}/api/v1/users/${eve}/presence`, { headers: bearer })
  t.equal(hidden.status, 403, 'but not eve, with whom she shares none')
  t.same(await hidden.json(), { error: `you share no conversation with user ${eve}`, code: 'forbidden' })
  const batch = await fetch(`${one.url}/api/v1/users/presence?user_ids=${bob},${eve}`, { headers: bearer })
  t.equal(batch.status, 403, 'a batch with one hidden user is refused whole')
  t.equal((await fetch(`${one.url}/api/v1/users/${bob}/presence`)).status, 401, 'no token: 401')

  for (const query of ['user_ids=not-a-uuid', 'user_ids=', `user_ids=${bob},`, `user_ids=${Array.from({ length: 101 }, () => bob).join(',')}`, '']) {
    const response = await fetch(`${one.url}/api/v1/users/presence?${query}`, { headers: bearer })
    t.equal(response.status, 400, `batch ${query.slice(0, 30) || '(no query)'}: 400`)
    t.equal(((await response.json()) as { code: string }).code, 'bad_request')
  }
  const bad = await fetch(`${one.url}/api/v1/users/nope/presence`, { headers: bearer })
  t.equal(bad.status, 400, 'an invalid user id: 400')
})
