// infra/nginx.conf in front of two api processes, exercised through nginx only. The config is
// derived from the file at run time with only what cannot work outside Docker replaced (the
// Docker resolver, the `api` service name and its `resolve`, paths, the port); the upgrade map,
// proxy headers, timeouts, buffering, least_conn and keepalive are the file's own, so breaking
// one of them fails this test. Needs nginx (Debian's 1.22 is enough) on PATH; skipped without
// it, except under CI.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request, Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTeardown, programPath, skipUnlessInstalled, sleep, testDatabase, users, waitFor } from '@chatty/db/testing'
import { REPO_ROOT } from '@chatty/db'
import { connectChat, createRestClient, type ChatSocket, type Message } from '@chatty/client'
import { SignJWT } from 'jose'
import { sendMessage } from '@chatty/chat'
import { ConfigSchema } from '../src/plugins/external/env.ts'
import { nonCanonical } from '../src/plugins/app/access.ts'
import { buildTestApp } from './helper.ts'
import { rawRequest, routesOf, storedState, victimValues, walkRoutes } from './route-walk-helper.ts'
import { range } from './ws-helper.ts'
import { freePort, startService, type Service } from './process-helper.ts'

const { alice, bob, eve, carol } = users
/** Messages exchanged: half over websockets, half over HTTP POST. */
const TOTAL = 40
/** A client address of its own (all of 127/8 is loopback on Linux), as nginx sees it. */
const CLIENT_ADDRESS = '127.0.0.2'

/** Replaces the one match of `pattern`; throws when the file no longer has that shape. */
function replaceOnce (text: string, pattern: RegExp, replacement: string, what: string): string {
  const matches = text.match(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`)) ?? []
  if (matches.length !== 1) throw new Error(`infra/nginx.conf: expected one ${what}, found ${matches.length}`)
  return text.replace(pattern, replacement)
}

/** infra/nginx.conf made runnable here, in front of the given api ports. */
function deriveConfig (source: string, options: { apiPorts: number[], port: number, dir: string, runAsRoot: boolean }): string {
  let config = source
  config = replaceOnce(config, /^[ \t]*resolver [^;]*;[^\n]*\n/m, '', 'resolver line')
  config = replaceOnce(config, /^([ \t]*)server api:8080 resolve( [^;]*)?;/m,
    options.apiPorts.map((port) => `$1server 127.0.0.1:${port}$2;`).join('\n'), '`server api:8080 resolve` line')
  config = replaceOnce(config, /^([ \t]*)listen 8080;/m, `$1listen 127.0.0.1:${options.port};`, '`listen 8080` line')
  config = replaceOnce(config, /^([ \t]*)access_log \S+ upstream;/m, `$1access_log ${options.dir}/access.log upstream;`, 'access_log line')
  // Debian's compiled-in temp paths are not writable by every user.
  config = replaceOnce(config, /^(http \{\n)/m,
    `$1  client_body_temp_path ${options.dir}/body;\n  proxy_temp_path ${options.dir}/proxy;\n`, '`http {` block')
  const main = [`daemon off;`, `pid ${options.dir}/nginx.pid;`]
  // A root master runs its workers as nobody, who cannot enter the private temp dir.
  if (options.runAsRoot) main.push('user root;')
  return `${main.join('\n')}\n${config}`
}

/** An nginx time ("1h", "60s", "500ms", "30"), in milliseconds. */
function nginxTimeMs (value: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
  let total = 0
  for (const [, amount, unit] of value.matchAll(/(\d+)(ms|s|m|h|d)?/g)) total += Number(amount) * units[unit ?? 's']!
  return total
}

/** The directives of the `location <path>` block (nginx.conf's blocks here hold no nested braces). */
function locationBlock (config: string, location: string): string {
  const start = config.indexOf(`location ${location} {`)
  if (start === -1) throw new Error(`no location ${location}`)
  return config.slice(start, config.indexOf('}', start))
}

interface Nginx {
  /** http://127.0.0.1:<port> */
  url: string
  output: string[]
}

async function startNginx (t: Test, config: string, dir: string, port: number): Promise<Nginx> {
  const path = join(dir, 'nginx.conf')
  await writeFile(path, config)
  const child = spawn(programPath('nginx'), ['-p', dir, '-c', path], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  const exited = once(child, 'exit')
  onTeardown(t, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    // TERM is nginx's fast shutdown: it does not wait for open websockets.
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}):\n${output.join('')}`)
    const answered = await fetch(url).then((response) => response.ok, () => false)
    if (answered) return { url, output }
    if (Date.now() > deadline) throw new Error(`nginx did not answer within 10 s:\n${output.join('')}`)
    await sleep(50)
  }
}

interface RequestLog { url: string, remoteAddress: string, remotePort: number }

/** The requests an api process logged (Fastify's "incoming request" lines). */
function requestsOf (service: Service): RequestLog[] {
  const logged: RequestLog[] = []
  for (const line of service.output) {
    let entry: { msg?: string, req?: RequestLog } = {}
    try { entry = JSON.parse(line) } catch { continue }
    if (entry.msg === 'incoming request' && entry.req !== undefined) logged.push(entry.req)
  }
  return logged
}

/** GET through nginx from a given local address, on a given agent. */
async function get (url: string, options: { localAddress?: string, agent?: Agent } = {}): Promise<{ status: number, body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress: options.localAddress, agent: options.agent }, (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk.toString() })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(body) }))
    })
    req.on('error', reject)
    req.end()
  })
}

interface Member {
  name: string
  user: string
  chat: ChatSocket
  /** Index of the api process the socket was upgraded on. */
  api: number
  /** Every message frame off the wire, before the client drops repeats. */
  frames: Message[]
}

t.test('nginx.conf in front of two api processes: REST, websockets on both, every message once in order, client addresses', { skip: skipUnlessInstalled(['nginx']) }, async (t) => {
  const source = readFileSync(join(REPO_ROOT, 'infra/nginx.conf'), 'utf8')

  const pingIntervalMs = Number((ConfigSchema.properties.WS_PING_INTERVAL_MS as { default?: unknown }).default)
  const wsBlock = locationBlock(source, '= /api/v1/chat/ws')
  const readTimeout = /proxy_read_timeout (\S+);/.exec(wsBlock)?.[1]
  t.ok(readTimeout !== undefined && nginxTimeMs(readTimeout) > pingIntervalMs,
    `the websocket location's proxy_read_timeout (${readTimeout}) outlasts the api's ping period (${pingIntervalMs} ms), so pings keep idle sockets open`)

  const database = await testDatabase(t)
  const env = {
    DB_URL: database.url,
    DB_POOL_MAX: '5',
    // nginx connects from 127.0.0.1; the client address comes from its X-Forwarded-For.
    TRUST_PROXY: '127.0.0.1'
  }
  // Two api processes behind nginx, and the jobs process that stores messages sent over HTTP.
  const [api1, api2] = await Promise.all([
    startService(t, 'services/api/src/server.ts', env),
    startService(t, 'services/api/src/server.ts', env),
    startService(t, 'services/jobs/src/server.ts', env)
  ])
  const apis = [api1!, api2!]
  const dir = await mkdtemp(join(tmpdir(), 'chatty-nginx-'))
  onTeardown(t, () => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  const config = deriveConfig(source, {
    apiPorts: apis.map((api) => Number(new URL(api.url).port)),
    port,
    dir,
    runAsRoot: process.getuid?.() === 0
  })
  const nginx = await startNginx(t, config, dir, port)

  // GET / (go-chatty's status) through nginx.
  t.same(await get(`${nginx.url}/`), { status: 200, body: { status: 'OK' } }, 'GET / answers go-chatty\'s status')

  // Plain requests reuse keep-alive connections to the api (no "Connection: close", HTTP/1.1):
  // twenty requests over one client connection arrive over at most one connection per process.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  onTeardown(t, () => agent.destroy())
  for (const n of range(1, 20)) await get(`${nginx.url}/?keepalive=${n}`, { agent })
  const keepAliveRequests = (): RequestLog[] => apis.flatMap((api) => requestsOf(api).filter((req) => req.url.startsWith('/?keepalive=')))
  await waitFor(() => keepAliveRequests().length === 20, 'the 20 requests to be logged', 5000)
  const upstreamConnections = new Set(apis.flatMap((api, index) =>
    requestsOf(api).filter((req) => req.url.startsWith('/?keepalive=')).map((req) => `${index}:${req.remotePort}`)))
  t.ok(upstreamConnections.size <= 2, `20 plain requests used ${upstreamConnections.size} connection(s) to the api processes`)

  // The client's own address reaches the api (X-Forwarded-For, TRUST_PROXY).
  await get(`${nginx.url}/?from=client`, { localAddress: CLIENT_ADDRESS })
  await waitFor(() => apis.some((api) => requestsOf(api).some((req) => req.url === '/?from=client')), 'the request to be logged', 5000)
  const seen = apis.flatMap((api) => requestsOf(api)).find((req) => req.url === '/?from=client')
  t.equal(seen?.remoteAddress, CLIENT_ADDRESS, 'the api sees the client\'s address, not nginx\'s')

  const rest = createRestClient({ baseUrl: nginx.url })
  const { id: chatId } = await rest.createChat({ participant_ids: [alice, bob, carol] })

  // Sockets opened one at a time: each lands where fewer sockets are open (least_conn).
  const open = [0, 0]
  const upgrades = (index: number): number => requestsOf(apis[index]!).filter((req) => req.url.startsWith('/api/v1/chat/ws')).length
  async function connect (user: string): Promise<{ chat: ChatSocket, api: number }> {
    const before = [upgrades(0), upgrades(1)]
    const chat = await connectChat({ url: nginx.url, userId: user, requestTimeoutMs: 10_000 })
    onTeardown(t, () => chat.close())
    await waitFor(() => upgrades(0) + upgrades(1) > before[0]! + before[1]!, 'the upgrade to be logged', 5000)
    const api = upgrades(0) > before[0]! ? 0 : 1
    open[api]!++
    return { chat, api }
  }

  const members: Member[] = []
  for (const [name, user] of [['alice', alice], ['bob', bob], ['carol phone', carol], ['carol laptop', carol]] as const) {
    const fewer = open[0] === open[1] ? undefined : open[0]! < open[1]! ? 0 : 1
    const { chat, api } = await connect(user)
    if (fewer !== undefined) t.equal(api, fewer, `${name}'s socket went to the process with fewer sockets`)
    const member: Member = { name, user, chat, api, frames: [] }
    chat.on('frame', (frame) => { if (frame.type === 'message') member.frames.push(frame.message) })
    await chat.join(chatId)
    members.push(member)
  }
  t.same(open, [2, 2], 'four sockets through nginx: two on each api process')

  // Members on different processes exchange messages over websockets and HTTP POST, all
  // through nginx, a few at a time.
  const sentIds: string[] = []
  let next = 0
  await Promise.all(range(1, 8).map(async () => {
    while (next < TOTAL) {
      const n = next++
      const member = members[n % members.length]!
      if (n % 2 === 0) sentIds.push((await member.chat.send(chatId, { body: `ws ${n}` })).id)
      else sentIds.push((await rest.sendMessage(chatId, { sender_id: member.user, body: `http ${n}` })).message_id)
    }
  }))
  await waitFor(() => members.every((member) => member.frames.length >= TOTAL), `every member to receive ${TOTAL} messages`, 10_000)
  // The marker: one more message through the same fan-out; anything extra arrives before it.
  const marker = await members[0]!.chat.send(chatId, { body: 'marker' })
  await waitFor(() => members.every((member) => member.frames.some((message) => message.id === marker.id)), 'every member to receive the marker')
  for (const member of members) {
    t.equal(member.frames.at(-1)?.id, marker.id, `${member.name}: the marker last`)
    const frames = member.frames.slice(0, -1)
    t.same(frames.map((message) => message.seq), range(1, TOTAL), `${member.name} (api ${member.api + 1}): before it, every message once, in seq order`)
    t.same(new Set(frames.map((message) => message.id)), new Set(sentIds), `${member.name}: exactly the messages sent, over both paths`)
  }

  // History over REST through nginx (the marker aside).
  const history = await rest.listMessages(chatId, { before_seq: TOTAL + 1, limit: TOTAL })
  t.same(history.messages.map((message) => message.seq).sort((a, b) => a - b), range(1, TOTAL), 'the history holds every message')
  t.same(new Set(history.messages.map((message) => message.body)), new Set(range(0, TOTAL - 1).map((n) => `${n % 2 === 0 ? 'ws' : 'http'} ${n}`)), 'with the bodies sent')

  // Balancing by open connections, not in turn: once one process's sockets are gone, the next
  // two sockets both go to it.
  const emptied = members[0]!.api
  for (const member of members.filter((member) => member.api === emptied)) {
    await member.chat.close()
    open[emptied]!--
  }
  await sleep(200) // nginx releases the upstream connections once the close went through
  for (const n of [1, 2]) {
    const { api } = await connect(alice)
    t.equal(api, emptied, `new socket ${n} went to the process whose sockets closed`)
  }
})

t.test('nginx.conf\'s access log holds the paths of requests, never the ?access_token= of a websocket upgrade', { skip: skipUnlessInstalled(['nginx']) }, async (t) => {
  const { SignJWT } = await import('jose')
  const { rawSocket } = await import('./ws-helper.ts')
  const secret = 'nginx-log-secret-nginx-log-secret-01'
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(alice).setIssuedAt().setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret))
  const database = await testDatabase(t)
  const api = await startService(t, 'services/api/src/server.ts', { DB_URL: database.url, DB_POOL_MAX: '3', AUTH_MODE: 'jwt', JWT_SECRET: secret, TRUST_PROXY: '127.0.0.1' })
  const dir = await mkdtemp(join(tmpdir(), 'chatty-nginx-'))
  onTeardown(t, () => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  const source = readFileSync(join(REPO_ROOT, 'infra/nginx.conf'), 'utf8')
  const nginx = await startNginx(t, deriveConfig(source, { apiPorts: [Number(new URL(api.url).port)], port, dir, runAsRoot: process.getuid?.() === 0 }), dir, port)

  const socket = rawSocket(t, nginx.url, { access_token: token })
  t.match(await socket.next(), { type: 'connected' }, 'the upgrade through nginx with ?access_token= is accepted')
  socket.ws.close()
  await socket.closed
  t.equal((await fetch(`${nginx.url}/healthz?access_token=${token}`)).status, 200)

  // nginx writes a websocket's line when the connection ends.
  const accessLog = () => readFileSync(join(dir, 'access.log'), 'utf8')
  await waitFor(() => accessLog().includes('/healthz') && / 101 /.test(accessLog()), 'the request and the upgrade to be logged', 5000)
  t.notOk(accessLog().includes(token), 'the access log holds no token')
  t.notOk(accessLog().includes('access_token'), 'nor the query string that carried it')
  t.ok(accessLog().includes('"GET /api/v1/chat/ws HTTP/1.1" 101'), 'the upgrade is logged with its path')
  t.ok(accessLog().includes('"GET /healthz HTTP/1.1" 200'), 'the request is logged with its path')
  t.notOk(api.output.join('\n').includes(token), 'nor does the api\'s log')
})

t.test('nginx.conf in front of api processes in jwt mode: every route and the websocket in every spelling of its path, with no token or a non-member\'s: no 2xx, no upgrade, nothing stored', { skip: skipUnlessInstalled(['nginx']) }, async (t) => {
  const source = readFileSync(join(REPO_ROOT, 'infra/nginx.conf'), 'utf8')
  const database = await testDatabase(t)
  const secret = 'nginx-test-secret-nginx-test-secret!'
  const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret))
  const env = { DB_URL: database.url, DB_POOL_MAX: '5', AUTH_MODE: 'jwt', JWT_SECRET: secret }
  const apis = await Promise.all([startService(t, 'services/api/src/server.ts', env), startService(t, 'services/api/src/server.ts', env)])
  const dir = await mkdtemp(join(tmpdir(), 'chatty-nginx-'))
  onTeardown(t, () => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  const config = deriveConfig(source, { apiPorts: apis.map((api) => Number(new URL(api.url).port)), port, dir, runAsRoot: process.getuid?.() === 0 })
  const nginx = await startNginx(t, config, dir, port)

  // Alice and bob's conversation with history, a read position and a block, made through nginx
  // (the messages stored directly: no jobs process here).
  const { app } = await buildTestApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: secret }, database.url)
  const asAlice = { authorization: `Bearer ${await token(alice)}` }
  const created = await rawRequest(nginx.url, { method: 'POST', target: '/api/v1/chat', headers: asAlice, body: { participant_ids: [bob] } })
  t.equal(created.status, 201)
  const chat = created.body.id as string
  const { message } = await sendMessage(app.chat, { conversationId: chat, senderId: alice, body: 'hello bob' })
  t.equal((await rawRequest(nginx.url, { method: 'POST', target: `/api/v1/chat/${chat}/read`, headers: { authorization: `Bearer ${await token(bob)}` }, body: { message_id: message.id } })).status, 200)
  t.equal((await rawRequest(nginx.url, { method: 'PUT', target: `/api/v1/users/${alice}/blocks/${eve}`, headers: asAlice })).status, 204)

  const refused = await rawRequest(nginx.url, { method: 'GET', target: `/%61pi/v1/chat/${chat}/messages` })
  t.same(refused, { status: 400, body: { error: 'the request target is not in canonical form', code: 'bad_request' } }, 'nginx answers a non-canonical path itself, in the api\'s error shape')

  const docs = await rawRequest(nginx.url, { method: 'GET', target: '/docs/json' })
  t.equal(docs.status, 200)
  const routes = routesOf(docs.body, victimValues(chat, message.id))
  const before = await storedState(database.url)
  const eveToken = await token(eve)
  await walkRoutes(t, nginx.url, routes, [{ name: 'no token', headers: {} }])
  await walkRoutes(t, nginx.url, routes.filter((route) => !(route.method === 'POST' && route.route === '/api/v1/chat')), [
    { name: 'eve\'s token', headers: { authorization: `Bearer ${eveToken}` } },
    { name: 'eve\'s token in the query', headers: {}, query: { access_token: eveToken } }
  ])
  t.same(await storedState(database.url), before, 'nothing stored or changed')

  // nginx refused every non-canonical spelling: none reached an api process.
  const reached = apis.flatMap((api) => requestsOf(api)).map((request) => request.url)
  t.ok(reached.length > 100, `${reached.length} requests reached the api processes`)
  t.same(reached.filter((url) => nonCanonical(url) !== undefined), [], 'no non-canonical target was proxied')
})
