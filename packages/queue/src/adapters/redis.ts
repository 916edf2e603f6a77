// Redis queue adapter on BullMQ: one BullMQ queue per named queue. Workers fetch jobs by hand
// (BullMQ's "manual fetching") so the shared worker pool decides which queue a free worker takes
// from; BullMQ keeps the locks, the stalled-job recovery, the delays and the failed set.
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { Job, Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { resolveEnqueue } from '../enqueue-options.ts'
import { QueueUnavailableError } from '../errors.ts'
import type { EnqueueOptions, JobInfo, JobState, ListJobsFilter, QueueAdmin, QueueClient, QueueCounts, QueueServer, Task, ThroughputPoint } from '../port.ts'
import { JOB_STATES } from '../port.ts'
import { assertQueueName, checkQueueWeights, DEFAULT_QUEUE, isQueueName } from '../weights.ts'
import { createWorkerPoolServer, messageOf, resolveServerOptions, type ClaimedJob, type JobStore, type QueueServerOptions, type WorkerPoolOptions } from '../worker-pool.ts'

export const DEFAULT_REDIS_PREFIX = 'chatty:q'

export interface RedisConnectionOptions {
  redisUrl: string
  /** Key prefix of every key this adapter writes [chatty:q]; tests use one per test. */
  prefix?: string
  log?: (level: string, message: string) => void
}

export interface RedisQueueOptions extends QueueServerOptions, RedisConnectionOptions {}

/** The worker pool computes retry delays; BullMQ is told to use the one carried by the error. */
const BACKOFF_TYPE = 'chatty'
const THROUGHPUT_TTL_SECONDS = 25 * 3600

// A job id names its queue too: BullMQ numbers jobs per queue. Queue names never contain ":".
const toId = (queue: string, bullId: string | undefined) => `${queue}:${bullId ?? ''}`
function parseId (id: string): { queue: string, bullId: string } | undefined {
  const at = id.indexOf(':')
  if (at <= 0 || at === id.length - 1) return undefined
  return { queue: id.slice(0, at), bullId: id.slice(at + 1) }
}

const throughputKey = (prefix: string, minute: number) => `${prefix}:~throughput:${minute}`

function connect (options: RedisConnectionOptions, blocking: boolean): Redis {
  // BullMQ requires maxRetriesPerRequest null where it blocks. Once connected, enqueues fail at
  // once while Redis is away (no offline queue): waiting out reconnect attempts would hang the
  // caller's request.
  const redis = new Redis(options.redisUrl, blocking ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 2 })
  if (!blocking) redis.once('ready', () => { redis.options.enableOfflineQueue = false })
  redis.on('error', (error) => options.log?.('error', `queue redis connection error: ${error.message}`))
  return redis
}

export function createRedisQueueClient (options: RedisConnectionOptions): QueueClient {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX
  const connection = connect(options, false)
  let connectedOnce = false
  connection.once('ready', () => { connectedOnce = true })
  const queues = new Map<string, Queue>()
  const queueFor = (name: string) => {
    let queue = queues.get(name)
    if (queue === undefined) {
      queue = new Queue(name, { connection, prefix })
      queue.on('error', (error) => options.log?.('error', `queue ${name}: ${error.message}`))
      queues.set(name, queue)
    }
    return queue
  }
  return {
    async enqueue<P>(task: Task<P>, enqueueOptions: EnqueueOptions = {}): Promise<string> {
      // Once Redis has been reached, a lost connection fails the enqueue at once: BullMQ would
      // otherwise wait for the reconnect (a queue first used during the outage waits for good).
      if (connectedOnce && connection.status !== 'ready') throw new QueueUnavailableError('the Redis queue is not reachable')
      const resolved = resolveEnqueue(task, enqueueOptions)
      const job = await queueFor(resolved.queue).add(task.type, task.payload ?? {}, {
        delay: resolved.runAt === undefined ? undefined : Math.max(0, resolved.runAt.getTime() - Date.now()),
        attempts: resolved.maxAttempts,
        backoff: { type: BACKOFF_TYPE },
        // Simple-mode deduplication: the key is held until the job completes or fails for good.
        deduplication: resolved.uniqueKey === undefined ? undefined : { id: resolved.uniqueKey },
        removeOnComplete: true,
        removeOnFail: false
      })
      return toId(resolved.queue, job.id)
    },
    async close () {
      await Promise.all([...queues.values()].map((queue) => queue.close()))
      await connection.quit().catch(() => {})
    }
  }
}

export function createRedisQueueServer (options: RedisQueueOptions): QueueServer {
  const poolOptions = resolveServerOptions(options)
  return createWorkerPoolServer(async () => openRedisStore(options, poolOptions), poolOptions)
}

interface RedisJob extends ClaimedJob {
  job: Job
  token: string
  worker: Worker
}

function openRedisStore (connectionOptions: RedisQueueOptions, options: WorkerPoolOptions): JobStore<RedisJob> {
  const { log } = options
  const prefix = connectionOptions.prefix ?? DEFAULT_REDIS_PREFIX
  const connection = connect(connectionOptions, true)
  const blocking = connect(connectionOptions, true)
  const identity = `chatty@${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  let tokens = 0
  const workers = new Map<string, Worker>()
  for (const name of Object.keys(options.queues)) {
    const worker = new Worker(name, null, {
      connection,
      prefix,
      autorun: false,
      name: identity,
      lockDuration: options.lockTimeoutMs,
      stalledInterval: Math.max(10, Math.floor(options.lockTimeoutMs / 2)),
      // A job whose worker died twice mid-attempt fails ("job stalled more than allowable limit").
      maxStalledCount: 1,
      removeOnComplete: { count: 0 },
      settings: {
        backoffStrategy: (_attemptsMade: number, _type?: string, error?: Error) => (error as { retryInMs?: number } | undefined)?.retryInMs ?? 0
      }
    })
    worker.on('error', (error) => log('error', `queue ${name} worker: ${error.message}`))
    workers.set(name, worker)
    // Moves jobs of dead workers back to waiting once their lock expires.
    void worker.startStalledCheckTimer()
  }
  const markers = [...workers.values()].map((worker) => worker.toKey('marker'))
  const delayedKeys = [...workers.values()].map((worker) => worker.toKey('delayed'))
  let blockingCall: Promise<void> | undefined

  const store: JobStore<RedisJob> = {
    async claim (queues) {
      for (const queue of queues) {
        const worker = workers.get(queue)
        if (worker === undefined) continue
        const token = `${identity}:${tokens++}`
        const job = await worker.getNextJob(token, { block: false })
        if (job === undefined) continue
        if (job.deferredFailure !== undefined && job.deferredFailure !== '') {
          // Its worker died too often while running it: fail it without another run.
          const error = new Error(job.deferredFailure)
          error.name = 'UnrecoverableError'
          await job.moveToFailed(error, token, false).catch((failure: unknown) => log('error', `could not fail job ${job.id}: ${messageOf(failure)}`))
          continue
        }
        return {
          id: toId(queue, job.id),
          type: job.name,
          queue,
          payload: job.data,
          attempt: job.attemptsMade + 1,
          maxAttempts: job.opts.attempts ?? 1,
          job,
          token,
          worker
        }
      }
      return undefined
    },

    async complete (claimed) {
      await claimed.job.moveToCompleted(null, claimed.token, false)
    },

    async fail (claimed, cause, retryInMs) {
      const error = new Error(cause.message === '' ? cause.name : cause.message)
      error.stack = cause.stack
      if (retryInMs === undefined) error.name = 'UnrecoverableError' // no retry, whatever attempts are left
      else Object.assign(error, { retryInMs })
      await claimed.job.moveToFailed(error, claimed.token, false)
    },

    async heartbeat (jobs) {
      const lost: string[] = []
      const byWorker = Map.groupBy(jobs, (job) => job.worker)
      for (const [worker, group] of byWorker) {
        const failed = new Set(await worker.extendJobLocks(group.map((job) => job.job.id!), group.map((job) => job.token), options.lockTimeoutMs))
        for (const job of group) if (failed.has(job.job.id!)) lost.push(job.id)
      }
      return lost
    },

    async waitForWork (maxMs, signal) {
      // Block on every queue's BullMQ marker at once: it is set when a job is added or becomes
      // ready. Delayed jobs (including retries) are promoted by the next claim once due, so sleep
      // no longer than until the earliest of them. One blocking call at a time on this connection.
      blockingCall ??= (async () => {
        const pipeline = connection.pipeline()
        for (const key of delayedKeys) pipeline.zrange(key, 0, 0, 'WITHSCORES')
        let nextDueAt = Infinity
        for (const [, entry] of (await pipeline.exec()) ?? []) {
          const score = (entry as string[] | null)?.[1]
          // BullMQ scores a delayed job with its due time * 4096 plus a tie-breaker.
          if (score !== undefined) nextDueAt = Math.min(nextDueAt, Math.floor(Number(score) / 0x1000))
        }
        const timeoutMs = Math.max(10, Math.min(maxMs, nextDueAt - Date.now()))
        await blocking.call('bzpopmin', [...markers, timeoutMs / 1000])
      })().finally(() => { blockingCall = undefined })
      if (signal.aborted) return
      const aborted = Promise.withResolvers<void>()
      const onAbort = () => aborted.resolve()
      signal.addEventListener('abort', onAbort, { once: true })
      // A blocking call caught by a Redis restart may never be answered: never wait much longer
      // than asked, so the next claim (on the other connection) still finds new jobs.
      const bound = setTimeout(() => aborted.resolve(), maxMs + 1000)
      try {
        await Promise.race([blockingCall, aborted.promise])
      } finally {
        clearTimeout(bound)
        signal.removeEventListener('abort', onAbort)
      }
    },

    async recordThroughput (points) {
      await recordThroughput(connection, prefix, points)
    },

    async close () {
      blocking.disconnect()
      await blockingCall?.catch(() => {})
      await Promise.all([...workers.values()].map((worker) => worker.close().catch((error: unknown) => log('error', `closing worker: ${messageOf(error)}`))))
      await connection.quit().catch(() => {})
    }
  }
  return store
}

async function recordThroughput (redis: Redis, prefix: string, points: readonly ThroughputPoint[]): Promise<void> {
  if (points.length === 0) return
  const pipeline = redis.pipeline()
  for (const point of points) {
    const key = throughputKey(prefix, point.minute.getTime())
    if (point.completed > 0) pipeline.hincrby(key, `${point.queue}:completed`, point.completed)
    if (point.failed > 0) pipeline.hincrby(key, `${point.queue}:failed`, point.failed)
    pipeline.expire(key, THROUGHPUT_TTL_SECONDS)
  }
  await pipeline.exec()
}

// ---- admin -----------------------------------------------------------------------------------

const BULL_STATES: Record<JobState, Array<'waiting' | 'prioritized' | 'delayed' | 'active' | 'failed'>> = {
  pending: ['waiting', 'prioritized'],
  scheduled: ['delayed'],
  active: ['active'],
  failed: ['failed']
}

function stateOf (bullState: string): JobState | undefined {
  for (const state of JOB_STATES) if ((BULL_STATES[state] as string[]).includes(bullState)) return state
  return undefined
}

export function createRedisQueueAdmin (options: RedisConnectionOptions & { queues?: Record<string, number> }): QueueAdmin {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX
  const connection = connect(options, false)
  const configured = Object.keys(checkQueueWeights(options.queues ?? { [DEFAULT_QUEUE]: 1 }))
  const queues = new Map<string, Queue>()
  const queueFor = (name: string) => {
    let queue = queues.get(name)
    if (queue === undefined) {
      queue = new Queue(name, { connection, prefix })
      queue.on('error', () => {})
      queues.set(name, queue)
    }
    return queue
  }

  /** Configured queues plus any that hold jobs (BullMQ writes a meta key per queue). */
  const knownQueues = async (): Promise<string[]> => {
    const names = new Set(configured)
    let cursor = '0'
    do {
      const [next, keys] = await connection.scan(cursor, 'MATCH', `${prefix}:*:meta`, 'COUNT', 1000)
      cursor = next
      for (const key of keys) {
        const name = key.slice(prefix.length + 1, -':meta'.length)
        if (isQueueName(name)) names.add(name)
      }
    } while (cursor !== '0')
    return [...names]
  }

  const runAtOf = async (queue: string, jobs: Job[]): Promise<Map<string, Date>> => {
    const pipeline = connection.pipeline()
    for (const job of jobs) pipeline.zscore(queueFor(queue).toKey('delayed'), job.id!)
    const results = (await pipeline.exec()) ?? []
    const runAt = new Map<string, Date>()
    // BullMQ scores a delayed job with its due time * 4096 plus a tie-breaker.
    results.forEach(([, score], i) => { if (score !== null) runAt.set(jobs[i]!.id!, new Date(Math.floor(Number(score) / 0x1000))) })
    return runAt
  }

  const toJobInfo = (queue: string, job: Job, state: JobState, runAt: Date | null): JobInfo => ({
    id: toId(queue, job.id),
    type: job.name,
    queue,
    payload: job.data,
    state,
    attempts: job.attemptsMade + (state === 'active' ? 1 : 0),
    maxAttempts: job.opts.attempts ?? 1,
    lastError: job.failedReason === undefined || job.failedReason === '' ? null : job.failedReason,
    createdAt: new Date(job.timestamp),
    runAt,
    failedAt: state === 'failed' && job.finishedOn !== undefined ? new Date(job.finishedOn) : null
  })

  const findJob = async (id: string): Promise<{ queue: string, job: Job, state: JobState | undefined } | undefined> => {
    const parsed = parseId(id)
    if (parsed === undefined) return undefined
    const queue = queueFor(parsed.queue)
    // The job's hash and its state are two reads: repeat until a worker did not move it between them.
    for (let tries = 0; ; tries++) {
      const before = await queue.getJobState(parsed.bullId)
      const job = await Job.fromId(queue, parsed.bullId)
      if (job === undefined) return undefined
      const after = await queue.getJobState(parsed.bullId)
      if (before === after || tries === 5) return { queue: parsed.queue, job, state: stateOf(after) }
    }
  }

  return {
    async counts () {
      const result: QueueCounts[] = []
      for (const name of await knownQueues()) {
        const counts = await queueFor(name).getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'failed')
        const sum = (state: JobState) => BULL_STATES[state].reduce((total, bullState) => total + (counts[bullState] ?? 0), 0)
        result.push({ queue: name, pending: sum('pending'), scheduled: sum('scheduled'), active: sum('active'), failed: sum('failed') })
      }
      return result
    },

    async listJobs (filter: ListJobsFilter) {
      if (!JOB_STATES.includes(filter.state)) throw new RangeError(`unknown job state ${JSON.stringify(filter.state)}`)
      const limit = Math.min(Math.max(Math.trunc(filter.limit ?? 50), 1), 1000)
      const offset = Math.max(0, filter.offset ?? 0)
      if (filter.queue !== undefined) assertQueueName(filter.queue)
      const names = filter.queue === undefined ? await knownQueues() : [filter.queue]
      const newestFirst = filter.state === 'failed' || filter.state === 'active'
      const found: Array<{ info: JobInfo, at: number }> = []
      for (const name of names) {
        const jobs = (await queueFor(name).getJobs(BULL_STATES[filter.state], 0, offset + limit - 1, !newestFirst)).filter((job) => job !== undefined)
        const runAt = filter.state === 'scheduled' ? await runAtOf(name, jobs) : new Map<string, Date>()
        for (const job of jobs) {
          const info = toJobInfo(name, job, filter.state, runAt.get(job.id!) ?? null)
          const at = filter.state === 'failed' ? job.finishedOn ?? 0 : filter.state === 'active' ? job.processedOn ?? 0 : filter.state === 'scheduled' ? info.runAt?.getTime() ?? 0 : job.timestamp
          found.push({ info, at })
        }
      }
      found.sort((a, b) => newestFirst ? b.at - a.at : a.at - b.at)
      return found.slice(offset, offset + limit).map((entry) => entry.info)
    },

    async getJob (id: string) {
      const found = await findJob(id)
      if (found === undefined || found.state === undefined) return undefined
      const runAt = found.state === 'scheduled' ? (await runAtOf(found.queue, [found.job])).get(found.job.id!) ?? null : null
      return toJobInfo(found.queue, found.job, found.state, runAt)
    },

    async retryNow (id: string) {
      const found = await findJob(id)
      if (found === undefined) return false
      if (found.state === 'failed') await found.job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true })
      else if (found.state === 'scheduled') await found.job.promote()
      else if (found.state !== 'pending') return false
      return true
    },

    async delete (id: string) {
      const found = await findJob(id)
      if (found === undefined || found.state === undefined || found.state === 'active') return false
      try {
        await found.job.remove()
        return true
      } catch {
        return false // it started running in the meantime
      }
    },

    async throughput (since: Date) {
      const first = Math.floor(since.getTime() / 60_000) * 60_000
      const minutes: number[] = []
      for (let minute = first; minute <= Date.now(); minute += 60_000) minutes.push(minute)
      const pipeline = connection.pipeline()
      for (const minute of minutes) pipeline.hgetall(throughputKey(prefix, minute))
      const results = (await pipeline.exec()) ?? []
      const points: ThroughputPoint[] = []
      results.forEach(([, fields], i) => {
        const byQueue = new Map<string, ThroughputPoint>()
        for (const [field, value] of Object.entries((fields ?? {}) as Record<string, string>)) {
          const at = field.lastIndexOf(':')
          const queue = field.slice(0, at)
          const kind = field.slice(at + 1)
          let point = byQueue.get(queue)
          if (point === undefined) {
            point = { queue, minute: new Date(minutes[i]!), completed: 0, failed: 0 }
            byQueue.set(queue, point)
          }
          if (kind === 'completed') point.completed = Number(value)
          else if (kind === 'failed') point.failed = Number(value)
        }
        points.push(...[...byQueue.values()].sort((a, b) => a.queue.localeCompare(b.queue)))
      })
      return points
    },

    async close () {
      await Promise.all([...queues.values()].map((queue) => queue.close()))
      await connection.quit().catch(() => {})
    }
  }
}
