import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { armLeakCheck, sleep, waitFor } from '@chatty/db/testing'
import type { Cache, InvalidationChannel } from '../src/index.ts'
import { createCache, createMemoryCache, createRedisCache, type RedisCacheOptions } from '../src/index.ts'
import { findRedis, redisFixture } from './helpers.ts'

const url = await findRedis()
if (url === undefined) {
  t.plan(0, 'no Redis: set REDIS_URL or run one on 127.0.0.1:6379')
} else {
  run(url)
}

function run (url: string) {
  /** Caches sharing one fresh key prefix, as if each were a different process. */
  function setup (t: Test, options: Partial<RedisCacheOptions> = {}) {
    const { prefix, raw } = redisFixture(t, url)
    const caches: Cache[] = []
    t.teardown(async () => { await Promise.all(caches.map((cache) => cache.close())) })
    const open = async (extra: Partial<RedisCacheOptions> = {}) => {
      const cache = createRedisCache({ url, keyPrefix: prefix, ...options, ...extra })
      caches.push(cache)
      await cache.ready()
      return cache
    }
    return { prefix, raw, open }
  }

  t.test('a value lives in Redis for its TTL and then misses everywhere', async (t) => {
    const { prefix, raw, open } = setup(t)
    const one = await open()
    const two = await open()
    // A TTL long enough that a stalled test machine still reads the value before it expires.
    await one.set('member:c1:u1', true, 1000)
    const pttl = await raw.pttl(`${prefix}k:member:c1:u1`)
    t.ok(pttl > 0 && pttl <= 1000, `Redis holds it with its TTL (${pttl} ms left)`)
    t.equal(await two.get('member:c1:u1'), true, 'another process reads it')
    await sleep(1100)
    t.equal(await one.get('member:c1:u1'), undefined, 'the near copy expired with it')
    t.equal(await two.get('member:c1:u1'), undefined)
    t.equal(await raw.exists(`${prefix}k:member:c1:u1`), 0)
  })

  t.test('a delete in one process makes every other process miss, near copies included', async (t) => {
    const { prefix, raw, open } = setup(t)
    const one = await open()
    const two = await open()
    await one.set('member:c1:u1', true, 60_000)
    await one.set('member:c1:u2', true, 60_000)
    t.same(await two.getMany(['member:c1:u1', 'member:c1:u2']), [true, true])
    // Change Redis behind the caches' back: two keeps serving its near copy...
    await raw.set(`${prefix}k:member:c1:u1`, 'false')
    t.equal(await two.get('member:c1:u1'), true, 'two serves from its near-cache')
    // ...until a delete anywhere reaches it.
    await one.delete('member:c1:u1')
    t.equal(await raw.exists(`${prefix}k:member:c1:u1`), 0, 'gone from Redis when delete resolves')
    t.equal(await one.get('member:c1:u1'), undefined)
    t.ok(await waitFor(async () => await two.get('member:c1:u1') === undefined, 'two misses once the invalidation arrives', 1000), 'two misses once the invalidation arrives')
    t.equal(await two.get('member:c1:u2'), true, 'other keys are untouched')
  })

  t.test('getMany mixes near hits, Redis hits and misses in key order', async (t) => {
    const { open } = setup(t)
    const one = await open()
    const two = await open()
    await one.set('a', 'A', 60_000)
    await one.set('b', null, 60_000)
    await two.get('a')
    t.same(await two.getMany(['a', 'missing', 'b', 'a']), ['A', undefined, null, 'A'])
    t.same(await two.getMany([]), [])
  })

  t.test('the near-cache keeps at most maxEntries values; older ones are read from Redis again', async (t) => {
    const { prefix, raw, open } = setup(t)
    const cache = await open({ maxEntries: 2 })
    for (const key of ['a', 'b', 'c']) await cache.set(key, `${key}1`, 60_000)
    for (const key of ['a', 'b', 'c']) await raw.set(`${prefix}k:${key}`, JSON.stringify(`${key}2`), 'PX', 60_000)
    t.same(await cache.getMany(['c', 'b', 'a']), ['c1', 'b1', 'a2'], 'a was evicted, so Redis answers for it')
  })

  t.test('with maxEntries 0 every read goes to Redis', async (t) => {
    const { prefix, raw, open } = setup(t)
    const cache = await open({ maxEntries: 0 })
    await cache.set('a', 1, 60_000)
    await raw.set(`${prefix}k:a`, '2')
    t.equal(await cache.get('a'), 2)
    t.equal(await cache.getOrLoad('b', async () => 3, 60_000), 3)
    t.equal(await raw.get(`${prefix}k:b`), '3')
  })

  t.test('getOrLoad: one load per process, and other processes find the stored value', async (t) => {
    const { open } = setup(t)
    const one = await open()
    const two = await open()
    let loads = 0
    const load = async () => { loads++; await sleep(20); return ['u1', 'u2'] }
    const results = await Promise.all(Array.from({ length: 10 }, () => one.getOrLoad('members:c1', load, 60_000)))
    t.equal(loads, 1)
    t.same(results[9], ['u1', 'u2'])
    t.same(await two.getOrLoad('members:c1', load, 60_000), ['u1', 'u2'])
    t.equal(loads, 1, 'the second process did not load')
  })

  t.test('a load that overlaps a delete in another process is not stored anywhere', async (t) => {
    const { prefix, raw, open } = setup(t)
    const one = await open()
    const two = await open()
    let loading!: () => void
    const started = new Promise<void>((resolve) => { loading = resolve })
    let release!: () => void
    const stale = one.getOrLoad('member:c1:u1', () => {
      loading()
      return new Promise<boolean>((resolve) => { release = () => resolve(true) })
    }, 60_000)
    await started
    await two.delete('member:c1:u1') // the membership was removed after one read the old answer
    release()
    t.equal(await stale, true, 'the caller still gets what it read')
    t.equal(await raw.exists(`${prefix}k:member:c1:u1`), 0, 'but Redis does not keep it')
    t.equal(await one.get('member:c1:u1'), undefined, 'nor does the near-cache')
    t.equal(await one.getOrLoad('member:c1:u1', async () => false, 60_000), false)
    t.equal(await two.get('member:c1:u1'), false, 'the next load is stored as usual')
  })

  t.test('a process whose subscriber reconnects forgets its near copies (it may have missed invalidations) and hears them again', async (t) => {
    const { prefix, raw, open } = setup(t)
    const one = await open()
    const name = `${prefix}two`
    const two = await open({ connectionName: name })
    await one.set('k', 'old', 60_000)
    t.equal(await two.get('k'), 'old')
    const subscriberId = async () => {
      const clients = await raw.client('LIST') as string
      const line = clients.split('\n').find((l) => l.includes(` name=${name}:sub `) && / sub=1 /.test(l))
      return line === undefined ? undefined : /^id=(\d+)/.exec(line)![1]
    }
    const id = await subscriberId()
    t.ok(id, 'the subscriber is connected')
    await raw.client('KILL', 'ID', id!)
    // An invalidation sent now is lost to two; it must not keep serving "old".
    await raw.set(`${prefix}k:k`, JSON.stringify('new'), 'PX', 60_000)
    await one.delete('other')
    t.ok(await waitFor(async () => await two.get('k') === 'new', 'two no longer serves its old near copy', 2000), 'two no longer serves its old near copy')
    t.ok(await waitFor(async () => { const again = await subscriberId(); return again !== undefined && again !== id }, 'two resubscribed', 2000), 'two resubscribed')
    t.equal(await two.get('k'), 'new')
    await one.delete('k')
    t.ok(await waitFor(async () => await two.get('k') === undefined, 'invalidations reach two again', 1000), 'invalidations reach two again')
  })

  t.test('when Redis is unreachable getOrLoad falls back to loading and reports the error', async (t) => {
    const errors: Error[] = []
    const cache = createRedisCache({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 200, onError: (error) => errors.push(error) })
    t.teardown(() => cache.close())
    t.equal(await cache.getOrLoad('k', async () => 'from the database', 60_000), 'from the database')
    t.ok(errors.length > 0, 'the failure was reported')
    await t.rejects(cache.get('k'), 'plain reads say what happened')
    await t.rejects(cache.delete('k'), 'a delete that did not happen is an error')
  })

  t.test('in-memory caches in two processes can use Redis pub/sub as their invalidation channel', async (t) => {
    const { prefix } = redisFixture(t, url)
    const channelName = `${prefix}channel`
    const connections: Redis[] = []
    t.teardown(() => Promise.all(connections.map((c) => c.quit())).then(() => {}))
    // What a caller wires up; without Redis it would be LISTEN/NOTIFY.
    const redisChannel = (): InvalidationChannel => {
      const publisher = new Redis(url)
      const subscriber = new Redis(url)
      connections.push(publisher, subscriber)
      return {
        async publish (key) { await publisher.publish(channelName, key) },
        async subscribe (listener) {
          subscriber.on('message', (_channel: string, key: string) => listener(key))
          await subscriber.subscribe(channelName)
          return async () => { await subscriber.unsubscribe(channelName) }
        }
      }
    }
    const one = createMemoryCache({ channel: redisChannel() })
    const two = createMemoryCache({ channel: redisChannel() })
    t.teardown(async () => { await one.close(); await two.close() })
    await Promise.all([one.ready(), two.ready()])
    await one.set('member:c1:u1', true, 60_000)
    await two.set('member:c1:u1', true, 60_000)
    await one.delete('member:c1:u1')
    t.ok(await waitFor(async () => await two.get('member:c1:u1') === undefined, 'the invalidation to arrive', 1000))
  })

  t.test('with redisUrl the factory builds the Redis cache under the given prefix', async (t) => {
    const { prefix, raw } = redisFixture(t, url)
    const cache = createCache({ redisUrl: url, keyPrefix: prefix })
    t.teardown(() => cache.close())
    await cache.set('member:c1:u1', { role: 1 }, 60_000)
    t.equal(await raw.get(`${prefix}k:member:c1:u1`), '{"role":1}')
  })
}

// Last, once every test is registered: arming it earlier lets tap end the file while idle.
armLeakCheck(t)
