// The Redis the suite runs against, found without a client library so every package can ask.
import { randomUUID } from 'node:crypto'
import { connect } from 'node:net'

function answersPing (url: string, timeoutMs: number): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port === '' ? 6379 : port) })
    const done = (answer: boolean) => { socket.destroy(); resolve(answer) }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/** REDIS_URL, else a Redis on 127.0.0.1:6379 if one answers, else undefined (tests skip). */
export async function findRedis (): Promise<string | undefined> {
  if (process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '') return process.env.REDIS_URL
  const url = 'redis://127.0.0.1:6379'
  return await answersPing(url, 500) ? url : undefined
}

/** The settings that point a service at Redis (bus, cache, presence), under a key prefix of its own. */
export type RedisSettings = { REDIS_URL?: string, REDIS_KEY_PREFIX?: string }

/** The part of a tap Test that testWithAndWithoutRedis uses. */
interface Registers<T> { test (name: string, options: { skip: string | false }, fn: (t: T) => Promise<void>): unknown }

/**
 * Registers a scenario as two tests: without Redis (`{}`: Postgres for everything), then with
 * REDIS_URL and a key prefix of its own, skipped where no Redis answers.
 */
export async function testWithAndWithoutRedis<T> (t: Registers<T>, names: { postgres: string, redis: string }, scenario: (t: T, settings: RedisSettings) => Promise<void>): Promise<void> {
  t.test(names.postgres, { skip: false }, (t) => scenario(t, {}))
  const redisUrl = await findRedis()
  t.test(names.redis, { skip: redisUrl === undefined ? 'no Redis' : false }, (t) => scenario(t, { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `test:${randomUUID()}:` }))
}
