// The one place that picks a cache adapter from configuration: Redis when REDIS_URL is set,
// else the in-memory LRU (with the caller's invalidation channel, if it has one).
import type { Cache, CacheErrorHandler, InvalidationChannel } from './port.ts'
import { createMemoryCache } from './adapters/memory.ts'
import { createRedisCache } from './adapters/redis.ts'

export interface CacheConfig {
  redisUrl?: string
  /** Namespaces Redis keys and invalidation messages. Default "chatty:cache:". */
  keyPrefix?: string
  /** Values kept in this process: the LRU's bound, or the Redis near-cache's (0 turns it off). Default 10,000. */
  maxEntries?: number
  /** Carries deletes to other processes when there is no Redis; ignored with redisUrl (Redis pub/sub does it). */
  channel?: InvalidationChannel
  /** Where errors the cache absorbs are reported (e.g. the Fastify logger). Default: process warnings. */
  onError?: CacheErrorHandler
}

export function createCache (config: CacheConfig = {}): Cache {
  const { redisUrl, keyPrefix, maxEntries, channel, onError } = config
  if (redisUrl !== undefined && redisUrl !== '') return createRedisCache({ url: redisUrl, keyPrefix, maxEntries, onError })
  return createMemoryCache({ keyPrefix, maxEntries, channel, onError })
}
