// Applies db/migrations in golang-migrate's file format and bookkeeping, so the `migrate` CLI and
// this migrator agree on a database's version and never run at the same time.
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import pg from 'pg'
import { pinSessionSettings } from './session-settings.ts'
import { MigrationError } from './errors.ts'

export const MIGRATIONS_DIR = new URL('../../../db/migrations/', import.meta.url).pathname

export interface Migration {
  version: number
  name: string
  up: string
  down: string | null
}

export interface MigrationState {
  version: number | null
  dirty: boolean
}

export interface MigrateOptions {
  dir?: string
  log?: (line: string) => void
}

const FILE = /^(\d+)_(.+)\.(up|down)\.sql$/

export async function loadMigrations (dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const byVersion = new Map<number, Migration>()
  for (const file of (await readdir(dir)).sort()) {
    const match = FILE.exec(file)
    if (match === null) continue
    const [, digits, name, direction] = match as unknown as [string, string, string, 'up' | 'down']
    const version = Number(digits)
    const sql = await readFile(join(dir, file), 'utf8')
    const migration = byVersion.get(version) ?? { version, name, up: '', down: null }
    if (direction === 'up') migration.up = sql
    else migration.down = sql
    byVersion.set(version, migration)
  }
  return [...byVersion.values()].sort((a, b) => a.version - b.version)
}

/** golang-migrate's lock id: crc32(schema \0 table \0 database) * salt, as a uint32. */
export function advisoryLockId (database: string, schema = 'public', table = 'schema_migrations'): string {
  const sum = crc32(Buffer.from([schema, table, database].join('\x00')))
  return String(Math.imul(sum, 1486364155) >>> 0)
}

async function withLockedClient<T> (connectionString: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pinSessionSettings(connectionString), application_name: 'chatty-migrate' })
  await client.connect()
  try {
    const { rows } = await client.query<{ db: string, schema: string }>('SELECT current_database() AS db, current_schema() AS schema')
    const lockId = advisoryLockId(rows[0]!.db, rows[0]!.schema)
    await client.query('SELECT pg_advisory_lock($1)', [lockId])
    try {
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)')
      return await fn(client)
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [lockId])
    }
  } finally {
    await client.end()
  }
}

async function readState (client: pg.Client): Promise<MigrationState> {
  const { rows } = await client.query<{ version: string, dirty: boolean }>('SELECT version, dirty FROM schema_migrations LIMIT 1')
  const row = rows[0]
  return row === undefined ? { version: null, dirty: false } : { version: Number(row.version), dirty: row.dirty }
}

function assertClean (state: MigrationState): void {
  if (state.dirty) {
    throw new MigrationError(`database is dirty at version ${state.version}: fix it by hand, then force a version`)
  }
}

/** Runs one migration file and records the new version in the same transaction. */
async function applyStep (client: pg.Client, sql: string, next: number | null): Promise<void> {
  await client.query('BEGIN')
  try {
    await client.query(sql)
    await client.query('TRUNCATE schema_migrations')
    if (next !== null) await client.query('INSERT INTO schema_migrations (version, dirty) VALUES ($1, false)', [next])
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK')
    throw error
  }
}

export async function migrationVersion (connectionString: string): Promise<MigrationState> {
  return withLockedClient(connectionString, readState)
}

/** Applies every pending up migration; returns the versions applied. */
export async function migrateUp (connectionString: string, options: MigrateOptions = {}): Promise<number[]> {
  const migrations = await loadMigrations(options.dir)
  return withLockedClient(connectionString, async (client) => {
    const state = await readState(client)
    assertClean(state)
    const applied: number[] = []
    for (const migration of migrations) {
      if (state.version !== null && migration.version <= state.version) continue
      options.log?.(`applying ${migration.version}_${migration.name}`)
      await applyStep(client, migration.up, migration.version)
      applied.push(migration.version)
    }
    return applied
  })
}

/** Reverts the newest `steps` applied migrations; returns the versions reverted. */
export async function migrateDown (connectionString: string, steps: number, options: MigrateOptions = {}): Promise<number[]> {
  const migrations = await loadMigrations(options.dir)
  return withLockedClient(connectionString, async (client) => {
    const state = await readState(client)
    assertClean(state)
    const reverted: number[] = []
    let current = state.version
    while (current !== null && reverted.length < steps) {
      const index = migrations.findIndex((m) => m.version === current)
      const migration = migrations[index]
      if (migration === undefined) throw new MigrationError(`no migration file for applied version ${current}`)
      if (migration.down === null) throw new MigrationError(`migration ${current} has no down file`)
      const previous = index > 0 ? migrations[index - 1]!.version : null
      options.log?.(`reverting ${migration.version}_${migration.name}`)
      await applyStep(client, migration.down, previous)
      reverted.push(migration.version)
      current = previous
    }
    return reverted
  })
}

/** Sets the recorded version without running anything (golang-migrate's `force`), clearing dirty. */
export async function forceVersion (connectionString: string, version: number | null): Promise<void> {
  await withLockedClient(connectionString, async (client) => {
    await client.query('TRUNCATE schema_migrations')
    if (version !== null) await client.query('INSERT INTO schema_migrations (version, dirty) VALUES ($1, false)', [version])
  })
}
