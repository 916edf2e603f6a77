// Enqueue options as both adapters apply them: defaults filled in, bad values refused up front.
import type { EnqueueOptions, Task } from './port.ts'
import { assertQueueName, DEFAULT_QUEUE } from './weights.ts'

export const DEFAULT_MAX_ATTEMPTS = 25

export interface ResolvedEnqueue {
  queue: string
  /** undefined: run now. */
  runAt: Date | undefined
  maxAttempts: number
  uniqueKey: string | undefined
}

export function resolveEnqueue (task: Task<unknown>, options: EnqueueOptions = {}): ResolvedEnqueue {
  if (typeof task.type !== 'string' || task.type === '') throw new TypeError('task.type must be a non-empty string')
  const queue = options.queue ?? DEFAULT_QUEUE
  assertQueueName(queue)
  let runAt = options.runAt
  if (runAt !== undefined && Number.isNaN(runAt.getTime())) throw new RangeError('runAt is not a valid date')
  if (runAt === undefined && options.delayMs !== undefined) {
    if (!(options.delayMs >= 0) || !Number.isFinite(options.delayMs)) throw new RangeError(`delayMs must be a finite number >= 0, got ${options.delayMs}`)
    runAt = new Date(Date.now() + options.delayMs)
  }
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 32767) throw new RangeError(`maxAttempts must be an integer from 1 to 32767, got ${maxAttempts}`)
  const uniqueKey = options.uniqueKey
  if (uniqueKey !== undefined && (uniqueKey === '' || uniqueKey.length > 400)) throw new RangeError('uniqueKey must be 1 to 400 characters')
  return { queue, runAt, maxAttempts, uniqueKey }
}
