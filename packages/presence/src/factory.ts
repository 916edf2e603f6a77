// The one place that picks a presence adapter: Redis when REDIS_URL is set (as the bus does),
// else the Postgres tables every deployment already has.
import type { Kysely } from 'kysely'
import type { Database } from '@chatty/db'
import type { PresenceStore } from './port.ts'
import { createPostgresPresence } from './adapters/postgres.ts'
import { createRedisPresence } from './adapters/redis.ts'

export interface PresenceConfig {
  db: Kysely<Database>
  redisUrl?: string
  /** How long a heartbeat keeps a process alive (PRESENCE_TTL_MS). */
  ttlMs: number
  /** Redis key prefix; default "chatty:presence:". */
  keyPrefix?: string
  onError?: (error: Error) => void
}

export function createPresenceStore (config: PresenceConfig): PresenceStore {
  if (config.redisUrl !== undefined && config.redisUrl !== '') {
    return createRedisPresence({ url: config.redisUrl, ttlMs: config.ttlMs, keyPrefix: config.keyPrefix, onError: config.onError })
  }
  return createPostgresPresence({ db: config.db, ttlMs: config.ttlMs })
}
