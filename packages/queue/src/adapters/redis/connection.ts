// What the Redis queue's client, worker store and admin share: connection options and setup, the
// key prefix, job ids that name their queue, and the throughput keys.
import { Redis } from 'ioredis'

export const DEFAULT_REDIS_PREFIX = 'chatty:q'

export interface RedisConnectionOptions {
  redisUrl: string
  /** Key prefix of every key this adapter writes [chatty:q]; tests use one per test. */
  prefix?: string
  log?: (level: string, message: string) => void
}

/** How long a minute's throughput hash is kept. */
export const THROUGHPUT_TTL_SECONDS = 25 * 3600

// A job id names its queue too: BullMQ numbers jobs per queue. Queue names never contain ":".
export const toId = (queue: string, bullId: string | undefined) => `${queue}:${bullId ?? ''}`
export function parseId (id: string): { queue: string, bullId: string } | undefined {
  const at = id.indexOf(':')
  if (at <= 0 || at === id.length - 1) return undefined
  return { queue: id.slice(0, at), bullId: id.slice(at + 1) }
}

export const throughputKey = (prefix: string, minute: number) => `${prefix}:~throughput:${minute}`

export function connect (options: RedisConnectionOptions, blocking: boolean): Redis {
  // BullMQ requires maxRetriesPerRequest null where it blocks. Once connected, enqueues fail at
  // once while Redis is away (no offline queue): waiting out reconnect attempts would hang the
  // caller's request.
  const redis = new Redis(options.redisUrl, blocking ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 2 })
  if (!blocking) redis.once('ready', () => { redis.options.enableOfflineQueue = false })
  redis.on('error', (error) => options.log?.('error', `queue redis connection error: ${error.message}`))
  return redis
}
