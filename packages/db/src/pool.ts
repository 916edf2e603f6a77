// One pg pool and one Kysely instance per process; value parsing is decided here, once.
import pg from 'pg'
import { Kysely, PostgresDialect } from 'kysely'
import type { Database } from './database.ts'
import { pinSessionSettings } from './session-settings.ts'

const INT8 = 20
const TIMESTAMP = 1114

/**
 * bigint columns (seq, counts) fit comfortably in a double; `timestamp` columns hold UTC
 * (go-chatty's convention), so they are read as UTC instead of the process's local time. Their
 * text is in the ISO DateStyle whatever the database's default, as every connection pins it
 * (session-settings.ts).
 */
export const pgTypes = {
  getTypeParser (oid: number, format?: 'text' | 'binary') {
    if (oid === INT8) return (value: string) => Number(value)
    if (oid === TIMESTAMP) return (value: string) => new Date(value.replace(' ', 'T') + 'Z')
    return pg.types.getTypeParser(oid, format)
  }
} as pg.CustomTypesConfig

// Dates are sent as UTC text, so `timestamp` (no time zone) columns hold UTC whatever the
// process's time zone; `timestamptz` columns are unaffected.
pg.defaults.parseInputDatesAsUTC = true

export interface DbOptions {
  /** Pool size; defaults to 10. */
  max?: number
  /** Name reported in pg_stat_activity. */
  applicationName?: string
}

export interface Db {
  db: Kysely<Database>
  pool: pg.Pool
  destroy (): Promise<void>
}

export function createPool (connectionString: string, options: DbOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: pinSessionSettings(connectionString),
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'chatty',
    types: pgTypes,
    connectionTimeoutMillis: 10_000
  })
  // An idle client losing its server (restart, failover) must not crash the process; the pool
  // drops it and the next checkout opens a fresh connection.
  pool.on('error', () => {})
  // The pool listens for errors only on idle clients. A checked-out one (Kysely holds one for a
  // whole transaction) whose server goes away between two statements would emit an unhandled
  // 'error' and crash the process. Its next statement fails instead, and the pool drops it.
  pool.on('connect', (client) => { client.on('error', () => {}) })
  return pool
}

export function createDb (connectionString: string, options: DbOptions = {}): Db {
  const pool = createPool(connectionString, options)
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  return { db, pool, destroy: () => db.destroy() }
}
