// The Redis queue's enqueue side: one BullMQ queue per named queue, added to with BullMQ's options.
import { Queue } from 'bullmq'
import { resolveEnqueue } from '../../enqueue-options.ts'
import { QueueUnavailableError } from '../../errors.ts'
import type { EnqueueOptions, QueueClient, Task } from '../../port.ts'
import { connect, DEFAULT_REDIS_PREFIX, toId, type RedisConnectionOptions } from './connection.ts'

/** The worker pool computes retry delays; BullMQ is told to use the one carried by the error. */
const BACKOFF_TYPE = 'chatty'

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
