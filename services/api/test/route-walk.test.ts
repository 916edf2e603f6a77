// Access is decided by the matched route (plugins/app/access.ts, auth.ts), never by the spelling
// of the URL: every route of the OpenAPI document and the websocket, walked over real HTTP in
// every spelling of its path with no token and with a non-member's token, answers no 2xx and no
// 101, and stores or changes nothing. Also: routes are protected unless declared public, 404s are
// rate limited per address, the query-string token works only on the websocket upgrade, CORS
// allows every routed method, and none mode counts a user's case variants as one user.
import t from 'tap'
import { connect, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { SignJWT } from 'jose'
import { Type } from 'typebox'
import { buildApp } from '../src/app.ts'
import { onTeardown, testDatabase, users } from '@chatty/db/testing'
import { buildTestApp, storeMessages } from './helper.ts'
import { rawRequest, routesOf, storedState, victimValues, walkRoutes } from './route-walk-helper.ts'

const { alice, bob, eve } = users
const SECRET = 'test-secret-test-secret-test-secret!'
const jwtConfig = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET, RATE_LIMIT_IP_MAX: 1_000_000, RATE_LIMIT_USER_MAX: 1_000_000 }

const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h')
  .sign(new TextEncoder().encode(SECRET))

t.test('every route and the websocket, in every spelling of its path, with no token or a non-member\'s: no 2xx, no upgrade, nothing stored', async (t) => {
  const { app, dbUrl } = await buildTestApp(t, jwtConfig)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  // Alice and bob's conversation, with history, a read position and a block.
  const created = await rawRequest(base, { method: 'POST', target: '/api/v1/chat', headers: { authorization: `Bearer ${await token(alice)}` }, body: { participant_ids: [bob] } })
  t.equal(created.status, 201)
  const chat = created.body.id as string
  const [message] = await storeMessages(app, chat, alice, ['hello bob', 'second'])
  t.equal((await rawRequest(base, { method: 'POST', target: `/api/v1/chat/${chat}/read`, headers: { authorization: `Bearer ${await token(bob)}` }, body: { message_id: message } })).status, 200)
  t.equal((await rawRequest(base, { method: 'PUT', target: `/api/v1/users/${alice}/blocks/${eve}`, headers: { authorization: `Bearer ${await token(alice)}` } })).status, 204)
  // A reaction and a pin of alice's, which the walk's DELETEs must not remove.
  t.equal((await rawRequest(base, { method: 'PUT', target: `/api/v1/chat/${chat}/messages/${message}/reactions/ok`, headers: { authorization: `Bearer ${await token(alice)}` } })).status, 200)
  t.equal((await rawRequest(base, { method: 'PUT', target: `/api/v1/chat/${chat}/pins/${message}`, headers: { authorization: `Bearer ${await token(alice)}` } })).status, 200)

  const docs = await rawRequest(base, { method: 'GET', target: '/docs/json' })
  t.equal(docs.status, 200, 'the OpenAPI document is public')
  const routes = routesOf(docs.body, victimValues(chat, message!))
  t.same(routes.filter((route) => route.public).map((route) => `${route.method} ${route.route}`).sort(), ['GET /', 'GET /healthz', 'GET /readyz'],
    'only the health routes are public in the document')
  t.ok(routes.some((route) => route.upgrade && route.route === '/api/v1/chat/ws'), 'the websocket route is walked as an upgrade')
  t.ok(routes.length >= 16, `${routes.length} routes walked`)

  const before = await storedState(dbUrl)
  const eveToken = await token(eve)
  const walked = await walkRoutes(t, base, routes, [{ name: 'no token', headers: {} }])
  // Any user may create a conversation of their own: that route is walked without a token only.
  const others = routes.filter((route) => !(route.method === 'POST' && route.route === '/api/v1/chat'))
  const asEve = await walkRoutes(t, base, others, [
    { name: 'eve\'s token', headers: { authorization: `Bearer ${eveToken}` } },
    { name: 'eve\'s token in the query', headers: {}, query: { access_token: eveToken } }
  ])
  t.comment(`statuses: ${[...walked.statuses, ...asEve.statuses].map(([status, n]) => `${status} x${n}`).join(', ')}`)
  t.same(await storedState(dbUrl), before, 'nothing stored or changed')
})

t.test('a route that declares no access requires a token; one declared public does not; an unknown access is refused', async (t) => {
  const { url } = await testDatabase(t)
  const app = await buildApp({ config: { DB_URL: url, DB_POOL_MAX: 2, MAX_EVENT_LOOP_DELAY_MS: 0, ...jwtConfig } })
  onTeardown(t, () => app.close())
  const Answer = { response: { 200: Type.Object({ ok: Type.Boolean() }) } }
  app.get('/added-later', { schema: Answer }, async () => ({ ok: true }))
  app.post('/internal/reindex', async () => ({ ok: true }))
  app.get('/status-page', { config: { access: 'public' }, schema: Answer }, async () => ({ ok: true }))
  t.throws(() => app.get('/typo', { config: { access: 'pubic' as 'public' } }, async () => ({})), /config\.access must be 'public' or 'user'/)
  await app.ready()

  const noToken = await app.inject('/added-later')
  t.same([noToken.statusCode, noToken.json().code], [401, 'unauthorized'], 'a new route outside /api is protected by default')
  t.equal((await app.inject({ method: 'POST', url: '/internal/reindex' })).statusCode, 401)
  const withToken = await app.inject({ url: '/added-later', headers: { authorization: `Bearer ${await token(alice)}` } })
  t.same([withToken.statusCode, withToken.json()], [200, { ok: true }])
  t.same((await app.inject('/status-page')).json(), { ok: true }, 'a route declared public answers without a token')
})

t.test('a path that matches no route is 404 {error, code} without a token, and counts against the address\'s limit', async (t) => {
  const { app } = await buildTestApp(t, { ...jwtConfig, RATE_LIMIT_IP_MAX: 3 })
  const answers = []
  for (const url of ['/api/v1/nope', '/API/v1/chat', '/wp-login.php', '/api/v1/nope']) answers.push(await app.inject(url))
  t.same(answers.map((answer) => [answer.statusCode, answer.json().code]), [[404, 'not_found'], [404, 'not_found'], [404, 'not_found'], [429, 'rate_limited']])
  t.equal((await app.inject('/healthz')).statusCode, 200, 'health checks are not limited')
  t.equal((await app.inject({ url: '/api/v1/nope', remoteAddress: '10.0.0.2' })).statusCode, 404, 'another address is not')
})

t.test('a token in the query string is ignored on REST and accepted on the websocket upgrade', async (t) => {
  const { app } = await buildTestApp(t, jwtConfig)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const aliceToken = await token(alice)
  const rest = await rawRequest(base, { method: 'GET', target: `/api/v1/users/${alice}/conversations?access_token=${aliceToken}` })
  t.same([rest.status, rest.body.code], [401, 'unauthorized'], 'REST with ?access_token= is as without a token')
  const header = await rawRequest(base, { method: 'GET', target: `/api/v1/users/${alice}/conversations`, headers: { authorization: `Bearer ${aliceToken}` } })
  t.equal(header.status, 200, 'the same token in the header is accepted')
  const upgrade = await rawRequest(base, { method: 'GET', target: `/api/v1/chat/ws?access_token=${aliceToken}`, upgrade: true })
  t.equal(upgrade.status, 101, 'the websocket upgrade takes ?access_token=')
  const plain = await rawRequest(base, { method: 'GET', target: `/api/v1/chat/ws?access_token=${aliceToken}` })
  t.same([plain.status, plain.body.code], [401, 'unauthorized'], 'the websocket route without an upgrade does not')
})

t.test('a refused websocket upgrade is answered and its connection closed by the server', async (t) => {
  const { app } = await buildTestApp(t, { ...jwtConfig, RATE_LIMIT_IP_MAX: 2 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  /** The first line of the answer to a hand-written upgrade request, once the server has closed the connection. */
  async function upgrade (target: string): Promise<string> {
    const socket = connect(port, '127.0.0.1')
    socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.alloc(16).toString('base64')}\r\n\r\n`)
    let answer = ''
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString() })
    const timer = setTimeout(() => socket.destroy(new Error(`the server kept the connection of ${target} open`)), 10_000)
    try {
      await once(socket, 'end')
    } finally {
      clearTimeout(timer)
      socket.destroy()
    }
    return answer.split('\r\n')[0]!
  }
  t.equal(await upgrade(`/%61pi/v1/chat/ws?user_id=${alice}`), 'HTTP/1.1 400 Bad Request', 'a non-canonical path')
  t.equal(await upgrade(`/api/v1/chat/ws?user_id=${alice}`), 'HTTP/1.1 401 Unauthorized', 'no token')
  t.equal(await upgrade(`/api/v1/chat/ws?user_id=${alice}`), 'HTTP/1.1 429 Too Many Requests', 'over the address\'s limit')
})

t.test('CORS: a browser preflight for every method a route answers is allowed, PATCH included, without a token', async (t) => {
  const { app } = await buildTestApp(t, { ...jwtConfig, CORS_ORIGINS: 'https://app.example' })
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: `/api/v1/chat/${alice}/messages/${bob}`,
    headers: { origin: 'https://app.example', 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization, content-type' }
  })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example')
  const methods = String(preflight.headers['access-control-allow-methods']).split(/,\s*/).sort()
  t.same(methods, ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT'])
})

t.test('AUTH_MODE=none: a user id in upper, lower or mixed case counts against one per-user limit', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_USER_MAX: 3 })
  // An id with letters in it (the shared fixtures' ids are all digits).
  const dana = 'dada0dad-dada-4ada-8ada-dadadadadada'
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [dana, bob] } })).json().id
  const mixed = dana.replace(/[a-f]/g, (letter, i: number) => (i % 2 === 0 ? letter.toUpperCase() : letter))
  const codes = []
  for (const sender of [dana, dana.toUpperCase(), mixed, dana.toUpperCase()]) {
    codes.push((await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: sender, body: 'hi' } })).statusCode)
  }
  t.same(codes, [202, 202, 202, 429], 'the fourth send in the window is over dana\'s limit, however her id is written')
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: bob, body: 'hi' } })).statusCode, 202, 'bob is not limited')
})
