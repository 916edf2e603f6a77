// The Postgres queue's enqueue side: one job inside the caller's transaction, or the enqueues of
// one event-loop turn gathered into one add_jobs statement.
import pg from 'pg'
import { pinSessionSettings } from '@chatty/db'
import { resolveEnqueue } from '../../enqueue-options.ts'
import type { EnqueueOptions, QueueClient, Task } from '../../port.ts'
import { ADD_JOB_SQL, ADD_JOBS_NAME, ADD_JOBS_SQL, flagOf, TASK_TYPES_SQL } from './sql.ts'

/**
 * The statement that adds a job, for callers that run SQL their own way, e.g. inside a Kysely
 * transaction: `await trx.executeQuery(CompiledQuery.raw(text, values))`. The row has `id`.
 */
export function buildEnqueueQuery<P> (task: Task<P>, options: EnqueueOptions = {}): { text: string, values: unknown[] } {
  const resolved = resolveEnqueue(task, options)
  return {
    text: ADD_JOB_SQL,
    values: [
      task.type,
      task.payload === undefined ? null : JSON.stringify(task.payload),
      resolved.runAt?.toISOString() ?? null,
      resolved.maxAttempts,
      // Unique within the queue, as on Redis (and Asynq).
      resolved.uniqueKey === undefined ? null : `${resolved.queue}:${resolved.uniqueKey}`,
      flagOf(resolved.queue)
    ]
  }
}

/** Adds a job inside the caller's transaction: it exists exactly when the caller's rows commit. */
export async function enqueueInTransaction<P> (client: Pick<pg.ClientBase, 'query'>, task: Task<P>, options: EnqueueOptions = {}): Promise<string> {
  const { text, values } = buildEnqueueQuery(task, options)
  const { rows } = await client.query<{ id: string }>(text, values)
  return rows[0]!.id
}

/** Most jobs added by one statement. */
const ENQUEUE_BATCH = 500
/** Batches being added at once; enqueues arriving meanwhile gather into the next. */
const ENQUEUE_IN_FLIGHT = 2

interface PendingEnqueue {
  type: string
  payload: string
  maxAttempts: number
  flag: string
  done: PromiseWithResolvers<string>
}

const enqueueKey = (type: string, flag: string, maxAttempts: number, payload: string) => `${type}\n${flag}\n${maxAttempts}\n${payload}`

export function createPostgresQueueClient (options: { connectionString: string, log?: (level: string, message: string) => void }): QueueClient {
  const pool = new pg.Pool({ connectionString: pinSessionSettings(options.connectionString), max: 10 })
  pool.on('error', (error) => options.log?.('error', `queue client connection error: ${error.message}`))
  let waiting: PendingEnqueue[] = []
  let inFlight = 0
  let scheduled = false
  const taskTypes = new Map<number, string>()

  const addBatch = async (batch: PendingEnqueue[]) => {
    try {
      const { rows } = await pool.query<{ id: string, task_id: number, max_attempts: number, payload: string, flag: string }>({
        name: ADD_JOBS_NAME,
        text: ADD_JOBS_SQL,
        values: [batch.map((e) => e.type), batch.map((e) => e.payload), batch.map((e) => e.maxAttempts), batch.map((e) => e.flag)]
      })
      const unknown = [...new Set(rows.map((row) => row.task_id).filter((id) => !taskTypes.has(id)))]
      if (unknown.length > 0) {
        const tasks = await pool.query<{ id: number, identifier: string }>(TASK_TYPES_SQL, [unknown])
        for (const task of tasks.rows) taskTypes.set(task.id, task.identifier)
      }
      const ids = new Map<string, string[]>()
      for (const row of rows) {
        const key = enqueueKey(taskTypes.get(row.task_id) ?? '', row.flag, row.max_attempts, row.payload)
        const list = ids.get(key)
        if (list === undefined) ids.set(key, [row.id])
        else list.push(row.id)
      }
      for (const entry of batch) {
        const id = ids.get(enqueueKey(entry.type, entry.flag, entry.maxAttempts, entry.payload))?.shift()
        if (id === undefined) entry.done.reject(new Error('the job was not added'))
        else entry.done.resolve(id)
      }
    } catch (error) {
      // One statement: none of the batch was added, and every caller hears so.
      for (const entry of batch) entry.done.reject(error)
    }
  }

  const flush = () => {
    scheduled = false
    while (waiting.length > 0 && inFlight < ENQUEUE_IN_FLIGHT) {
      const batch = waiting.slice(0, ENQUEUE_BATCH)
      waiting = waiting.slice(batch.length)
      inFlight++
      addBatch(batch).finally(() => {
        inFlight--
        flush()
      })
    }
  }

  return {
    async enqueue<P>(task: Task<P>, enqueueOptions: EnqueueOptions = {}): Promise<string> {
      const resolved = resolveEnqueue(task, enqueueOptions)
      // Unique keys and run times take add_job's own path (its dedupe mode is not add_jobs').
      if (resolved.uniqueKey !== undefined || resolved.runAt !== undefined) return await enqueueInTransaction(pool, task, enqueueOptions)
      const payload = JSON.stringify(task.payload === undefined ? {} : task.payload)
      const entry: PendingEnqueue = { type: task.type, payload, maxAttempts: resolved.maxAttempts, flag: flagOf(resolved.queue), done: Promise.withResolvers<string>() }
      waiting.push(entry)
      // Enqueues of one event-loop turn go together; while both slots are busy they gather.
      if (!scheduled && inFlight < ENQUEUE_IN_FLIGHT) {
        scheduled = true
        setImmediate(flush)
      }
      return await entry.done.promise
    },
    async close () {
      while (waiting.length > 0 || inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5))
      await pool.end()
    }
  }
}
