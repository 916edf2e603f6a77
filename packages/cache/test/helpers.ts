// Test helpers: the Redis the suite runs against and a key prefix of the test's own.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
export { findRedis } from '@chatty/db/testing'

/** A key prefix of the test's own, and a raw client; the prefix's keys are deleted at teardown. */
export function redisFixture (t: { teardown (fn: () => Promise<void>): void }, url: string): { prefix: string, raw: Redis } {
  const prefix = `test:cache:${randomUUID()}:`
  const raw = new Redis(url)
  t.teardown(async () => {
    let cursor = '0'
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await raw.del(...keys)
      cursor = next
    } while (cursor !== '0')
    await raw.quit()
  })
  return { prefix, raw }
}
