// The one place that picks a bus adapter from configuration: Redis when a URL is given,
// otherwise Postgres, which every deployment already has.
import type { Bus, BusLog } from './port.ts'
import { createPostgresBus } from './adapters/postgres.ts'
import { createRedisBus } from './adapters/redis.ts'

export interface BusConfig {
  dbUrl: string
  redisUrl?: string
  /** Channel prefix; processes only hear buses of the same namespace. Defaults to "chatty". */
  namespace?: string
  log?: BusLog
}

export function createBus (config: BusConfig): Bus {
  if (config.redisUrl !== undefined && config.redisUrl !== '') {
    return createRedisBus({ url: config.redisUrl, namespace: config.namespace, log: config.log })
  }
  return createPostgresBus({ connectionString: config.dbUrl, namespace: config.namespace, log: config.log })
}
