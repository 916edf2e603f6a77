// The bytes of replays one api process holds at once (WS_MAX_PROCESS_REPLAY_BYTES): a replay takes
// a page's worth before reading it from the database and gives it back once the page is written
// to the network, so however many sockets replay, and however slowly they read, the pages they
// hold together stay under the limit. Taking waits its turn (first come, first served) for at most
// a given time. Hand-written because a page can turn out larger than the estimate it took (one
// large message), which a counting semaphore cannot record.

interface Waiter {
  bytes: number
  grant: () => void
}

export class ByteBudget {
  readonly limit: number
  /** Bytes taken and not given back. */
  used = 0
  private readonly waiting: Waiter[] = []

  constructor (limit: number) {
    this.limit = limit
  }

  /** Takes `bytes` (at most the limit) once they fit; false when they did not within `timeoutMs`. */
  take (bytes: number, timeoutMs: number): Promise<boolean> {
    if (this.waiting.length === 0 && this.used + bytes <= this.limit) {
      this.used += bytes
      return Promise.resolve(true)
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        bytes,
        grant: () => {
          clearTimeout(timer)
          resolve(true)
        }
      }
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1)
        // The ones behind it may fit.
        this.grantWaiting()
        resolve(false)
      }, timeoutMs)
      this.waiting.push(waiter)
    })
  }

  /** Records bytes beyond what was taken: the page turned out larger than its estimate. */
  takeMore (bytes: number): void {
    this.used += bytes
  }

  give (bytes: number): void {
    this.used -= bytes
    this.grantWaiting()
  }

  private grantWaiting (): void {
    for (let next = this.waiting[0]; next !== undefined && this.used + next.bytes <= this.limit; next = this.waiting[0]) {
      this.waiting.shift()
      this.used += next.bytes
      next.grant()
    }
  }
}
