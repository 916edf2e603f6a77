// Waiting in tests: the one poller and the one sleep every package's tests use, and the user
// ids the fixtures share.

export interface WaitOptions {
  /** Named in the error when the wait times out. */
  what?: string
  timeoutMs?: number
  intervalMs?: number
}

/**
 * Calls `probe` until it returns something other than undefined or false, and resolves with
 * that; throws, naming `what`, after `timeoutMs`. `what` may be given alone as a string.
 */
export async function waitFor<T> (probe: () => T | undefined | false | Promise<T | undefined | false>, options: WaitOptions | string = {}, timeoutMs?: number): Promise<T> {
  const { what = 'a condition', timeoutMs: timeout = timeoutMs ?? 10_000, intervalMs = 20 } = typeof options === 'string' ? { what: options } : options
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}

/** Lets time pass on purpose (a TTL, a rate window); never to prove that something did not happen. */
export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** The fixtures' users. */
export const users = {
  alice: '11111111-1111-4111-8111-111111111111',
  bob: '22222222-2222-4222-8222-222222222222',
  eve: '33333333-3333-4333-8333-333333333333',
  carol: '44444444-4444-4444-8444-444444444444',
  dave: '55555555-5555-4555-8555-555555555555'
}
