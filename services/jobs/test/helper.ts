// Test helpers: a running jobs service (worker and dashboard) on a database of the test's own,
// on either queue backend, and what the tests need around it: a queue client like the api's,
// chat rows, and a switch that makes the database refuse messages so jobs really fail.
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { sql, type Kysely } from 'kysely'
import { createDb, type Database } from '@chatty/db'
import { onTeardown, testDatabase, users } from '@chatty/db/testing'
export { users, waitFor } from '@chatty/db/testing'
import { createQueueClient, type EnqueueOptions, type QueueClient } from '@chatty/queue'
import { createConversation, SEND_MESSAGE_TASK, type SendMessagePayload } from '@chatty/chat'
import { buildJobs } from '../src/app.ts'

export type Backend = 'postgres' | 'redis'
export const BACKENDS: Backend[] = ['postgres', 'redis']
export const redisUrl = process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '' ? process.env.REDIS_URL : 'redis://127.0.0.1:6379'


export interface RunningJobs {
  jobs: FastifyInstance
  /** The chat database, for arranging rows and checking what the jobs stored. */
  db: Kysely<Database>
  /** Enqueues as the api does, into the same backend and key prefix. */
  client: QueueClient
  config: Record<string, unknown>
}

async function deleteRedisKeys (prefix: string): Promise<void> {
  const redis = new Redis(redisUrl)
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== '0')
  } finally {
    await redis.quit()
  }
}

/** The jobs service as server.ts runs it, minus listening (see listen() for a real port). */
export async function startJobs (t: Test, backend: Backend, config: Record<string, unknown> = {}): Promise<RunningJobs> {
  const { url: dbUrl } = await testDatabase(t)
  // A key prefix per test: tests share the Redis server, not its keys.
  const keyPrefix = `chatty-test:${randomUUID()}:`
  if (backend === 'redis') onTeardown(t, () => deleteRedisKeys(keyPrefix))
  const settings = {
    DB_URL: dbUrl,
    DB_POOL_MAX: 4,
    QUEUE_BACKEND: backend,
    ...(backend === 'redis' ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: keyPrefix } : {}),
    WORKER_QUEUES: 'critical=6,default=3,low=1',
    JOBS_BACKOFF_BASE_MS: 20,
    JOBS_LOCK_TIMEOUT_MS: 2000,
    ...config
  }
  const jobs = await buildJobs({ config: settings })
  onTeardown(t, () => jobs.close())
  await jobs.ready()
  const client = createQueueClient({ backend, dbUrl, redisUrl, redisPrefix: `${keyPrefix}q` })
  onTeardown(t, () => client.close())
  const { db, destroy } = createDb(dbUrl, { max: 3, applicationName: 'chatty-jobs-test' })
  onTeardown(t, destroy)
  return { jobs, db, client, config: settings }
}

export async function createChat (db: Kysely<Database>): Promise<string> {
  return (await createConversation(db, { participantIds: [users.alice, users.bob] })).id
}

/** Enqueues chat:send_message as POST /api/v1/chat/:chat_id does; returns the job and message ids. */
export async function enqueueMessage (client: QueueClient, conversationId: string, options: EnqueueOptions = {}): Promise<{ jobId: string, messageId: string }> {
  const messageId = randomUUID()
  const payload: SendMessagePayload = {
    message_id: messageId,
    conversation_id: conversationId,
    sender_id: users.alice,
    content: { body: 'hello', msg_type: 0, attachment_url: null, attachment_meta: null, dedupe_key: null }
  }
  const jobId = await client.enqueue({ type: SEND_MESSAGE_TASK, payload }, { queue: 'default', ...options })
  return { jobId, messageId }
}

/**
 * Makes Postgres refuse every new message until the returned function is called: the
 * chat:send_message jobs fail for real, with Postgres's error naming the constraint.
 */
export async function refuseMessages (db: Kysely<Database>, constraint: string): Promise<() => Promise<void>> {
  await sql`ALTER TABLE chat.message ADD CONSTRAINT ${sql.id(constraint)} CHECK (false) NOT VALID`.execute(db)
  return async () => {
    await sql`ALTER TABLE chat.message DROP CONSTRAINT ${sql.id(constraint)}`.execute(db)
  }
}

/** Holds a row lock on the conversation, so a job storing into it waits (is active) until released. */
export async function lockConversation (db: Kysely<Database>, conversationId: string): Promise<() => Promise<void>> {
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let locked!: () => void
  const isLocked = new Promise<void>((resolve) => { locked = resolve })
  const holding = db.transaction().execute(async (trx) => {
    await sql`SELECT 1 FROM chat.conversation WHERE id = ${conversationId} FOR UPDATE`.execute(trx)
    locked()
    await released
  })
  await Promise.race([isLocked, holding])
  return async () => {
    release()
    await holding
  }
}

export async function messageStored (db: Kysely<Database>, messageId: string): Promise<boolean> {
  const row = await db.selectFrom('chat.message').select('id').where('id', '=', messageId).executeTakeFirst()
  return row !== undefined
}
