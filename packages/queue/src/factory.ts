// The one place that picks a queue adapter from configuration.
import type { QueueClient, QueueServer } from './port.ts'
import { createPostgresQueueClient, createPostgresQueueServer } from './adapters/postgres.ts'

export interface QueueConfig {
  backend: 'postgres' | 'redis'
  dbUrl: string
  redisUrl?: string
  concurrency?: number
  log?: (level: string, message: string) => void
}

export function createQueueClient (config: QueueConfig): QueueClient {
  if (config.backend === 'redis') throw new Error('QUEUE_BACKEND=redis is not available yet')
  return createPostgresQueueClient({ connectionString: config.dbUrl, log: config.log })
}

export function createQueueServer (config: QueueConfig): QueueServer {
  if (config.backend === 'redis') throw new Error('QUEUE_BACKEND=redis is not available yet')
  return createPostgresQueueServer({ connectionString: config.dbUrl, concurrency: config.concurrency, log: config.log })
}
