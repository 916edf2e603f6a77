// Test databases: every test file gets its own database, cloned from a migrated template, so
// files run in parallel and leave nothing behind. The template is built once per migration set.
import { createHash } from 'node:crypto'
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { loadMigrations, migrateUp } from './migrator.ts'
import { postgresAnswers, startEmbeddedPostgres, REPO_ROOT } from './embedded.ts'
import { armLeakCheck } from './testing/leaks.ts'
export { sleep, users, waitFor, type WaitOptions } from './testing/wait.ts'
export { findRedis, testWithAndWithoutRedis, type RedisSettings } from './testing/redis.ts'
export { queryRows } from './testing/query.ts'
export { someSessionWaitsForALock } from './testing/locks.ts'
export { freePort } from './testing/ports.ts'
export { armLeakCheck, openTcpHandles } from './testing/leaks.ts'
export { assertClosingAnswer, assertErrorAnswers, rawHttp, type ErrorCase, type RawAnswer } from './testing/raw-http.ts'
export { findProgram, missingProgramLine, programPath, runningInCi, skipUnlessInstalled, testMissingProgram, PROGRAMS, type Program } from './programs.ts'

const LOCAL_SERVER = 'postgres://postgres@127.0.0.1:5432/postgres'

export interface TestServer {
  /** Maintenance connection string (database "postgres"). */
  serverUrl: string
  stop (): Promise<void>
}

/** DB_URL's server, else the local server on 5432 if one answers, else an embedded one. */
export async function startTestServer (env: NodeJS.ProcessEnv = process.env): Promise<TestServer> {
  if (env.DB_URL !== undefined && env.DB_URL !== '') {
    const url = new URL(env.DB_URL)
    url.pathname = '/postgres'
    return { serverUrl: url.toString(), stop: async () => {} }
  }
  if (await postgresAnswers(LOCAL_SERVER)) return { serverUrl: LOCAL_SERVER, stop: async () => {} }
  const embedded = await startEmbeddedPostgres({ dataDir: `${REPO_ROOT}.data/test-postgres`, port: 54339, database: 'postgres' })
  return { serverUrl: embedded.serverUrl, stop: embedded.stop }
}

export function databaseUrl (serverUrl: string, database: string): string {
  const url = new URL(serverUrl)
  url.pathname = `/${database}`
  return url.toString()
}

/** Extra set-up that belongs in the template, e.g. the job queue's own schema. */
export type TemplateStep = (url: string) => Promise<void>

async function templateName (extra: string): Promise<string> {
  const hash = createHash('sha256')
  for (const migration of await loadMigrations()) hash.update(migration.up)
  hash.update(extra)
  return `chatty_tpl_${hash.digest('hex').slice(0, 12)}`
}

/**
 * Builds the migrated template database unless it already exists. Concurrent callers are
 * serialised with an advisory lock on the maintenance database.
 */
export async function ensureTemplate (serverUrl: string, steps: TemplateStep[] = [], key = ''): Promise<string> {
  const name = await templateName(key)
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  try {
    await admin.query('SELECT pg_advisory_lock(4242001)')
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate', [name])
    if (rowCount === 0) {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.query(`CREATE DATABASE ${name}`)
      const url = databaseUrl(serverUrl, name)
      await migrateUp(url)
      for (const step of steps) await step(url)
      await admin.query(`ALTER DATABASE ${name} WITH is_template true`)
    }
    return name
  } finally {
    await admin.query('SELECT pg_advisory_unlock(4242001)').catch(() => {})
    await admin.end()
  }
}

export interface TestDatabase {
  url: string
  name: string
  drop (): Promise<void>
}

/** A fresh database cloned from the template; drop() removes it, closing any leftover sessions. */
export async function createTestDatabase (serverUrl: string, template: string): Promise<TestDatabase> {
  const name = `chatty_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`)
        break
      } catch (error) {
        // "source database is being accessed by other users": a concurrent clone; try again.
        if ((error as { code?: string }).code !== '55006' || attempt >= 20) throw error
        await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200))
      }
    }
  } finally {
    await admin.end()
  }
  return {
    url: databaseUrl(serverUrl, name),
    name,
    async drop () {
      const client = new pg.Client({ connectionString: serverUrl })
      await client.connect()
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await client.end()
      }
    }
  }
}

type Teardown = () => unknown
interface HasTeardown { teardown (fn: () => unknown): void, parent?: unknown }
/** Where a test keeps its onTeardown stack: on the test itself. */
const STACK = Symbol('chatty teardown stack')
type WithStack = HasTeardown & { [STACK]?: Teardown[] }

/**
 * Registers clean-up that runs in reverse order of registration (tap's own teardowns run in
 * order), so what was opened last is closed first: apps and workers before their database.
 * It also arms the leak check: a file that leaves a socket or server open fails.
 */
export function onTeardown (t: HasTeardown, fn: Teardown): void {
  const test = t as WithStack
  let stack = test[STACK]
  if (stack === undefined) {
    armLeakCheck(t)
    const fns: Teardown[] = []
    test[STACK] = fns
    stack = fns
    t.teardown(async () => {
      for (const close of fns.reverse()) await close()
    })
  }
  stack.push(fn)
}

/**
 * For a test file: a database of its own, dropped at teardown. scripts/test.ts provides the
 * server and template through TEST_DB_SERVER / TEST_DB_TEMPLATE; a file run on its own finds
 * them itself.
 */
export async function testDatabase (t: HasTeardown): Promise<TestDatabase> {
  let serverUrl = process.env.TEST_DB_SERVER
  let template = process.env.TEST_DB_TEMPLATE
  if (serverUrl === undefined || template === undefined) {
    const server = await startTestServer()
    onTeardown(t, () => server.stop())
    serverUrl = server.serverUrl
    template = await ensureTemplate(serverUrl)
  }
  const database = await createTestDatabase(serverUrl, template)
  onTeardown(t, () => database.drop())
  return database
}
