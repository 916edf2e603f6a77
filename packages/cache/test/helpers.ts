// Test helpers: the Redis the suite runs against, unique key prefixes, and waiting for
// something that happens through pub/sub.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'

/** REDIS_URL, else a Redis on 127.0.0.1:6379 if one answers, else undefined (tests skip). */
export async function findRedis (): Promise<string | undefined> {
  if (process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '') return process.env.REDIS_URL
  const url = 'redis://127.0.0.1:6379'
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await probe.ping()
    return url
  } catch {
    return undefined
  } finally {
    probe.disconnect()
  }
}

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

/** Polls `check` until it returns true; false if it never does within `timeoutMs`. */
export async function eventually (check: () => Promise<boolean> | boolean, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await sleep(5)
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
