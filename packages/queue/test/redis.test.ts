// The queue contract on the Redis (BullMQ) adapter. Uses REDIS_URL, else a Redis on
// 127.0.0.1:6379 if one answers; each test gets its own key prefix and deletes its keys.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { armLeakCheck } from '@chatty/db/testing'
import { runContractSuite } from './contract.ts'

const redisUrl = process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '' ? process.env.REDIS_URL : 'redis://127.0.0.1:6379'

async function redisAnswers (): Promise<boolean> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return (await redis.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

async function deleteKeys (prefix: string): Promise<void> {
  const redis = new Redis(redisUrl)
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== '0')
  } finally {
    await redis.quit()
  }
}

if (await redisAnswers()) {
  runContractSuite(t, async (t) => {
    const prefix = `chatty-test:${randomUUID()}`
    t.teardown(() => deleteKeys(prefix))
    return { config: { backend: 'redis', dbUrl: '', redisUrl, redisPrefix: prefix } }
  })
} else {
  t.test('the queue contract on Redis', { skip: `no Redis answers at ${redisUrl}` }, async () => {})
}

// Last, once every test is registered: arming it earlier lets tap end the file while idle.
armLeakCheck(t)
