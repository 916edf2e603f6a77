// Postgres presence (no Redis): tables chat.presence_process (one heartbeat row per api process)
// and chat.presence (user, process), migration 000006. A heartbeat touches one row whatever the
// number of users; "online" joins on processes whose expires_at is still ahead of Postgres' own
// clock, so process clocks never matter.
import { sql, type Kysely } from 'kysely'
import type { Database } from '@chatty/db'
import type { PresenceStore } from '../port.ts'

export interface PostgresPresenceOptions {
  db: Kysely<Database>
  /** How long a heartbeat keeps a process alive. */
  ttlMs: number
}

export function createPostgresPresence ({ db, ttlMs }: PostgresPresenceOptions): PresenceStore {
  const expiry = sql<Date>`now() + make_interval(secs => ${ttlMs / 1000})`

  return {
    async heartbeat (processId) {
      // xmax = 0 only on a freshly inserted row: tells "registered now" from "extended".
      const row = await db.insertInto('chat.presence_process')
        .values({ process_id: processId, expires_at: expiry })
        .onConflict((oc) => oc.column('process_id').doUpdateSet({ expires_at: expiry }))
        .returning(sql<boolean>`xmax = 0`.as('inserted'))
        .executeTakeFirstOrThrow()
      return !row.inserted
    },

    async add (processId, userIds) {
      if (userIds.length === 0) return new Set()
      // One statement: the insert, and who of the users has an entry on another live process
      // (the statement's snapshot does not see its own insert, which the filter leaves out anyway).
      const { rows } = await sql<{ user_id: string }>`
        WITH added AS (
          INSERT INTO chat.presence (user_id, process_id)
          SELECT user_id, ${processId}::uuid FROM unnest(${userIds}::uuid[]) AS user_id
          ON CONFLICT DO NOTHING
        )
        SELECT DISTINCT p.user_id FROM chat.presence p
        JOIN chat.presence_process pp ON pp.process_id = p.process_id
        WHERE p.user_id = any(${userIds}::uuid[]) AND p.process_id <> ${processId}::uuid AND pp.expires_at > now()`.execute(db)
      return new Set(rows.map((row) => row.user_id))
    },

    async remove (processId, userIds) {
      if (userIds.length === 0) return
      await db.deleteFrom('chat.presence')
        .where('process_id', '=', processId)
        .where('user_id', '=', sql<string>`any(${userIds}::uuid[])`)
        .execute()
    },

    async online (userIds, options = {}) {
      if (userIds.length === 0) return new Set()
      let query = db.selectFrom('chat.presence as p')
        .innerJoin('chat.presence_process as pp', 'pp.process_id', 'p.process_id')
        .select('p.user_id').distinct()
        .where('p.user_id', '=', sql<string>`any(${userIds}::uuid[])`)
        .where('pp.expires_at', '>', sql<Date>`now()`)
      if (options.exceptProcess !== undefined) query = query.where('p.process_id', '<>', options.exceptProcess)
      const rows = await query.execute()
      return new Set(rows.map((row) => row.user_id))
    },

    async removeProcess (processId) {
      const rows = await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('chat.presence_process').where('process_id', '=', processId).execute()
        return trx.deleteFrom('chat.presence').where('process_id', '=', processId).returning('user_id').execute()
      })
      return rows.map((row) => row.user_id)
    },

    async sweep () {
      // Concurrent sweeps serialise on the process rows' locks: a row already deleted by another
      // sweep is skipped, so each dead process's users are returned once. Entries whose process
      // row is missing altogether (an add that raced a sweep) go too.
      const { rows } = await sql<{ user_id: string }>`
        WITH dead AS (
          DELETE FROM chat.presence_process WHERE expires_at <= now() RETURNING process_id
        )
        DELETE FROM chat.presence p
        WHERE p.process_id IN (SELECT process_id FROM dead)
           OR NOT EXISTS (SELECT 1 FROM chat.presence_process pp WHERE pp.process_id = p.process_id)
        RETURNING p.user_id`.execute(db)
      return rows.map((row) => row.user_id)
    },

    async close () {}
  }
}
