// For tests that hold a row lock on purpose and need the code under test to be blocked on it
// before they go on.
import { sql, type Kysely } from 'kysely'
import { waitFor } from './wait.ts'

/**
 * True once another session of the same database waits for a lock, false if none does within
 * 10 s. `db` is the session holding the lock (a transaction), so it is not counted itself.
 */
export async function someSessionWaitsForALock (db: Kysely<any>): Promise<boolean> {
  return await waitFor(async () => {
    // Inside a transaction Postgres answers pg_stat_activity from the snapshot it took at the
    // first look: drop it, or a session that starts waiting later is never seen.
    await sql`SELECT pg_stat_clear_snapshot()`.execute(db)
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`.execute(db)
    return rows[0]!.n > 0
  }, { what: 'a session waiting for a lock', intervalMs: 25 }).catch(() => false)
}
