// No credential reaches a log line: the api and jobs processes run as `pnpm start` runs them
// (server.ts, JSON logs at trace level), clients use every way a credential travels (a bearer
// header, the websocket's ?access_token=, the dashboard's ?token= and login form, a cookie), and
// the captured output of both processes is searched for each credential.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { loggerOptions } from '@chatty/server'
import { SignJWT } from 'jose'
import { rawHttp, testDatabase, users, waitFor } from '@chatty/db/testing'
import { rawSocket } from './ws-helper.ts'
import { startService, type Service } from './process-helper.ts'

const { alice, bob } = users
const SECRET = 'log-test-secret-log-test-secret-0123'
const ADMIN_TOKEN = 'admin-token-never-logged-0123456789'
const WRONG_ADMIN_TOKEN = 'wrong-admin-token-never-logged-987'

function sign (sub: string, secret = SECRET): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret))
}

interface LogLine { msg?: string, req?: { url?: string } }

function logLines (service: Service): LogLine[] {
  return service.output.flatMap((chunk) => chunk.split('\n')).flatMap((line) => {
    try { return [JSON.parse(line) as LogLine] } catch { return [] }
  })
}

/** The urls of the requests a process logged ("incoming request"). */
const loggedUrls = (service: Service): string[] =>
  logLines(service).filter((line) => line.msg === 'incoming request').map((line) => line.req?.url ?? '')

/** Waits until a request with a fresh marker is logged: every line written before it is in. */
async function drained (service: Service, base: string): Promise<void> {
  const marker = `/healthz?marker=${randomUUID()}`
  await fetch(`${base}${marker}`)
  await waitFor(async () => loggedUrls(service).includes(marker) ? true : undefined, { timeoutMs: 10_000 })
}

t.test('tokens, cookies and admin tokens never appear in the api\'s or the jobs\' logs, while the requests are logged', async (t) => {
  const database = await testDatabase(t)
  const env = { DB_URL: database.url, DB_POOL_MAX: '5', LOG_LEVEL: 'trace' }
  const [api, jobs] = await Promise.all([
    startService(t, 'services/api/src/server.ts', { ...env, AUTH_MODE: 'jwt', JWT_SECRET: SECRET }),
    startService(t, 'services/jobs/src/server.ts', { ...env, JOBS_ADMIN_TOKEN: ADMIN_TOKEN, JOBS_ADMIN_HOST: '127.0.0.1' })
  ])
  const aliceToken = await sign(alice)
  const forgedToken = await sign(bob, 'not-the-secret-not-the-secret-012345')
  const secrets = { aliceToken, forgedToken, ADMIN_TOKEN, WRONG_ADMIN_TOKEN }

  // REST with a bearer header: a conversation, a send (stored by the jobs process), the history.
  const auth = { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' }
  const created = await fetch(`${api.url}/api/v1/chat`, { method: 'POST', headers: auth, body: JSON.stringify({ participant_ids: [bob] }) })
  t.equal(created.status, 201)
  const chatId = ((await created.json()) as { id: string }).id
  const sent = await fetch(`${api.url}/api/v1/chat/${chatId}`, { method: 'POST', headers: auth, body: JSON.stringify({ body: 'over http' }) })
  t.equal(sent.status, 202)
  t.equal((await fetch(`${api.url}/api/v1/chat/${chatId}/messages`, { headers: { authorization: `Bearer ${forgedToken}` } })).status, 401, 'a forged bearer token is refused')

  // The websocket with ?access_token=: join, send, receive; and a forged one, refused.
  const socket = rawSocket(t, api.url, { access_token: aliceToken })
  t.match(await socket.next(), { type: 'connected' })
  socket.send({ type: 'join', conversation_id: chatId, since_seq: 0 })
  await socket.until((frame) => frame.type === 'message' && frame.message.body === 'over http')
  socket.send({ type: 'message', conversation_id: chatId, body: 'over the socket', ref: 'r1' })
  await socket.until((frame) => frame.type === 'message' && frame.message.body === 'over the socket')
  socket.ws.close()
  await socket.closed
  const forged = rawSocket(t, api.url, { access_token: forgedToken })
  t.equal((await forged.refused).status, 401, 'a forged ?access_token= is refused')

  // A request Node refuses before routing (header fields too large) that carries the token.
  const apiPort = Number(new URL(api.url).port)
  const refused = await rawHttp(apiPort, `GET /api/v1/chat/ws?access_token=${aliceToken} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${aliceToken}\r\nX-Padding: ${'p'.repeat(20_000)}\r\n\r\n`)
  t.equal(refused.status, 431, 'the oversized request is answered 431')

  // The dashboard: ?token= (right and wrong), the login form, the cookie it sets, the bearer API.
  const page = await fetch(`${jobs.url}/admin?token=${ADMIN_TOKEN}`, { redirect: 'manual' })
  t.equal(page.status, 303, '?token= logs in')
  const cookie = page.headers.get('set-cookie')!.split(';')[0]!
  const session = cookie.split('=')[1]!
  t.equal((await fetch(`${jobs.url}/admin?token=${WRONG_ADMIN_TOKEN}`, { redirect: 'manual' })).status, 401, 'a wrong ?token= is refused')
  const login = await fetch(`${jobs.url}/admin/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `token=${ADMIN_TOKEN}`
  })
  t.equal(login.status, 303, 'the login form logs in')
  t.equal((await fetch(`${jobs.url}/admin`, { headers: { cookie } })).status, 200, 'the session cookie opens the page')
  t.equal((await fetch(`${jobs.url}/admin/api/counts`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status, 200)
  t.equal((await fetch(`${jobs.url}/admin/api/counts`, { headers: { authorization: `Bearer ${WRONG_ADMIN_TOKEN}` } })).status, 401)

  await drained(api, api.url)
  await drained(jobs, jobs.url)

  // The requests were logged, with the credentials' values replaced.
  const apiUrls = loggedUrls(api)
  t.ok(apiUrls.includes('/api/v1/chat/ws?access_token=[redacted]'), 'the websocket upgrades are logged, their token redacted')
  t.ok(apiUrls.includes(`/api/v1/chat/${chatId}`), 'the REST requests are logged')
  const jobsUrls = loggedUrls(jobs)
  t.ok(jobsUrls.includes('/admin?token=[redacted]'), 'the dashboard\'s ?token= requests are logged, the token redacted')
  t.ok(jobsUrls.includes('/admin/login'), 'the login is logged')

  for (const [service, name] of [[api, 'api'], [jobs, 'jobs']] as const) {
    const output = service.output.join('\n')
    for (const [what, value] of Object.entries({ ...secrets, session })) {
      t.notOk(output.includes(value), `${name}'s log holds no ${what}`)
    }
    t.notOk(output.includes('rawPacket'), `${name}'s log holds no refused request's bytes`)
  }
})

t.test('a line that holds headers or a parser error has the credentials censored', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done() } })
  const app = Fastify({ logger: { ...loggerOptions({ level: 'info', pretty: false }), stream } })
  t.teardown(() => app.close())
  app.get('/', async (request) => {
    const parserError = Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_METHOD', rawPacket: Buffer.from('GET /?access_token=raw-secret') })
    request.log.info({ headers: request.headers, upstream: { headers: { 'set-cookie': 'session=cookie-secret', 'x-chatty-signature': 'sha256=sig-secret' } }, err: parserError }, 'details')
    return { ok: true }
  })
  await app.inject({ url: '/?token=query-secret', headers: { authorization: 'Bearer header-secret', cookie: 'chatty_jobs_admin=cookie-secret' } })
  const details = JSON.parse(lines.find((line) => line.includes('"details"'))!)
  t.equal(details.headers.authorization, '[redacted]')
  t.equal(details.headers.cookie, '[redacted]')
  t.same(details.upstream.headers, { 'set-cookie': '[redacted]', 'x-chatty-signature': '[redacted]' })
  t.equal(details.err.rawPacket, '[redacted]')
  t.equal(details.err.code, 'HPE_INVALID_METHOD', 'the rest of the error is kept')
  const all = lines.join('')
  for (const secret of ['query-secret', 'header-secret', 'cookie-secret', 'sig-secret']) t.notOk(all.includes(secret), `no ${secret} in any line`)
  t.ok(all.includes('/?token=[redacted]'), 'the request is logged, its token redacted')
})
