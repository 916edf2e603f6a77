// In-memory cache adapter: a bounded LRU with TTLs in this process. Other processes hear about
// deletes through an InvalidationChannel the caller wires up (Postgres LISTEN/NOTIFY when there
// is no Redis); without one, deletes reach only this process.
import type { Cache, CacheErrorHandler, InvalidationChannel, Unsubscribe } from '../port.ts'
import { LocalStore } from '../local-store.ts'
import { checkTtl, decodeValue, encodeValue, toKeyList } from '../values.ts'

export interface MemoryCacheOptions {
  /** Entries kept; the least recently used goes first. Default 10,000. */
  maxEntries?: number
  /** Namespaces this cache's keys on a channel shared with other caches. Default "chatty:cache:". */
  keyPrefix?: string
  channel?: InvalidationChannel
  onError?: CacheErrorHandler
}

export const DEFAULT_MAX_ENTRIES = 10_000
export const DEFAULT_KEY_PREFIX = 'chatty:cache:'

export function createMemoryCache (options: MemoryCacheOptions = {}): Cache {
  const { channel, keyPrefix = DEFAULT_KEY_PREFIX, onError = reportError } = options
  // With a channel, nothing is kept until the subscription is up: a value kept earlier could
  // miss the invalidation that should have dropped it.
  const store = new LocalStore(options.maxEntries ?? DEFAULT_MAX_ENTRIES, channel === undefined)

  const onInvalidation = (key: string | null) => {
    if (key === null) store.dropAll()
    else if (key.startsWith(keyPrefix)) store.drop(key.slice(keyPrefix.length))
  }
  const subscription: Promise<Unsubscribe | undefined> = channel === undefined
    ? Promise.resolve(undefined)
    : Promise.resolve()
      .then(() => channel.subscribe(onInvalidation))
      .then((unsubscribe) => {
        store.setLive(true)
        return unsubscribe
      })
  // ready() reports a failed subscription; this keeps it from also being an unhandled rejection.
  subscription.catch(onError)
  let closed = false

  return {
    async get<T> (key: string) {
      return store.get(key)?.value as T | undefined
    },

    async getMany<T> (keys: readonly string[]) {
      return keys.map((key) => store.get(key)?.value as T | undefined)
    },

    async set (key, value, ttlMs) {
      store.put(key, decodeValue(encodeValue(value)), checkTtl(ttlMs))
    },

    async delete (keys) {
      const list = toKeyList(keys)
      for (const key of list) store.drop(key)
      if (channel !== undefined) await Promise.all(list.map((key) => channel.publish(keyPrefix + key)))
    },

    async getOrLoad<T> (key: string, load: () => Promise<T | undefined>, ttlMs: number) {
      const ttl = checkTtl(ttlMs)
      return store.getOrShareLoad<T>(key, async (ticket) => {
        let loaded: T | undefined
        let keep = false
        try {
          loaded = await load()
        } finally {
          keep = store.finish(ticket)
        }
        if (loaded === undefined) return undefined
        const value = decodeValue(encodeValue(loaded)) as T
        if (keep) store.put(key, value, ttl)
        return value
      })
    },

    async ready () {
      await subscription
    },

    async close () {
      if (closed) return
      closed = true
      store.setLive(false)
      const unsubscribe = await subscription.catch(() => undefined)
      await unsubscribe?.()
    }
  }
}

function reportError (error: Error): void {
  process.emitWarning(error)
}
