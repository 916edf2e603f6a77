// Errors the queue package defines: thrown by handlers, seen in a failed job's lastError, or
// raised for a bad configuration.

/** Thrown by a handler: fail the job now, without using its remaining attempts. */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError'
}

/** The reason a handler's signal aborts when its attempt outlives the timeout. */
export class JobTimeoutError extends Error {
  override name = 'JobTimeoutError'
  constructor (timeoutMs: number) {
    super(`job attempt timed out after ${timeoutMs} ms`)
  }
}

/** The reason a handler's signal aborts when another worker took the job over. */
export class JobLockLostError extends Error {
  override name = 'JobLockLostError'
  constructor () {
    super('job lock lost: the job was released to another worker')
  }
}

/** A queue name, weight string or option that cannot work. */
export class QueueConfigError extends Error {
  override name = 'QueueConfigError'
}

/** The queue's server is not reachable now (Redis is away): nothing was enqueued; retry later. */
export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError'
}
