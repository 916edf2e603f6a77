// Test helpers: an api app and a jobs worker on a database of the test's own.
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { sql } from 'kysely'
import { sendMessage, type GroupCommit } from '@chatty/chat'
import { createDb } from '@chatty/db'
import { onTeardown, someSessionWaitsForALock, testDatabase } from '@chatty/db/testing'
export { users, waitFor } from '@chatty/db/testing'
import { buildJobs } from '@chatty/jobs'
import { buildApp } from '../src/app.ts'

/**
 * The fields of a message object that a plain send leaves empty: not edited or deleted, no
 * replies, mentions, reactions or pin. Spread into an expected message.
 */
export const UNTOUCHED = { edited_at: null, deleted_at: null, parent_id: null, reply_count: 0, last_reply_at: null, mentioned_user_ids: [], reactions: {}, pinned_at: null, pinned_by: null }

export interface TestApp {
  app: FastifyInstance
  dbUrl: string
}

export async function buildTestApp (t: Test, config: Record<string, unknown> = {}, dbUrl?: string): Promise<TestApp> {
  dbUrl ??= (await testDatabase(t)).url
  // Overload shedding is off unless a test turns it on: a shared, busy test machine lags.
  const app = await buildApp({ config: { DB_URL: dbUrl, DB_POOL_MAX: 5, MAX_EVENT_LOOP_DELAY_MS: 0, ...config } })
  onTeardown(t, () => app.close())
  await app.ready()
  return { app, dbUrl }
}

/** A running jobs worker (what `pnpm start` runs as services/jobs) on the same database. */
export async function startJobs (t: Test, dbUrl: string, config: Record<string, unknown> = {}): Promise<FastifyInstance> {
  const jobs = await buildJobs({ config: { DB_URL: dbUrl, DB_POOL_MAX: 5, ...config } })
  onTeardown(t, () => jobs.close())
  await jobs.ready()
  return jobs
}

/** A SQL client of the test's database (closed at teardown): `sql(text, values)` -> rows. */
export async function query (t: Test, dbUrl: string) {
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  onTeardown(t, () => client.end())
  return async <T extends pg.QueryResultRow = any>(text: string, values: unknown[] = []) => (await client.query<T>(text, values)).rows
}

/** Rows of a table (or `table WHERE ...`), on a connection of its own. */
export async function countRows (dbUrl: string, table: string): Promise<number> {
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  try {
    return (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n
  } finally {
    await client.end()
  }
}

/**
 * Stores and publishes messages as a websocket send does, returning their ids in seq order:
 * these bodies, or `m0`, `m1`, ... for a count.
 */
export async function storeMessages (app: FastifyInstance, chat: string, sender: string, bodies: string[] | number): Promise<string[]> {
  const ids: string[] = []
  for (const body of typeof bodies === 'number' ? Array.from({ length: bodies }, (_, i) => `m${i}`) : bodies) {
    const { message } = await sendMessage(app.chat, { conversationId: chat, senderId: sender, body })
    await app.feed.message(message)
    ids.push(message.id)
  }
  return ids
}

/**
 * Another session holds the conversation's row while `send` runs, so the first message's batch
 * waits for it; once it does, `meanwhile` runs, then the row is let go.
 */
export async function whileLocked (t: Test, dbUrl: string, conversationId: string, send: () => void, meanwhile: () => Promise<void>): Promise<void> {
  const holder = createDb(dbUrl, { max: 1 })
  t.teardown(() => holder.destroy())
  await holder.db.transaction().execute(async (trx) => {
    await sql`SELECT id FROM chat.conversation WHERE id = ${conversationId} FOR UPDATE`.execute(trx)
    send()
    t.ok(await someSessionWaitsForALock(trx), 'the first message is being written')
    await meanwhile()
  })
}

/** Messages handed to the group commit since `before`: written or being written, or waiting. */
export function handedOver (group: GroupCommit, before: ReturnType<GroupCommit['stats']>): number {
  const now = group.stats()
  return now.messages - before.messages + now.waiting
}
