// When a failed attempt runs again: exponential backoff with jitter, capped.

export interface BackoffOptions {
  /** Delay after the first failed attempt, before jitter. Default 1000 ms. */
  baseMs?: number
  /** Upper bound of any delay. Default 3_600_000 ms (one hour). */
  maxMs?: number
  /**
   * Fraction of the delay drawn at random, 0..1. Default 0.5: the delay after failed attempt n is
   * uniform in [d/2, d] with d = min(maxMs, baseMs * 2^(n-1)), so retries of many jobs that failed
   * together spread out instead of stampeding back at once.
   */
  jitter?: number
}

export type RetryDelay = (failedAttempt: number) => number

export function createRetryDelay (options: BackoffOptions = {}): RetryDelay {
  const baseMs = options.baseMs ?? 1000
  const maxMs = options.maxMs ?? 3_600_000
  const jitter = options.jitter ?? 0.5
  if (!(baseMs > 0) || !(maxMs >= baseMs) || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(`invalid backoff: baseMs ${baseMs}, maxMs ${maxMs}, jitter ${jitter}`)
  }
  return (failedAttempt) => {
    const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(failedAttempt - 1, 0), 52))
    return Math.round(ceiling * (1 - jitter * Math.random()))
  }
}
