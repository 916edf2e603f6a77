// `pnpm start`: with no DB_URL, starts the embedded Postgres (data in .data/, kept between runs);
// applies migrations; runs the api and jobs services as child processes; Ctrl-C stops all of
// them and the embedded Postgres, leaving no process behind.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { migrateUp, startEmbeddedPostgres, DEFAULT_EMBEDDED_PORT, REPO_ROOT, type EmbeddedServer } from '@chatty/db'
import { installQueueSchema } from '@chatty/queue'

// A Ctrl-C in a terminal signals the whole process group at once: Postgres would stop while the
// services still finish their work. So everything runs in a process group of its own, under
// this process, which turns the first Ctrl-C into one orderly SIGTERM.
if (process.env.CHATTY_START_GROUP !== '1') {
  const group = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, CHATTY_START_GROUP: '1' }
  })
  const stop = () => { group.kill('SIGTERM') }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  group.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128 + 15)))
  await new Promise(() => {})
}

const log = (line: string) => console.log(`[start] ${line}`)

/** Stops before anything starts, with one line, when a port we are about to use is taken. */
async function ensurePortFree (port: number, host: string, what: string, variable: string, otherwise = ''): Promise<void> {
  const probe = createServer()
  probe.listen(port, host)
  const [error] = await Promise.race([once(probe, 'listening').then(() => [undefined]), once(probe, 'error')]) as [NodeJS.ErrnoException | undefined]
  if (error === undefined) {
    probe.close()
    await once(probe, 'close')
    return
  }
  const cause = error.code === 'EADDRINUSE' ? 'is in use (another `pnpm start`?)' : `cannot be listened on (${error.code ?? error.message})`
  console.error(`[start] port ${port} for ${what} ${cause}: stop what holds it, or set ${variable} to another port${otherwise}`)
  process.exit(1)
}

const apiPort = Number(process.env.PORT ?? 8080)
const adminPort = Number(process.env.JOBS_ADMIN_PORT ?? 8081)
const embeddedPort = Number(process.env.EMBEDDED_POSTGRES_PORT ?? DEFAULT_EMBEDDED_PORT)
await ensurePortFree(apiPort, process.env.HOST ?? '0.0.0.0', 'the api', 'PORT')
await ensurePortFree(adminPort, process.env.JOBS_ADMIN_HOST ?? '0.0.0.0', 'the jobs dashboard', 'JOBS_ADMIN_PORT')

let embedded: EmbeddedServer | undefined
let dbUrl = process.env.DB_URL
if (dbUrl === undefined || dbUrl === '') {
  await ensurePortFree(embeddedPort, '127.0.0.1', 'the embedded Postgres', 'EMBEDDED_POSTGRES_PORT', ' (or DB_URL, to use a Postgres of your own)')
  log('DB_URL is not set: starting the embedded Postgres (data in .data/postgres)')
  try {
    embedded = await startEmbeddedPostgres({ log, ownSignals: true, port: embeddedPort })
  } catch (error) {
    console.error(`[start] ${(error as Error).message}`)
    process.exit(1)
  }
  dbUrl = embedded.url
}

try {
  const applied = await migrateUp(dbUrl)
  log(applied.length === 0 ? 'database schema is up to date' : `applied migrations ${applied.join(', ')}`)
  if ((process.env.QUEUE_BACKEND ?? 'postgres') === 'postgres') await installQueueSchema(dbUrl)
} catch (error) {
  console.error(`[start] cannot prepare the database: ${(error as Error).message}`)
  await embedded?.stop()
  process.exit(1)
}

const env = { ...process.env, DB_URL: dbUrl }
const children = new Map<string, ChildProcess>()
let stopping = false

function launch (name: string, entry: string): void {
  const child = spawn(process.execPath, [entry], { cwd: REPO_ROOT, env, stdio: 'inherit' })
  children.set(name, child)
  child.on('exit', (code, signal) => {
    children.delete(name)
    if (!stopping) {
      console.error(`[start] ${name} exited (${signal ?? code}); stopping the rest`)
      void shutdown(1)
    } else if (children.size === 0) {
      void finish()
    }
  })
}

let exitCode = 0
async function finish (): Promise<void> {
  if (embedded !== undefined) {
    log('stopping the embedded Postgres')
    await embedded.stop().catch(() => {})
    embedded = undefined
  }
  process.exit(exitCode)
}

async function shutdown (code: number): Promise<void> {
  if (stopping) return
  stopping = true
  exitCode = code
  if (children.size === 0) return finish()
  for (const child of children.values()) child.kill('SIGTERM')
  // A child that ignores SIGTERM is not allowed to outlive us.
  setTimeout(() => { for (const child of children.values()) child.kill('SIGKILL') }, 35_000).unref()
}

process.on('SIGINT', () => { void shutdown(0) })
process.on('SIGTERM', () => { void shutdown(0) })

launch('api', 'services/api/src/server.ts')
launch('jobs', 'services/jobs/src/server.ts')

const port = apiPort
for (let i = 0; i < 300 && !stopping; i++) {
  const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((res) => res.ok, () => false)
  if (ok) {
    log(`chatty api listening on http://localhost:${port}`)
    log(`API docs (OpenAPI, try every route) at http://localhost:${port}/docs`)
    log('press Ctrl-C to stop')
    break
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
}
