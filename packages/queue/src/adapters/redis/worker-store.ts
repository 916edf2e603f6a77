// The Redis queue's worker side: the JobStore the shared worker pool runs on, over BullMQ workers
// that fetch by hand (claim, complete, fail, lock renewal, idle waits on BullMQ's markers), and
// the queue server built on it.
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { Worker, type Job } from 'bullmq'
import type { Redis } from 'ioredis'
import type { QueueServer, ThroughputPoint } from '../../port.ts'
import { createWorkerPoolServer, messageOf, resolveServerOptions, type ClaimedJob, type JobStore, type QueueServerOptions, type WorkerPoolOptions } from '../../worker-pool.ts'
import { connect, DEFAULT_REDIS_PREFIX, throughputKey, THROUGHPUT_TTL_SECONDS, toId, type RedisConnectionOptions } from './connection.ts'

export interface RedisQueueOptions extends QueueServerOptions, RedisConnectionOptions {}

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
