// Postgres queue adapter on graphile-worker: jobs live in graphile-worker's tables in the chat
// database, so a job can be added in the same transaction as the row that caused it
// (graphile_worker.add_job). Workers claim jobs with their own query instead of graphile-worker's
// runner, which has no weighted queues, fixed backoff and a 4-hour lock: see ../../README.md.
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { Logger, runMigrations, type LogFunctionFactory } from 'graphile-worker'
import pg from 'pg'
import { resolveEnqueue } from '../enqueue-options.ts'
import type { EnqueueOptions, JobInfo, JobState, ListJobsFilter, QueueAdmin, QueueClient, QueueCounts, QueueServer, Task, ThroughputPoint } from '../port.ts'
import { JOB_STATES } from '../port.ts'
import { assertQueueName, checkQueueWeights, DEFAULT_QUEUE } from '../weights.ts'
import { createWorkerPoolServer, messageOf, resolveServerOptions, type JobStore, type QueueServerOptions, type WorkerPoolOptions } from '../worker-pool.ts'

export interface PostgresQueueOptions extends QueueServerOptions {
  connectionString: string
}

/** A job's queue is a graphile-worker flag, `queue:<name>`; graphile-worker's own queue_name means "run serially". */
const FLAG_PREFIX = 'queue:'
const flagOf = (queue: string) => `${FLAG_PREFIX}${queue}`
/** graphile-worker notifies this channel from add_job; we reuse it when jobs become ready again. */
const CHANNEL = 'jobs:insert'
const SCHEMA_LOCK = 7_412_930_001

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
export async function installQueueSchema (connectionString: string): Promise<void> {
  await runMigrations({ connectionString, logger: makeLogger() })
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK])
    await client.query(`
      CREATE INDEX IF NOT EXISTS chatty_jobs_queue_index
        ON graphile_worker._private_jobs (flags, priority, run_at, id) WHERE is_available;
      CREATE SCHEMA IF NOT EXISTS chatty_queue;
      CREATE TABLE IF NOT EXISTS chatty_queue.throughput (
        minute timestamptz NOT NULL,
        queue text NOT NULL,
        completed bigint NOT NULL DEFAULT 0,
        failed bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (minute, queue)
      );`)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    await client.end()
  }
}

/**
 * The statement that adds a job, for callers that run SQL their own way, e.g. inside a Kysely
 * transaction: `await trx.executeQuery(CompiledQuery.raw(text, values))`. The row has `id`.
 */
export function buildEnqueueQuery<P> (task: Task<P>, options: EnqueueOptions = {}): { text: string, values: unknown[] } {
  const resolved = resolveEnqueue(task, options)
  return {
    text: `SELECT id::text AS id FROM graphile_worker.add_job($1, $2::json, run_at => $3::timestamptz, max_attempts => $4::int,
      job_key => $5::text, flags => ARRAY[$6::text], job_key_mode => 'unsafe_dedupe')`,
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

// Many jobs in one statement: graphile-worker's add_jobs, which notifies workers once for all of
// them. add_job notifies once per job, and Postgres serialises the commits of notifying
// transactions (one queue-wide lock held through the WAL flush), so one add_job per request
// tops out at a few hundred jobs/s whatever the concurrency. add_jobs returns its rows in no
// particular order: they are matched back to their callers by type, queue, attempts and payload
// text (json keeps the text as sent); jobs equal in all of these are interchangeable. Task ids
// are read once per type: a task add_jobs has just created is not visible to its own statement.
const ADD_JOBS_SQL = `
SELECT j.id::text AS id, j.task_id, j.max_attempts, j.payload::text AS payload,
       (SELECT k FROM jsonb_object_keys(j.flags) AS k LIMIT 1) AS flag
  FROM graphile_worker.add_jobs(ARRAY(
    SELECT ROW(s.identifier, s.payload, NULL, NULL, s.max_attempts, NULL, NULL, ARRAY[s.flag])::graphile_worker.job_spec
      FROM unnest($1::text[], $2::json[], $3::int2[], $4::text[]) WITH ORDINALITY AS s(identifier, payload, max_attempts, flag, ord)
     ORDER BY s.ord)) AS j`

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
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 10 })
  pool.on('error', (error) => options.log?.('error', `queue client connection error: ${error.message}`))
  let waiting: PendingEnqueue[] = []
  let inFlight = 0
  let scheduled = false
  const taskTypes = new Map<number, string>()

  const addBatch = async (batch: PendingEnqueue[]) => {
    try {
      const { rows } = await pool.query<{ id: string, task_id: number, max_attempts: number, payload: string, flag: string }>({
        name: 'chatty_queue_add_jobs_v1',
        text: ADD_JOBS_SQL,
        values: [batch.map((e) => e.type), batch.map((e) => e.payload), batch.map((e) => e.maxAttempts), batch.map((e) => e.flag)]
      })
      const unknown = [...new Set(rows.map((row) => row.task_id).filter((id) => !taskTypes.has(id)))]
      if (unknown.length > 0) {
        const tasks = await pool.query<{ id: number, identifier: string }>('SELECT id, identifier FROM graphile_worker._private_tasks WHERE id = ANY ($1::int[])', [unknown])
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

export function createPostgresQueueServer (options: PostgresQueueOptions): QueueServer {
  const poolOptions = resolveServerOptions(options)
  return createWorkerPoolServer(() => openPostgresStore(options.connectionString, poolOptions), poolOptions)
}

/** Wake-ups for an idle worker: notifications, local timers, and a flag for one that came early. */
class Wakeups {
  #early = false
  #waiters = new Set<() => void>()
  #timer: NodeJS.Timeout | undefined
  #timerAt = Infinity

  notify (): void {
    if (this.#waiters.size === 0) {
      this.#early = true
      return
    }
    for (const waiter of [...this.#waiters]) waiter()
  }

  /** Notifies at `at` (ms since epoch) unless an earlier timer is already set. */
  notifyAt (at: number): void {
    if (at >= this.#timerAt) return
    clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(() => {
      this.#timerAt = Infinity
      this.notify()
    }, Math.max(0, at - Date.now()))
    this.#timer.unref()
  }

  get early (): boolean {
    return this.#early
  }

  wait (ms: number, signal: AbortSignal): Promise<void> {
    if (this.#early || signal.aborted) {
      this.#early = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        this.#waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(0, ms))
      signal.addEventListener('abort', done, { once: true })
      this.#waiters.add(done)
    })
  }

  close (): void {
    clearTimeout(this.#timer)
    this.notify()
  }
}

interface ClaimRow {
  id: string
  type: string
  flag: string
  payload: unknown
  attempts: number
  max_attempts: number
}

async function openPostgresStore (connectionString: string, options: WorkerPoolOptions): Promise<JobStore> {
  const { log } = options
  await installQueueSchema(connectionString)
  const workerId = `chatty@${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  const pool = new pg.Pool({ connectionString, max: Math.min(options.concurrency, 8) + 2 })
  pool.on('error', (error) => log('error', `queue connection error: ${error.message}`))
  const wakeups = new Wakeups()
  let closing = false

  // LISTEN on a connection of its own; reconnects after errors while polling covers the gap.
  let listener: pg.Client | undefined
  const listen = async (): Promise<void> => {
    const client = new pg.Client({ connectionString })
    const reconnect = (error?: Error) => {
      if (error !== undefined) log('warning', `queue notification connection lost: ${error.message}`)
      client.removeAllListeners()
      client.on('error', () => {})
      client.end().catch(() => {})
      if (listener === client) listener = undefined
      if (!closing) setTimeout(() => { listen().catch(() => {}) }, 1000).unref()
    }
    client.on('notification', () => wakeups.notify())
    client.on('error', reconnect)
    client.on('end', () => { if (listener === client) reconnect() })
    try {
      await client.connect()
      await client.query(`LISTEN "${CHANNEL}"`)
      if (closing) {
        client.removeAllListeners()
        await client.end()
        return
      }
      listener = client
      wakeups.notify() // anything added while we were not listening
    } catch (error) {
      reconnect(error as Error)
    }
  }
  await listen()

  // Jobs of a worker that stopped renewing its locks (killed, frozen, cut off) go back to the queue.
  const rescue = async () => {
    const { rows } = await pool.query<{ id: string }>(`
      UPDATE graphile_worker._private_jobs AS jobs
         SET locked_at = NULL, locked_by = NULL, run_at = greatest(run_at, now()), updated_at = now(),
             last_error = 'worker ' || locked_by || ' stopped renewing its lock during attempt ' || attempts || ' (crashed or stalled)',
             key = CASE WHEN attempts >= max_attempts THEN NULL ELSE key END
       WHERE locked_at < now() - $1 * interval '1 millisecond' AND flags IS NOT NULL
      RETURNING id::text`, [options.lockTimeoutMs])
    if (rows.length > 0) {
      log('warning', `released ${rows.length} job(s) whose worker stopped renewing its lock: ${rows.map((row) => row.id).join(', ')}`)
      await pool.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ count: rows.length })])
    }
  }
  const rescueTimer = setInterval(() => {
    rescue().catch((error: unknown) => log('error', `could not release stale job locks: ${messageOf(error)}`))
  }, Math.max(10, Math.floor(options.lockTimeoutMs / 2)))

  let completing: { ids: string[], done: PromiseWithResolvers<void> } | undefined

  // Tries the queues in order in one round trip: the lateral subquery runs per queue until the
  // queues tried so far yielded `max` jobs, and only those jobs are locked.
  const claimJobs = async (queues: readonly string[], types: readonly string[], max: number) => {
    const { rows } = await pool.query<ClaimRow>({
      name: 'chatty_queue_claim_v2',
      text: `
        WITH picked AS (
          SELECT j.id, o.flag
            FROM unnest($2::text[]) AS o(flag)
            CROSS JOIN LATERAL (
              SELECT jobs.id
                FROM graphile_worker._private_jobs AS jobs
               WHERE jobs.is_available AND jobs.run_at <= now()
                 AND jobs.flags = jsonb_build_object(o.flag, true)
                 AND jobs.task_id IN (SELECT tasks.id FROM graphile_worker._private_tasks AS tasks WHERE tasks.identifier = ANY ($3::text[]))
               ORDER BY jobs.priority, jobs.run_at, jobs.id
               LIMIT $4
               FOR UPDATE OF jobs SKIP LOCKED
            ) AS j
           LIMIT $4
        )
        UPDATE graphile_worker._private_jobs AS jobs
           SET attempts = jobs.attempts + 1, locked_by = $1, locked_at = now()
          FROM picked
         WHERE jobs.id = picked.id
        RETURNING jobs.id::text AS id, picked.flag, jobs.payload, jobs.attempts, jobs.max_attempts,
          (SELECT identifier FROM graphile_worker._private_tasks WHERE id = jobs.task_id) AS type`,
      values: [workerId, queues.map(flagOf), types, max]
    })
    // UPDATE ... RETURNING keeps no order: back to the queues' order, then the jobs' id order.
    const rank = new Map(queues.map((queue, i) => [flagOf(queue), i]))
    rows.sort((a, b) => rank.get(a.flag)! - rank.get(b.flag)! || (BigInt(a.id) < BigInt(b.id) ? -1 : 1))
    return rows.map((row) => ({ id: row.id, type: row.type, queue: row.flag.slice(FLAG_PREFIX.length), payload: row.payload, attempt: row.attempts, maxAttempts: row.max_attempts }))
  }

  const store: JobStore = {
    async claim (queues, types) {
      return (await claimJobs(queues, types, 1))[0]
    },

    claimMany: claimJobs,

    complete (job) {
      // Completions that arrive in one event-loop turn share one DELETE.
      if (completing === undefined) {
        const batch = { ids: [] as string[], done: Promise.withResolvers<void>() }
        completing = batch
        setImmediate(() => {
          completing = undefined
          // A lock lost to the rescue but not yet re-claimed still counts: the work is done.
          pool.query('DELETE FROM graphile_worker._private_jobs WHERE id = ANY ($1::bigint[]) AND (locked_by = $2 OR locked_by IS NULL)', [batch.ids, workerId])
            .then(() => batch.done.resolve(), (error: unknown) => batch.done.reject(error))
        })
      }
      completing.ids.push(job.id)
      return completing.done.promise
    },

    async fail (job, error, retryInMs) {
      const message = error.message === '' ? error.name : error.message
      if (retryInMs === undefined) {
        // Failed state: out of attempts. max_attempts drops to the attempts made when a
        // PermanentJobError ends it early, so `attempts` stays the true count. The unique key is
        // released, as it is when a job completes.
        await pool.query(`
          UPDATE graphile_worker._private_jobs
             SET last_error = $3, max_attempts = least(max_attempts, attempts), key = NULL,
                 locked_by = NULL, locked_at = NULL, updated_at = now()
           WHERE id = $1 AND locked_by = $2`, [job.id, workerId, message])
        return
      }
      await pool.query(`
        UPDATE graphile_worker._private_jobs
           SET last_error = $3, run_at = now() + $4 * interval '1 millisecond',
               locked_by = NULL, locked_at = NULL, updated_at = now()
         WHERE id = $1 AND locked_by = $2`, [job.id, workerId, message, retryInMs])
      wakeups.notifyAt(Date.now() + retryInMs)
    },

    async heartbeat (jobs) {
      const ids = jobs.map((job) => job.id)
      const { rows } = await pool.query<{ id: string }>(
        'UPDATE graphile_worker._private_jobs SET locked_at = now() WHERE id = ANY ($1::bigint[]) AND locked_by = $2 RETURNING id::text',
        [ids, workerId])
      const kept = new Set(rows.map((row) => row.id))
      return ids.filter((id) => !kept.has(id))
    },

    async waitForWork (maxMs, signal) {
      if (wakeups.early) return await wakeups.wait(0, signal)
      // Sleep until the next scheduled job (a delayed enqueue or another worker's retry) is due.
      const { rows } = await pool.query<{ due_in_ms: number | null }>(`
        SELECT (extract(epoch FROM min(run_at) - now()) * 1000)::float8 AS due_in_ms FROM graphile_worker._private_jobs
         WHERE is_available AND run_at > now()
           AND flags = ANY (ARRAY(SELECT jsonb_build_object(f, true) FROM unnest($1::text[]) AS f))`,
      [Object.keys(options.queues).map(flagOf)])
      const dueIn = rows[0]?.due_in_ms ?? Infinity
      await wakeups.wait(Math.min(maxMs, Math.max(Math.ceil(dueIn), 0)), signal)
    },

    async recordThroughput (points) {
      await recordThroughput(pool, points)
    },

    async close () {
      closing = true
      clearInterval(rescueTimer)
      wakeups.close()
      const client = listener
      listener = undefined
      if (client !== undefined) {
        client.removeAllListeners()
        client.on('error', () => {})
        await client.end().catch(() => {})
      }
      await pool.end()
    }
  }
  return store
}

async function recordThroughput (pool: pg.Pool, points: readonly ThroughputPoint[]): Promise<void> {
  if (points.length === 0) return
  await pool.query(`
    WITH pruned AS (DELETE FROM chatty_queue.throughput WHERE minute < now() - interval '25 hours')
    INSERT INTO chatty_queue.throughput AS t (minute, queue, completed, failed)
    SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::bigint[])
    ON CONFLICT (minute, queue) DO UPDATE
      SET completed = t.completed + excluded.completed, failed = t.failed + excluded.failed`,
  [points.map((p) => p.minute.toISOString()), points.map((p) => p.queue), points.map((p) => p.completed), points.map((p) => p.failed)])
}

// ---- admin -----------------------------------------------------------------------------------

const QUEUE_OF = `(SELECT substr(k, ${FLAG_PREFIX.length + 1}) FROM jsonb_object_keys(jobs.flags) AS k WHERE k LIKE '${FLAG_PREFIX}%' LIMIT 1)`
const STATE_OF = `CASE WHEN jobs.locked_at IS NOT NULL THEN 'active'
  WHEN jobs.attempts >= jobs.max_attempts THEN 'failed'
  WHEN jobs.run_at > now() THEN 'scheduled' ELSE 'pending' END`
const STATE_FILTER: Record<JobState, { where: string, order: string }> = {
  active: { where: 'jobs.locked_at IS NOT NULL', order: 'jobs.locked_at DESC, jobs.id DESC' },
  failed: { where: 'jobs.locked_at IS NULL AND jobs.attempts >= jobs.max_attempts', order: 'jobs.updated_at DESC, jobs.id DESC' },
  scheduled: { where: 'jobs.locked_at IS NULL AND jobs.attempts < jobs.max_attempts AND jobs.run_at > now()', order: 'jobs.run_at, jobs.id' },
  pending: { where: 'jobs.locked_at IS NULL AND jobs.attempts < jobs.max_attempts AND jobs.run_at <= now()', order: 'jobs.priority, jobs.run_at, jobs.id' }
}
const JOB_COLUMNS = `jobs.id::text AS id, tasks.identifier AS type, ${QUEUE_OF} AS queue, jobs.payload, ${STATE_OF} AS state,
  jobs.attempts, jobs.max_attempts, jobs.last_error, jobs.created_at, jobs.run_at, jobs.updated_at`
const JOBS_FROM = `graphile_worker._private_jobs AS jobs JOIN graphile_worker._private_tasks AS tasks ON tasks.id = jobs.task_id`

interface JobRow {
  id: string
  type: string
  queue: string
  payload: unknown
  state: JobState
  attempts: number
  max_attempts: number
  last_error: string | null
  created_at: Date
  run_at: Date
  updated_at: Date
}

function toJobInfo (row: JobRow): JobInfo {
  return {
    id: row.id,
    type: row.type,
    queue: row.queue,
    payload: row.payload,
    state: row.state,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    lastError: row.last_error,
    createdAt: row.created_at,
    runAt: row.state === 'pending' || row.state === 'scheduled' ? row.run_at : null,
    failedAt: row.state === 'failed' ? row.updated_at : null
  }
}

const isJobId = (id: string) => /^[0-9]{1,18}$/.test(id)

export function createPostgresQueueAdmin (options: { connectionString: string, queues?: Record<string, number> }): QueueAdmin {
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 2 })
  pool.on('error', () => {})
  const configured = Object.keys(checkQueueWeights(options.queues ?? { [DEFAULT_QUEUE]: 1 }))
  return {
    async counts () {
      const { rows } = await pool.query<{ queue: string, state: JobState, n: number }>(`
        SELECT ${QUEUE_OF} AS queue, ${STATE_OF} AS state, count(*)::int AS n
          FROM graphile_worker._private_jobs AS jobs
         WHERE jobs.flags IS NOT NULL
         GROUP BY 1, 2`)
      const counts = new Map<string, QueueCounts>()
      const entry = (queue: string) => {
        let found = counts.get(queue)
        if (found === undefined) {
          found = { queue, pending: 0, scheduled: 0, active: 0, failed: 0 }
          counts.set(queue, found)
        }
        return found
      }
      for (const queue of configured) entry(queue)
      for (const row of rows) if (row.queue !== null) entry(row.queue)[row.state] += row.n
      return [...counts.values()]
    },

    async listJobs (filter: ListJobsFilter) {
      if (!JOB_STATES.includes(filter.state)) throw new RangeError(`unknown job state ${JSON.stringify(filter.state)}`)
      if (filter.queue !== undefined) assertQueueName(filter.queue)
      const { where, order } = STATE_FILTER[filter.state]
      const { rows } = await pool.query<JobRow>(`
        SELECT ${JOB_COLUMNS} FROM ${JOBS_FROM}
         WHERE jobs.flags IS NOT NULL AND ${where}
           AND ($1::text IS NULL OR jobs.flags = jsonb_build_object($2::text || $1::text, true))
         ORDER BY ${order}
         LIMIT $3 OFFSET $4`,
      [filter.queue ?? null, FLAG_PREFIX, clampLimit(filter.limit), Math.max(0, filter.offset ?? 0)])
      return rows.map(toJobInfo)
    },

    async getJob (id: string) {
      if (!isJobId(id)) return undefined
      const { rows } = await pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM ${JOBS_FROM} WHERE jobs.id = $1 AND jobs.flags IS NOT NULL`, [id])
      return rows[0] === undefined ? undefined : toJobInfo(rows[0])
    },

    async retryNow (id: string) {
      if (!isJobId(id)) return false
      const { rows } = await pool.query(`
        WITH updated AS (
          UPDATE graphile_worker._private_jobs
             SET run_at = now(), updated_at = now(),
                 attempts = CASE WHEN attempts >= max_attempts THEN 0 ELSE attempts END
           WHERE id = $1 AND locked_at IS NULL AND flags IS NOT NULL
          RETURNING id
        )
        SELECT pg_notify($2, '{"count":1}') FROM updated`, [id, CHANNEL])
      return rows.length > 0
    },

    async delete (id: string) {
      if (!isJobId(id)) return false
      const { rowCount } = await pool.query('DELETE FROM graphile_worker._private_jobs WHERE id = $1 AND locked_at IS NULL AND flags IS NOT NULL', [id])
      return rowCount === 1
    },

    async throughput (since: Date) {
      try {
        const { rows } = await pool.query<{ queue: string, minute: Date, completed: string, failed: string }>(
          `SELECT queue, minute, completed, failed FROM chatty_queue.throughput
            WHERE minute >= date_trunc('minute', $1::timestamptz) ORDER BY minute, queue`, [since.toISOString()])
        return rows.map((row) => ({ queue: row.queue, minute: row.minute, completed: Number(row.completed), failed: Number(row.failed) }))
      } catch (error) {
        if ((error as { code?: string }).code === '42P01') return [] // no worker has run yet
        throw error
      }
    },

    async close () {
      await pool.end()
    }
  }
}

function clampLimit (limit: number | undefined): number {
  return Math.min(Math.max(Math.trunc(limit ?? 50), 1), 1000)
}
