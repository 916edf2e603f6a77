// Redis cache adapter (ioredis): values live in Redis with their TTL, shared by every process.
// An optional near-cache keeps hot values in this process; a delete publishes the key on a
// Redis channel and every process drops its near copy when the message arrives.
//
// Two races are closed here rather than left to TTLs, because the first user is membership:
// - a loader that read the database before a change must not store its answer after the
//   change's delete: deletes bump a per-key fence in Redis and a loader stores only if the fence
//   it saw before loading is unchanged (one Lua script);
// - a near copy read from Redis just before a delete must not be kept after the delete's
//   message: LocalStore's read tickets. Messages lost while the subscriber is disconnected are
//   covered by serving no near copies until it has resubscribed, and then starting empty.
import { Redis, type RedisOptions } from 'ioredis'
import type { Cache, CacheErrorHandler } from '../port.ts'
import { LocalStore } from '../local-store.ts'
import { checkTtl, decodeValue, encodeValue, toKeyList } from '../values.ts'
import { DEFAULT_KEY_PREFIX, DEFAULT_MAX_ENTRIES } from './memory.ts'

export interface RedisCacheOptions {
  /** redis:// or rediss:// URL. */
  url: string
  /** Prefix of every Redis key and of the invalidation channel. Default "chatty:cache:". */
  keyPrefix?: string
  /** Near-cache entries kept in this process (least recently used go first); 0 turns it off. Default 10,000. */
  maxEntries?: number
  /** A Redis command that gets no answer within this fails (and getOrLoad falls back to loading). Default 2000. */
  commandTimeoutMs?: number
  /** CLIENT SETNAME of the connections ("<name>" and "<name>:sub"), to find them in CLIENT LIST. */
  connectionName?: string
  onError?: CacheErrorHandler
}

/** Longer than any load takes: a fence that expires mid-load could let a stale value in. */
const FENCE_TTL_MS = 10 * 60_000

// KEYS: value key, fence key. ARGV: fence seen before loading ('' for none), JSON, TTL ms.
const SET_IF_FENCE = `
local fence = redis.call('GET', KEYS[2]) or ''
if fence ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`

interface FencedRedis extends Redis {
  cacheSetIfFence (valueKey: string, fenceKey: string, fence: string, json: string, ttlMs: number): Promise<number>
}

export function createRedisCache (options: RedisCacheOptions): Cache {
  const { keyPrefix = DEFAULT_KEY_PREFIX, onError = reportError, connectionName } = options
  const valueKey = (key: string) => `${keyPrefix}k:${key}`
  const fenceKey = (key: string) => `${keyPrefix}fence:${key}`
  const channel = `${keyPrefix}invalidations`
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
  const connection: RedisOptions = {
    // A cache that waits out a Redis outage holds requests hostage: fail fast, load instead.
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 2000
  }

  const client = new Redis(options.url, { ...connection, connectionName }) as FencedRedis
  client.defineCommand('cacheSetIfFence', { numberOfKeys: 2, lua: SET_IF_FENCE })
  client.on('error', onError)
  // Once connected, no offline queue: while Redis is away a command fails at once (and the value
  // is loaded) rather than after a reconnect attempt. Before the first connect, commands wait.
  client.once('ready', () => { client.options.enableOfflineQueue = false })

  const near = new LocalStore(maxEntries, false)
  let subscriber: Redis | undefined
  let subscribed: Promise<void> = Promise.resolve()
  if (maxEntries > 0) {
    // Resubscribing is done here, not by ioredis, so the near-cache knows when it is safe again.
    subscriber = new Redis(options.url, {
      autoResubscribe: false,
      maxRetriesPerRequest: null,
      connectionName: connectionName === undefined ? undefined : `${connectionName}:sub`
    })
    const sub = subscriber
    sub.on('error', onError)
    sub.on('message', (from: string, key: string) => {
      if (from === channel) near.drop(key)
    })
    sub.on('close', () => near.setLive(false))
    let markSubscribed: () => void
    subscribed = new Promise((resolve) => { markSubscribed = resolve })
    sub.on('ready', () => {
      sub.subscribe(channel).then(() => {
        near.setLive(true)
        markSubscribed()
      }, onError)
    })
  }
  const connected = new Promise<void>((resolve) => {
    if (client.status === 'ready') resolve()
    else client.once('ready', () => resolve())
  })
  let closed = false

  async function readWithTtl (keys: readonly string[]): Promise<Array<{ json: string | null, pttl: number }>> {
    const pipeline = client.pipeline()
    for (const key of keys) pipeline.get(valueKey(key)).pttl(valueKey(key))
    const replies = await pipeline.exec()
    return keys.map((_, i) => ({
      json: reply(replies, 2 * i) as string | null,
      pttl: reply(replies, 2 * i + 1) as number
    }))
  }

  async function readMany<T> (keys: readonly string[]): Promise<Array<T | undefined>> {
    const results: Array<T | undefined> = new Array(keys.length)
    const missing: number[] = []
    keys.forEach((key, i) => {
      const hit = near.get(key)
      if (hit === undefined) missing.push(i)
      else results[i] = hit.value as T
    })
    if (missing.length === 0) return results
    const missingKeys = missing.map((i) => keys[i]!)
    if (maxEntries === 0) {
      const values = await client.mget(missingKeys.map(valueKey))
      missing.forEach((at, j) => { results[at] = fromJson(values[j] ?? null) as T | undefined })
      return results
    }
    const tickets = missingKeys.map((key) => near.begin(key))
    let read: Array<{ json: string | null, pttl: number }>
    try {
      read = await readWithTtl(missingKeys)
    } catch (error) {
      for (const ticket of tickets) near.finish(ticket)
      throw error
    }
    missing.forEach((at, j) => {
      const { json, pttl } = read[j]!
      const value = fromJson(json)
      if (near.finish(tickets[j]!) && value !== undefined && pttl > 0) near.put(missingKeys[j]!, value, pttl)
      results[at] = value as T | undefined
    })
    return results
  }

  return {
    async get<T> (key: string) {
      return (await readMany<T>([key]))[0]
    },

    getMany: readMany,

    async set (key, value, ttlMs) {
      const json = encodeValue(value)
      const ttl = checkTtl(ttlMs)
      const ticket = near.begin(key)
      let keep = false
      try {
        await client.set(valueKey(key), json, 'PX', ttl)
      } finally {
        keep = near.finish(ticket)
      }
      if (keep) near.put(key, decodeValue(json), ttl)
    },

    async delete (keys) {
      const list = toKeyList(keys)
      if (list.length === 0) return
      for (const key of list) near.drop(key)
      // One transaction, the publish last: a process that hears the message and rereads finds
      // the value gone and the fence moved.
      const transaction = client.multi()
      for (const key of list) transaction.incr(fenceKey(key)).pexpire(fenceKey(key), FENCE_TTL_MS).del(valueKey(key))
      for (const key of list) transaction.publish(channel, key)
      const replies = await transaction.exec()
      for (let i = 0; i < list.length * 4; i++) reply(replies, i)
    },

    async getOrLoad<T> (key: string, load: () => Promise<T | undefined>, ttlMs: number) {
      const ttl = checkTtl(ttlMs)
      return near.getOrShareLoad<T>(key, async (ticket) => {
        let finished = false
        const finish = () => {
          finished = true
          return near.finish(ticket)
        }
        try {
          let fence: string | undefined
          try {
            const replies = await client.pipeline().get(valueKey(key)).pttl(valueKey(key)).get(fenceKey(key)).exec()
            const json = reply(replies, 0) as string | null
            if (json !== null) {
              const value = decodeValue(json)
              const pttl = reply(replies, 1) as number
              if (finish() && pttl > 0) near.put(key, value, pttl)
              return value as T
            }
            fence = (reply(replies, 2) as string | null) ?? ''
          } catch (error) {
            onError(error as Error)
          }
          const loaded = await load()
          if (loaded === undefined) return undefined
          const json = encodeValue(loaded)
          let stored = false
          if (fence !== undefined) {
            try {
              stored = await client.cacheSetIfFence(valueKey(key), fenceKey(key), fence, json, ttl) === 1
            } catch (error) {
              onError(error as Error)
            }
          }
          const value = decodeValue(json)
          if (finish() && stored) near.put(key, value, ttl)
          return value as T
        } finally {
          if (!finished) near.finish(ticket)
        }
      })
    },

    async ready () {
      await Promise.all([connected, subscribed])
    },

    async close () {
      if (closed) return
      closed = true
      near.setLive(false)
      await Promise.all([disconnect(client), subscriber === undefined ? undefined : disconnect(subscriber)])
    }
  }
}

/** A pipeline or transaction reply, or its error thrown. */
function reply (replies: Array<[Error | null, unknown]> | null, index: number): unknown {
  const entry = replies?.[index]
  if (entry === undefined) throw new Error('Redis transaction was discarded')
  if (entry[0] !== null) throw entry[0]
  return entry[1]
}

function fromJson (json: string | null): unknown {
  return json === null ? undefined : decodeValue(json)
}

async function disconnect (redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect())
  } else {
    redis.disconnect()
  }
}

function reportError (error: Error): void {
  process.emitWarning(error)
}
