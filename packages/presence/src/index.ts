export type { PresenceStore } from './port.ts'
export { createPresenceStore, type PresenceConfig } from './factory.ts'
export { createPostgresPresence, type PostgresPresenceOptions } from './adapters/postgres.ts'
export { createRedisPresence, type RedisPresenceOptions } from './adapters/redis.ts'
