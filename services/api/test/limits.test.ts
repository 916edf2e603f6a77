import t from 'tap'
import { randomUUID } from 'node:crypto'
import { users, waitFor } from '@chatty/db/testing'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { buildTestApp } from './helper.ts'
import { listen } from './ws-helper.ts'

const { alice, bob } = users
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

t.test('too many requests from one address answer 429 rate_limited with retry_after_ms', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_IP_MAX: 5 })
  const codes: number[] = []
  for (let i = 0; i < 6; i++) codes.push((await app.inject('/api/v1/chat/00000000-0000-4000-8000-000000000000/participants')).statusCode)
  t.same(codes, [404, 404, 404, 404, 404, 429])
  const limited = await app.inject('/api/v1/chat/00000000-0000-4000-8000-000000000000/participants')
  t.equal(limited.json().code, 'rate_limited')
  t.ok(limited.json().retry_after_ms > 0 && limited.json().retry_after_ms <= 60_000)
  t.ok(Number(limited.headers['retry-after']) > 0)
  const other = await app.inject({ url: '/api/v1/chat/00000000-0000-4000-8000-000000000000/participants', remoteAddress: '10.0.0.2' })
  t.equal(other.statusCode, 404, 'another address is not limited')
  t.equal((await app.inject('/healthz')).statusCode, 200, 'health checks are never limited')
})

t.test('one user is limited on their own; another user is not', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_USER_MAX: 3 })
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json()
  const send = (sender: string) => app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { sender_id: sender, body: 'hi' } })
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await send(alice)).statusCode)
  t.same(codes, [202, 202, 202, 429])
  t.equal((await send(bob)).statusCode, 202)
})

t.test('a user named in the query (DELETE routes, AUTH_MODE=none) is limited as that user', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_USER_MAX: 3 })
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json()
  const remove = (sender: string) => app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat.id}/messages/00000000-0000-4000-8000-000000000000?sender_id=${sender}` })
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await remove(alice)).statusCode)
  t.same(codes, [404, 404, 404, 429], 'the fourth delete in the window is over alice\'s limit')
  t.equal((await remove(bob)).statusCode, 404, 'bob is not')
  const leave = await app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat.id}/participants/${alice}?actor_id=${alice}` })
  t.equal(leave.statusCode, 429, 'actor_id in the query counts too')
})

t.test('behind a trusted proxy, the limit is per forwarded client address', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_IP_MAX: 2, TRUST_PROXY: '127.0.0.1' })
  const get = (client: string) => app.inject({ url: '/api/v1/chat/00000000-0000-4000-8000-000000000000/participants', headers: { 'x-forwarded-for': client } })
  t.same([(await get('203.0.113.1')).statusCode, (await get('203.0.113.1')).statusCode, (await get('203.0.113.1')).statusCode], [404, 404, 429])
  t.equal((await get('203.0.113.2')).statusCode, 404, 'another client behind the same proxy is not limited')
})

t.test('with Redis, limits hold across api processes', async (t) => {
  const prefix = `test-${randomUUID()}:`
  const config = { RATE_LIMIT_IP_MAX: 4, REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix }
  const { app: first, dbUrl } = await buildTestApp(t, config)
  const { app: second } = await buildTestApp(t, config, dbUrl)
  const url = '/api/v1/chat/00000000-0000-4000-8000-000000000000/participants'
  const codes = [
    (await first.inject(url)).statusCode, (await second.inject(url)).statusCode,
    (await first.inject(url)).statusCode, (await second.inject(url)).statusCode,
    (await first.inject(url)).statusCode, (await second.inject(url)).statusCode
  ]
  t.same(codes, [404, 404, 404, 404, 429, 429])
})

t.test('responses carry security headers; CORS answers only configured origins', async (t) => {
  const { app } = await buildTestApp(t, { CORS_ORIGINS: 'https://app.example' })
  const res = await app.inject('/')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/)
  t.ok(res.headers['strict-transport-security'])
  const allowed = await app.inject({ method: 'OPTIONS', url: '/api/v1/chat', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } })
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example')
  const denied = await app.inject({ method: 'OPTIONS', url: '/api/v1/chat', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.not(denied.headers['access-control-allow-origin'], 'https://evil.example')
})

t.test('every response carries the same security headers: pages, unknown paths, errors, the docs', async (t) => {
  const { app } = await buildTestApp(t)
  const expected = {
    'content-security-policy': "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'none';" +
      "img-src 'self' data: validator.swagger.io;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' 'unsafe-inline';" +
      "upgrade-insecure-requests;connect-src 'self'",
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-site',
    'origin-agent-cluster': '?1',
    'referrer-policy': 'no-referrer',
    'strict-transport-security': 'max-age=31536000; includeSubDomains',
    'x-content-type-options': 'nosniff',
    'x-dns-prefetch-control': 'off',
    'x-download-options': 'noopen',
    'x-frame-options': 'SAMEORIGIN',
    'x-permitted-cross-domain-policies': 'none',
    'x-xss-protection': '0'
  }
  const chat = await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice] } })
  for (const url of ['/', '/nope', '/docs', `/api/v1/chat/${chat.json().chat_id}/messages`, '/api/v1/chat/00000000-0000-4000-8000-000000000000/messages', '/api/v1/chat/x/messages']) {
    const res = await app.inject(url)
    const security = Object.fromEntries(Object.entries(res.headers).filter(([name]) => name in expected))
    t.same(security, expected, `${url} (${res.statusCode})`)
    t.notOk(res.headers['x-powered-by'])
  }
})

/** An upgrade request over a real socket: the refused answer's status and headers, or the 101's. */
async function upgrade (url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: IncomingHttpHeaders }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, {
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers }
    })
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode ?? 0, headers: res.headers })
    })
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('a refused websocket upgrade carries the security headers too; an upgrade that goes through is answered by ws', async (t) => {
  const { url } = await listen(t, { WS_ALLOWED_ORIGINS: 'https://app.example' })
  const helmetHeaders = ['content-security-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options', 'cross-origin-resource-policy']
  const refusals: Array<[string, Record<string, string>, number]> = [
    ['/api/v1/chat/ws', {}, 400],
    [`/api/v1/chat/ws?user_id=${alice}`, { origin: 'https://evil.example' }, 403],
    ['/nope', {}, 404]
  ]
  for (const [path, headers, status] of refusals) {
    const res = await upgrade(url, path, headers)
    t.equal(res.status, status, `${path} is refused`)
    for (const name of helmetHeaders) t.ok(res.headers[name], `${path} (${status}) has ${name}`)
    t.notOk(res.headers['x-powered-by'])
  }
  const plain = await new Promise<IncomingHttpHeaders>((resolve) => httpRequest(`${url}/api/v1/chat/ws?user_id=${alice}`, { agent: false }, (res) => { res.resume(); resolve(res.headers) }).end())
  t.ok(plain['content-security-policy'], 'the 426 answer to a plain GET has them')
  const opened = await upgrade(url, `/api/v1/chat/ws?user_id=${alice}`)
  t.equal(opened.status, 101, 'an upgrade that is allowed opens')
})

t.test('while the database is unreachable the api answers 503 unavailable, not 500', async (t) => {
  const { app } = await buildTestApp(t, {}, 'postgres://postgres@127.0.0.1:1/nowhere')
  const res = await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice] } })
  t.equal(res.statusCode, 503)
  t.same(res.json(), { error: 'the database is unavailable; retry shortly', code: 'unavailable' })
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: 'down', checks: { postgres: 'down' } })
  t.equal((await app.inject('/healthz')).statusCode, 200, 'the process itself is up')
})

t.test('under overload (a blocked event loop) requests get 503 at once', async (t) => {
  const { app } = await buildTestApp(t, { MAX_EVENT_LOOP_DELAY_MS: 100 })
  const url = '/api/v1/chat/00000000-0000-4000-8000-000000000000/participants'
  // under-pressure compares the mean loop delay of each 100 ms sample window with the limit, so
  // the overload is sustained: the loop is blocked 150 ms at a time until a request is shed.
  const stalls = setInterval(() => {
    const until = Date.now() + 150
    while (Date.now() < until) { /* block the event loop */ }
  }, 1)
  t.teardown(() => clearInterval(stalls))
  const shed = await waitFor(async () => {
    const res = await app.inject(url)
    return res.statusCode === 503 ? res : undefined
  }, { timeoutMs: 3000, intervalMs: 10 })
  clearInterval(stalls)
  t.equal(shed.json().code, 'unavailable')
  t.equal(shed.headers['retry-after'], '5')
  // Once the loop is calm again, requests are served.
  const served = await waitFor(async () => {
    const res = await app.inject(url)
    return res.statusCode === 404 ? res : undefined
  }, { timeoutMs: 3000, intervalMs: 10 })
  t.equal(served.statusCode, 404, 'requests are served again once the loop is calm')
})
