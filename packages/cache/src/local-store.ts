// The process-local part of every cache: a bounded LRU with TTLs, plus the bookkeeping that keeps
// an invalidation from being undone by a read that was already in flight when it arrived.
// The in-memory adapter is this store and a channel; the Redis adapter uses it as its near-cache.

interface Entry {
  value: unknown
  expiresAt: number
}

interface PendingReads {
  generation: number
  readers: number
}

/** Taken before reading a value from elsewhere; `finish` says whether it may still be kept. */
export interface ReadTicket {
  readonly key: string
  readonly generation: number
  readonly epoch: number
  readonly pending: PendingReads
}

export class LocalStore {
  readonly maxEntries: number
  /** Whether invalidations are reaching this process; while false nothing is served or kept. */
  #live: boolean
  // Map iteration order is insertion order: the first entry is the least recently used.
  #entries = new Map<string, Entry>()
  #pending = new Map<string, PendingReads>()
  #loads = new Map<string, Promise<unknown>>()
  #epoch = 0

  constructor (maxEntries: number, live: boolean) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0) throw new RangeError(`maxEntries must be a non-negative integer, got ${maxEntries}`)
    this.maxEntries = maxEntries
    this.#live = live
  }

  get size (): number {
    return this.#entries.size
  }

  get live (): boolean {
    return this.#live
  }

  /** Going live or dead forgets everything: what was kept may have missed invalidations. */
  setLive (live: boolean): void {
    this.dropAll()
    this.#live = live
  }

  /** The entry (so a cached null is told apart from a miss), refreshed as most recently used. */
  get (key: string): { value: unknown } | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    this.#entries.delete(key)
    if (entry.expiresAt <= performance.now()) return undefined
    this.#entries.set(key, entry)
    return entry
  }

  put (key: string, value: unknown, ttlMs: number): void {
    if (!this.#live || this.maxEntries === 0) return
    this.#entries.delete(key)
    this.#entries.set(key, { value, expiresAt: performance.now() + ttlMs })
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
  }

  begin (key: string): ReadTicket {
    let pending = this.#pending.get(key)
    if (pending === undefined) {
      pending = { generation: 0, readers: 0 }
      this.#pending.set(key, pending)
    }
    pending.readers++
    return { key, generation: pending.generation, epoch: this.#epoch, pending }
  }

  /**
   * Ends a read. True when nothing invalidated its key since `begin` (and the store is live), so
   * the value read may be kept; call `put` before the next await.
   */
  finish (ticket: ReadTicket): boolean {
    const { pending } = ticket
    if (--pending.readers === 0 && this.#pending.get(ticket.key) === pending) this.#pending.delete(ticket.key)
    return this.#live && pending.generation === ticket.generation && this.#epoch === ticket.epoch
  }

  /** Forgets a key and spoils reads and loads of it that are in flight. */
  drop (key: string): void {
    this.#entries.delete(key)
    this.#loads.delete(key)
    const pending = this.#pending.get(key)
    if (pending !== undefined) pending.generation++
  }

  dropAll (): void {
    this.#entries.clear()
    this.#loads.clear()
    this.#epoch++
  }

  /**
   * The kept value of a key, else `load` shared with concurrent callers (see shareLoad) and given
   * the ticket it reads under: how every adapter's getOrLoad starts.
   */
  getOrShareLoad<T> (key: string, load: (ticket: ReadTicket) => Promise<T | undefined>): Promise<T | undefined> {
    const hit = this.get(key)
    if (hit !== undefined) return Promise.resolve(hit.value as T)
    return this.shareLoad(key, () => load(this.begin(key)))
  }

  /** Concurrent loads of one key share the first one's promise, until the key is dropped. */
  shareLoad<T> (key: string, load: () => Promise<T>): Promise<T> {
    const running = this.#loads.get(key)
    if (running !== undefined) return running as Promise<T>
    const promise = load().finally(() => {
      if (this.#loads.get(key) === promise) this.#loads.delete(key)
    })
    this.#loads.set(key, promise)
    return promise
  }
}
