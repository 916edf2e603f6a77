// Installs the Postgres queue's schema: graphile-worker's migrations plus what this adapter adds.
import { Logger, runMigrations, type LogFunctionFactory } from 'graphile-worker'
import pg from 'pg'
import { pinSessionSettings } from '@chatty/db'
import { INSTALL_SCHEMA_SQL, LOCK_SCHEMA_SQL, SCHEMA_LOCK } from './sql.ts'

function makeLogger (log?: (level: string, message: string) => void): Logger {
  const factory: LogFunctionFactory = () => (level, message) => {
    if (level === 'error' || level === 'warning') log?.(level, message)
  }
  return new Logger(factory)
}

/**
 * Installs graphile-worker's schema plus what this adapter adds (an index to claim by queue, the
 * throughput table); safe to run concurrently and repeatedly. Queue servers also run it at start.
 */
export async function installQueueSchema (url: string): Promise<void> {
  const connectionString = pinSessionSettings(url)
  await runMigrations({ connectionString, logger: makeLogger() })
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query('BEGIN')
    await client.query(LOCK_SCHEMA_SQL, [SCHEMA_LOCK])
    await client.query(INSTALL_SCHEMA_SQL)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    await client.end()
  }
}
