// A token bucket: the per-socket frame rate limit (WS_RATE_LIMIT_PER_SEC, WS_RATE_LIMIT_BURST). A
// socket may send `burst` frames at once, then `perSecond` frames a second.

export class TokenBucket {
  readonly #perMs: number
  readonly #burst: number
  #tokens: number
  #at: number

  constructor (perSecond: number, burst: number, now = Date.now()) {
    this.#perMs = perSecond / 1000
    this.#burst = burst
    this.#tokens = burst
    this.#at = now
  }

  /** Takes one token: 0 when there was one, else how many milliseconds until there is. */
  take (now = Date.now()): number {
    this.#tokens = Math.min(this.#burst, this.#tokens + Math.max(0, now - this.#at) * this.#perMs)
    this.#at = now
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#perMs))
  }
}
