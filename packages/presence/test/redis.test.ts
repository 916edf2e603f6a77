import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { createRedisPresence } from '../src/index.ts'
import { presenceContract, TTL_MS } from './contract.ts'

/** REDIS_URL, else a Redis on 127.0.0.1:6379 if one answers. */
async function findRedis (): Promise<string | undefined> {
  if (process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '') return process.env.REDIS_URL
  const probe = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await probe.ping()
    return 'redis://127.0.0.1:6379'
  } catch {
    return undefined
  } finally {
    probe.disconnect()
  }
}

const url = await findRedis()
if (url === undefined) {
  t.plan(0, 'no Redis: set REDIS_URL or run one on 127.0.0.1:6379')
} else {
  // A prefix of this run's own, its keys deleted at the end.
  const keyPrefix = `test:presence:${randomUUID()}:`
  t.teardown(async () => {
    const raw = new Redis(url)
    const keys = await raw.keys(`${keyPrefix}*`)
    if (keys.length > 0) await raw.del(...keys)
    await raw.quit()
  })
  presenceContract(t, async (t) => {
    const store = createRedisPresence({ url, ttlMs: TTL_MS, keyPrefix })
    t.teardown(() => store.close())
    return store
  })
}
