// Wake-ups for an idle Postgres queue worker: LISTEN notifications, local retry timers, and a flag
// for a notification that came before the worker started waiting.

/** Wake-ups for an idle worker: notifications, local timers, and a flag for one that came early. */
export class Wakeups {
  #early = false
  #waiters = new Set<() => void>()
  #timer: NodeJS.Timeout | undefined
  #timerAt = Infinity

  notify (): void {
    if (this.#waiters.size === 0) {
      this.#early = true
      return
    }
    for (const waiter of [...this.#waiters]) waiter()
  }

  /** Notifies at `at` (ms since epoch) unless an earlier timer is already set. */
  notifyAt (at: number): void {
    if (at >= this.#timerAt) return
    clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(() => {
      this.#timerAt = Infinity
      this.notify()
    }, Math.max(0, at - Date.now()))
    this.#timer.unref()
  }

  get early (): boolean {
    return this.#early
  }

  wait (ms: number, signal: AbortSignal): Promise<void> {
    if (this.#early || signal.aborted) {
      this.#early = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        this.#waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(0, ms))
      signal.addEventListener('abort', done, { once: true })
      this.#waiters.add(done)
    })
  }

  close (): void {
    clearTimeout(this.#timer)
    this.notify()
  }
}
