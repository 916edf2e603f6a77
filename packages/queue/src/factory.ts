// The one place that picks a queue adapter from configuration.
import { createPostgresQueueAdmin, createPostgresQueueClient, createPostgresQueueServer } from './adapters/postgres.ts'
import { createRedisQueueAdmin, createRedisQueueClient, createRedisQueueServer } from './adapters/redis.ts'
import { QueueConfigError } from './errors.ts'
import type { QueueAdmin, QueueClient, QueueServer } from './port.ts'
import type { QueueServerOptions } from './worker-pool.ts'

/**
 * Everything optional has a default (see QueueServerOptions and README.md). Clients only use
 * backend, dbUrl / redisUrl, redisPrefix and log; admins also use queues.
 */
export interface QueueConfig extends QueueServerOptions {
  /** QUEUE_BACKEND: postgres (graphile-worker) or redis (BullMQ). */
  backend: 'postgres' | 'redis'
  /** DB_URL; used by the postgres backend. */
  dbUrl: string
  /** REDIS_URL; required by the redis backend. */
  redisUrl?: string
  /** Prefix of the redis backend's keys [chatty:q]. */
  redisPrefix?: string
}

function redisOptions (config: QueueConfig) {
  if (config.redisUrl === undefined || config.redisUrl === '') throw new QueueConfigError('QUEUE_BACKEND=redis needs REDIS_URL')
  return { ...config, redisUrl: config.redisUrl, prefix: config.redisPrefix }
}

export function createQueueClient (config: QueueConfig): QueueClient {
  if (config.backend === 'redis') return createRedisQueueClient(redisOptions(config))
  return createPostgresQueueClient({ connectionString: config.dbUrl, log: config.log })
}

export function createQueueServer (config: QueueConfig): QueueServer {
  if (config.backend === 'redis') return createRedisQueueServer(redisOptions(config))
  return createPostgresQueueServer({ ...config, connectionString: config.dbUrl })
}

export function createQueueAdmin (config: QueueConfig): QueueAdmin {
  if (config.backend === 'redis') return createRedisQueueAdmin(redisOptions(config))
  return createPostgresQueueAdmin({ connectionString: config.dbUrl, queues: config.queues })
}
