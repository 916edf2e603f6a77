// The benchmark's own database, created fresh on every run so results never depend on what an
// earlier run left behind: dropped, created, migrated, and given the job queue's schema. Its name
// is chatty_bench, or BENCH_DATABASE, so that two runs on one Postgres do not drop each other's.
import pg from 'pg'
import { migrateUp } from '@chatty/db'
import { installQueueSchema } from '@chatty/queue'

export const BENCH_DATABASE = benchDatabaseName(process.env.BENCH_DATABASE)

function benchDatabaseName (value: string | undefined): string {
  if (value === undefined || value === '') return 'chatty_bench'
  // It is spliced into DROP / CREATE DATABASE: a plain lower-case identifier only.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(value)) throw new Error(`BENCH_DATABASE must be a lower-case identifier, got ${JSON.stringify(value)}`)
  return value
}

export function withDatabase (serverUrl: string, database: string): string {
  const url = new URL(serverUrl)
  url.pathname = `/${database}`
  return url.toString()
}

export async function createBenchDatabase (serverUrl: string): Promise<string> {
  const admin = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') })
  await admin.connect()
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${BENCH_DATABASE} WITH (FORCE)`)
    await admin.query(`CREATE DATABASE ${BENCH_DATABASE}`)
  } finally {
    await admin.end()
  }
  const url = withDatabase(serverUrl, BENCH_DATABASE)
  await migrateUp(url)
  await installQueueSchema(url)
  return url
}

/** Facts about the server for the results file. */
export async function describeServer (url: string): Promise<{ version: string, settings: Record<string, string> }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows: [version] } = await client.query<{ v: string }>('SELECT current_setting(\'server_version\') AS v')
    const { rows } = await client.query<{ name: string, setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name = ANY ($1)`,
      [['max_connections', 'shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'commit_delay']])
    return { version: version!.v, settings: Object.fromEntries(rows.map((row) => [row.name, row.setting])) }
  } finally {
    await client.end()
  }
}
