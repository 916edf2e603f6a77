// One query on a connection of its own, for tests that look at a database from outside the code
// under test (the rows it stored, the backends it holds).
import pg from 'pg'

/** Runs `sql` on a new connection to `url`, which it closes again, and returns the rows. */
export async function queryRows<R extends pg.QueryResultRow = any> (url: string, sql: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(sql, values)).rows
  } finally {
    await client.end()
  }
}
