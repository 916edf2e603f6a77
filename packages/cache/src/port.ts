// The cache port: a small key-value cache with TTLs whose deletes reach every process. This is
// go-chatty's cache port; its first use is "is user U a member of conversation C", which must
// stop answering yes in every api process as soon as the membership changes.

/**
 * Values are stored as JSON, whatever the adapter: a value read back is what
 * `JSON.parse(JSON.stringify(value))` gives (a Date comes back as a string). Values served from
 * a process-local copy are shared between callers and deep-frozen: treat them as read-only.
 * `undefined` is not a value (it means "absent"); `null` is, so negative answers can be cached.
 */
export interface Cache {
  /** The value, or undefined when absent or expired. */
  get<T = unknown>(key: string): Promise<T | undefined>
  /** One result per key, in the order of `keys`. */
  getMany<T = unknown>(keys: readonly string[]): Promise<Array<T | undefined>>
  /**
   * Stores a value for `ttlMs` milliseconds. This is cache-aside population: it does not tell
   * other processes, so only set what was just read from the source of truth, and call
   * `delete` whenever that truth changes.
   */
  set(key: string, value: unknown, ttlMs: number): Promise<void>
  /**
   * Removes keys here, from the shared store if there is one, and from every other process's
   * local copy (through the invalidation channel): after it resolves no process reads the old
   * value from the shared store, and other processes drop their local copies as soon as the
   * invalidation reaches them (one pub/sub delivery). Errors propagate: a failed delete means
   * old values may be served until their TTL.
   */
  delete(keys: string | readonly string[]): Promise<void>
  /**
   * Read-through: the cached value, else `load()`'s result, stored for `ttlMs` unless `load`
   * returns undefined. Concurrent calls for one key in a process share one load. A load that
   * overlaps a `delete` of its key (in any process) is returned to its callers but not stored,
   * so a value read before a change cannot outlive the change. Cache failures are reported to
   * the adapter's `onError` and fall back to `load()`: a broken cache never fails a caller.
   */
  getOrLoad<T>(key: string, load: () => Promise<T | undefined>, ttlMs: number): Promise<T | undefined>
  /**
   * Resolves once the cache is connected and listening for invalidations. Until then it is
   * correct but slower: local copies are neither served nor kept.
   */
  ready(): Promise<void>
  /** Releases connections and subscriptions the cache opened. */
  close(): Promise<void>
}

/**
 * Carries invalidations between processes for caches without a shared store (the in-memory
 * adapter). Without Redis the project wires it to Postgres LISTEN/NOTIFY. A process receives its
 * own publications too; that is harmless.
 */
export interface InvalidationChannel {
  publish(key: string): Promise<void> | void
  /**
   * Delivers every key published from now on to `listener`. `listener(null)` means messages
   * may have been missed (the channel reconnected): the receiver drops everything. Returns a
   * function that stops the delivery.
   */
  subscribe(listener: InvalidationListener): Promise<Unsubscribe> | Unsubscribe
}

export type InvalidationListener = (key: string | null) => void
export type Unsubscribe = () => Promise<void> | void

/** Where swallowed errors go (getOrLoad's fallbacks, connection errors). */
export type CacheErrorHandler = (error: Error) => void
