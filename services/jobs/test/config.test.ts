// The jobs service's queue configuration and its process: WORKER_QUEUES (or ASYNQ_QUEUES) and
// the JOBS_* variables reach the queue, a bad queue list stops start-up, and server.ts serves
// the dashboard on JOBS_ADMIN_PORT until SIGTERM.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { freePort } from '@chatty/bus/testing'
import t from 'tap'
import { onTeardown, testDatabase, waitFor } from '@chatty/db/testing'
import { buildJobs } from '../src/app.ts'
import { createChat, enqueueMessage, lockConversation, startJobs } from './helper.ts'

const SERVER = new URL('../src/server.ts', import.meta.url).pathname

t.test('a bad WORKER_QUEUES stops start-up with a message naming the variable and the bad part', async (t) => {
  await t.rejects(buildJobs({ config: { DB_URL: 'postgres://127.0.0.1/unused', WORKER_QUEUES: 'critical=6,low=x' } }),
    { message: 'WORKER_QUEUES="critical=6,low=x": invalid queue weight "low=x": expected name=positive integer, e.g. "critical=6"' })
  await t.rejects(buildJobs({ config: { DB_URL: 'postgres://127.0.0.1/unused', ASYNQ_QUEUES: 'crit:ical=1' } }),
    /^ASYNQ_QUEUES="crit:ical=1": invalid queue name "crit:ical"/)
  await t.rejects(buildJobs({ config: { DB_URL: 'postgres://127.0.0.1/unused', WORKER_QUEUES: 'a=1,a=2' } }), /WORKER_QUEUES="a=1,a=2": queue "a" is listed twice/)
  await t.rejects(buildJobs({ config: { DB_URL: 'postgres://127.0.0.1/unused', JOBS_TIMEOUT_MS: 0 } }), /JOBS_TIMEOUT_MS/)
  await t.rejects(buildJobs({ config: { DB_URL: 'postgres://127.0.0.1/unused', JOBS_ADMIN_TOKEN: 'too-short' } }), /JOBS_ADMIN_TOKEN must NOT have fewer than 16 characters/)
})

t.test('go-chatty\'s ASYNQ_QUEUES sets the served queues and their weights', async (t) => {
  const { jobs } = await startJobs(t, 'postgres', { WORKER_QUEUES: undefined, ASYNQ_QUEUES: 'urgent=5,default=2' })
  t.same((await jobs.inject('/admin/api/counts')).json().queues.map((row: { queue: string, weight: number }) => [row.queue, row.weight]),
    [['urgent', 5], ['default', 2]])
})

t.test('JOBS_TIMEOUT_MS cuts off an attempt that hangs, which then fails with the timeout', async (t) => {
  const { jobs, db, client } = await startJobs(t, 'postgres', { JOBS_TIMEOUT_MS: 300 })
  const chat = await createChat(db)
  const release = await lockConversation(db, chat)
  const { jobId } = await enqueueMessage(client, chat, { maxAttempts: 1 })
  const failed = await waitFor(async () => {
    const job = (await jobs.inject(`/admin/api/jobs/${jobId}`)).json()
    return job.state === 'failed' ? job : undefined
  }, 'the attempt to time out')
  t.equal(failed.last_error, 'job attempt timed out after 300 ms')
  t.equal(failed.attempts, 1)
  await release()
})

function runServer (env: Record<string, string>) {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, LOG_LEVEL: 'warn', WORKER_QUEUES: 'default=1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  return { child, exited, output: () => output }
}

t.test('the jobs process serves /healthz and the dashboard on JOBS_ADMIN_PORT, and ends on SIGTERM', async (t) => {
  const { url } = await testDatabase(t)
  const port = await freePort()
  const server = runServer({ DB_URL: url, QUEUE_BACKEND: 'postgres', JOBS_ADMIN_PORT: String(port), JOBS_ADMIN_HOST: '127.0.0.1', JOBS_ADMIN_TOKEN: 'process-test-token-0123' })
  onTeardown(t, () => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })
  const health = await waitFor(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined)
    return response?.ok === true ? response.json() : undefined
  }, `the jobs process to listen (output: ${server.output()})`, 20_000)
  t.same(health, { status: 'ok' })
  t.equal((await fetch(`http://127.0.0.1:${port}/admin/api/counts`)).status, 401)
  const counts = await fetch(`http://127.0.0.1:${port}/admin/api/counts`, { headers: { authorization: 'Bearer process-test-token-0123' } })
  t.match(await counts.json(), { backend: 'postgres', queues: [{ queue: 'default', weight: 1 }] })
  server.child.kill('SIGTERM')
  const [code, signal] = await server.exited
  t.ok(code !== null || signal !== null, 'the process ends')
  // close-with-grace exits 0 once in-flight jobs are done (nothing else may end it first).
  t.equal(code, 0, 'a graceful exit')
})

t.test('the jobs process refuses to start with a bad WORKER_QUEUES', async (t) => {
  const server = runServer({ DB_URL: 'postgres://127.0.0.1/unused', WORKER_QUEUES: 'default=0' })
  onTeardown(t, () => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })
  const [code] = await server.exited
  t.equal(code, 1)
  t.match(server.output(), 'chatty jobs: cannot start: WORKER_QUEUES="default=0": invalid queue weight "default=0"')
})

t.test('with NODE_ENV=production the jobs service refuses to start without JOBS_ADMIN_TOKEN, with one clear line', async (t) => {
  await t.rejects(buildJobs({ config: { DB_URL: 'postgres://127.0.0.1/unused', NODE_ENV: 'production' } }),
    /^JOBS_ADMIN_TOKEN \(16\+ characters\) is required when NODE_ENV=production/)
  // compose's `${JOBS_ADMIN_TOKEN:-}` passes an empty one: that is none.
  await t.rejects(buildJobs({ config: { DB_URL: 'postgres://127.0.0.1/unused', NODE_ENV: 'production', JOBS_ADMIN_TOKEN: '' } }), /JOBS_ADMIN_TOKEN/)
  const server = runServer({ DB_URL: 'postgres://127.0.0.1/unused', NODE_ENV: 'production', JOBS_ADMIN_TOKEN: '' })
  onTeardown(t, () => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })
  const [code] = await server.exited
  t.equal(code, 1)
  t.equal(server.output().trim(), 'chatty jobs: cannot start: JOBS_ADMIN_TOKEN (16+ characters) is required when NODE_ENV=production: without it the queue dashboard is open to anyone who reaches JOBS_ADMIN_PORT')
})

t.test('JOBS_ADMIN_HOST defaults to 127.0.0.1 without a token and 0.0.0.0 with one; a set value is kept', async (t) => {
  const host = async (config: Record<string, unknown>) => {
    const jobs = await buildJobs({ config: { DB_URL: 'postgres://127.0.0.1/unused', ...config } })
    const value = jobs.jobsConfig.JOBS_ADMIN_HOST
    await jobs.close()
    return value
  }
  t.equal(await host({}), '127.0.0.1', 'no token: an open dashboard stays on this machine')
  t.equal(await host({ JOBS_ADMIN_TOKEN: 'a-token-of-16-chars+' }), '0.0.0.0', 'with a token')
  t.equal(await host({ JOBS_ADMIN_TOKEN: 'a-token-of-16-chars+', NODE_ENV: 'production' }), '0.0.0.0', 'production with a token')
  t.equal(await host({ JOBS_ADMIN_HOST: '0.0.0.0' }), '0.0.0.0', 'no token, set explicitly')
})

t.test('the jobs process without a token answers on 127.0.0.1 only; with one, on every address', async (t) => {
  const { url } = await testDatabase(t)
  /** 'ok', or the error code of the connection attempt. */
  const reach = (host: string, port: number) => fetch(`http://${host}:${port}/healthz`).then(
    (response) => response.ok ? 'ok' : `status ${response.status}`,
    (error: { cause?: { code?: string } }) => error.cause?.code ?? String(error))
  for (const [token, elsewhere] of [[undefined, 'ECONNREFUSED'], ['process-test-token-0123', 'ok']] as const) {
    const port = await freePort()
    const server = runServer({ DB_URL: url, QUEUE_BACKEND: 'postgres', JOBS_ADMIN_PORT: String(port), ...(token === undefined ? {} : { JOBS_ADMIN_TOKEN: token }) })
    onTeardown(t, () => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })
    await waitFor(async () => await reach('127.0.0.1', port) === 'ok', `the jobs process to listen (output: ${server.output()})`, 20_000)
    // 127.0.0.2 is this machine too, but not an address a socket bound to 127.0.0.1 accepts on.
    t.equal(await reach('127.0.0.2', port), elsewhere, token === undefined ? 'no token: another address is refused' : 'with a token: another address answers')
    server.child.kill('SIGTERM')
    await server.exited
  }
})
