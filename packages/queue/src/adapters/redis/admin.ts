// The Redis queue's admin side: counts, job listings, retry and delete through BullMQ's queues,
// and the per-minute throughput hashes.
import { Job, Queue } from 'bullmq'
import type { JobInfo, JobState, ListJobsFilter, QueueAdmin, QueueCounts, ThroughputPoint } from '../../port.ts'
import { JOB_STATES } from '../../port.ts'
import { assertQueueName, checkQueueWeights, DEFAULT_QUEUE, isQueueName } from '../../weights.ts'
import { connect, DEFAULT_REDIS_PREFIX, parseId, throughputKey, toId, type RedisConnectionOptions } from './connection.ts'

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
