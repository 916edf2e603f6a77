// The Postgres queue's worker side: the JobStore the shared worker pool runs on (claim, complete,
// fail, lock renewal, stale-lock rescue, idle waits on LISTEN) and the queue server built on it.
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import pg from 'pg'
import { pinSessionSettings } from '@chatty/db'
import type { QueueServer, ThroughputPoint } from '../../port.ts'
import { createWorkerPoolServer, messageOf, resolveServerOptions, type JobStore, type QueueServerOptions, type WorkerPoolOptions } from '../../worker-pool.ts'
import { installQueueSchema } from './schema.ts'
import { CHANNEL, CLAIM_NAME, CLAIM_SQL, COMPLETE_SQL, FAIL_FOR_GOOD_SQL, FAIL_RETRY_SQL, FLAG_PREFIX, flagOf, HEARTBEAT_SQL, LISTEN_SQL, NEXT_DUE_SQL, NOTIFY_SQL, RECORD_THROUGHPUT_SQL, RELEASE_SQL, RESCUE_STALE_SQL } from './sql.ts'
import { Wakeups } from './wakeups.ts'

export interface PostgresQueueOptions extends QueueServerOptions {
  connectionString: string
}

export function createPostgresQueueServer (options: PostgresQueueOptions): QueueServer {
  const poolOptions = resolveServerOptions(options)
  return createWorkerPoolServer(() => openPostgresStore(options.connectionString, poolOptions), poolOptions)
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
  const pool = new pg.Pool({ connectionString: pinSessionSettings(connectionString), max: Math.min(options.concurrency, 8) + 2 })
  pool.on('error', (error) => log('error', `queue connection error: ${error.message}`))
  const wakeups = new Wakeups()
  let closing = false

  // LISTEN on a connection of its own; reconnects after errors while polling covers the gap.
  let listener: pg.Client | undefined
  const listen = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: pinSessionSettings(connectionString) })
    const reconnect = (error?: Error) => {
      if (error !== undefined) log('warning', `queue notification connection lost: ${error.message}`)
      void discard(client)
      if (listener === client) listener = undefined
      if (!closing) setTimeout(() => { listen().catch(() => {}) }, 1000).unref()
    }
    client.on('notification', () => wakeups.notify())
    client.on('error', reconnect)
    client.on('end', () => { if (listener === client) reconnect() })
    try {
      await client.connect()
      await client.query(LISTEN_SQL)
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
    const { rows } = await pool.query<{ id: string }>(RESCUE_STALE_SQL, [options.lockTimeoutMs])
    if (rows.length > 0) {
      log('warning', `released ${rows.length} job(s) whose worker stopped renewing its lock: ${rows.map((row) => row.id).join(', ')}`)
      await pool.query(NOTIFY_SQL, [CHANNEL, JSON.stringify({ count: rows.length })])
    }
  }
  const rescueTimer = setInterval(() => {
    rescue().catch((error: unknown) => log('error', `could not release stale job locks: ${messageOf(error)}`))
  }, Math.max(10, Math.floor(options.lockTimeoutMs / 2)))

  let completing: { ids: string[], done: PromiseWithResolvers<void> } | undefined

  // Up to `max` jobs in one round trip, the queues tried in the order given (see CLAIM_SQL).
  const claimJobs = async (queues: readonly string[], types: readonly string[], max: number) => {
    const { rows } = await pool.query<ClaimRow>({
      name: CLAIM_NAME,
      text: CLAIM_SQL,
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

    async release (jobs) {
      await pool.query(RELEASE_SQL, [jobs.map((job) => job.id), workerId, CHANNEL])
    },

    complete (job) {
      // Completions that arrive in one event-loop turn share one DELETE.
      if (completing === undefined) {
        const batch = { ids: [] as string[], done: Promise.withResolvers<void>() }
        completing = batch
        setImmediate(() => {
          completing = undefined
          pool.query(COMPLETE_SQL, [batch.ids, workerId])
            .then(() => batch.done.resolve(), (error: unknown) => batch.done.reject(error))
        })
      }
      completing.ids.push(job.id)
      return completing.done.promise
    },

    async fail (job, error, retryInMs) {
      const message = error.message === '' ? error.name : error.message
      if (retryInMs === undefined) {
        // Failed state: out of attempts (see FAIL_FOR_GOOD_SQL).
        await pool.query(FAIL_FOR_GOOD_SQL, [job.id, workerId, message])
        return
      }
      await pool.query(FAIL_RETRY_SQL, [job.id, workerId, message, retryInMs])
      wakeups.notifyAt(Date.now() + retryInMs)
    },

    async heartbeat (jobs) {
      const ids = jobs.map((job) => job.id)
      const { rows } = await pool.query<{ id: string }>(HEARTBEAT_SQL, [ids, workerId])
      const kept = new Set(rows.map((row) => row.id))
      return ids.filter((id) => !kept.has(id))
    },

    async waitForWork (maxMs, signal) {
      if (wakeups.early) return await wakeups.wait(0, signal)
      // Sleep until the next scheduled job (a delayed enqueue or another worker's retry) is due.
      const { rows } = await pool.query<{ due_in_ms: number | null }>(NEXT_DUE_SQL, [Object.keys(options.queues).map(flagOf)])
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
      if (client !== undefined) await discard(client)
      await pool.end()
    }
  }
  return store
}

/** Ends a connection whose events no longer matter; an error it raises meanwhile is ignored. */
function discard (client: pg.Client): Promise<void> {
  client.removeAllListeners()
  client.on('error', () => {})
  return client.end().catch(() => {})
}

async function recordThroughput (pool: pg.Pool, points: readonly ThroughputPoint[]): Promise<void> {
  if (points.length === 0) return
  await pool.query(RECORD_THROUGHPUT_SQL, [points.map((p) => p.minute.toISOString()), points.map((p) => p.queue), points.map((p) => p.completed), points.map((p) => p.failed)])
}
