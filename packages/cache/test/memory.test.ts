import t from 'tap'
import { armLeakCheck, sleep, waitFor } from '@chatty/db/testing'
import type { InvalidationChannel, InvalidationListener } from '../src/index.ts'
import { createCache, createMemoryCache } from '../src/index.ts'

/** An in-process stand-in for LISTEN/NOTIFY: every subscriber, the publisher included, hears each key a tick later. */
function fakeChannel (): InvalidationChannel & { reset (): void, subscribers: Set<InvalidationListener> } {
  const subscribers = new Set<InvalidationListener>()
  return {
    subscribers,
    publish (key) {
      setImmediate(() => { for (const listener of subscribers) listener(key) })
    },
    async subscribe (listener) {
      await sleep(1)
      subscribers.add(listener)
      return () => { subscribers.delete(listener) }
    },
    reset () {
      for (const listener of subscribers) listener(null)
    }
  }
}

t.test('a value is served until its TTL passes, then it is a miss', async (t) => {
  const cache = createMemoryCache()
  t.teardown(() => cache.close())
  // A TTL long enough that a stalled test machine still reads the value before it expires.
  await cache.set('member:c1:u1', true, 1000)
  t.equal(await cache.get('member:c1:u1'), true)
  await sleep(1100)
  t.equal(await cache.get('member:c1:u1'), undefined)
})

t.test('delete removes values; a cached null is a hit, an absent key a miss', async (t) => {
  const cache = createMemoryCache()
  t.teardown(() => cache.close())
  await cache.set('a', null, 10_000)
  await cache.set('b', { ids: ['x', 'y'] }, 10_000)
  await cache.set('c', 3, 10_000)
  t.same(await cache.getMany(['a', 'b', 'c', 'nope']), [null, { ids: ['x', 'y'] }, 3, undefined])
  await cache.delete(['a', 'b'])
  await cache.delete('c')
  t.same(await cache.getMany(['a', 'b', 'c']), [undefined, undefined, undefined])
})

t.test('the cache keeps at most maxEntries values and drops the least recently used first', async (t) => {
  const cache = createMemoryCache({ maxEntries: 3 })
  t.teardown(() => cache.close())
  for (const key of ['a', 'b', 'c']) await cache.set(key, key, 10_000)
  t.equal(await cache.get('a'), 'a', 'reading a makes b the least recently used')
  await cache.set('d', 'd', 10_000)
  t.same(await cache.getMany(['a', 'b', 'c', 'd']), ['a', undefined, 'c', 'd'])
  for (let i = 0; i < 100; i++) await cache.set(`k${i}`, i, 10_000)
  const kept = await cache.getMany(Array.from({ length: 100 }, (_, i) => `k${i}`))
  t.same(kept.filter((v) => v !== undefined), [97, 98, 99])
})

t.test('values come back as JSON and frozen, so no caller can change what another reads', async (t) => {
  const cache = createMemoryCache()
  t.teardown(() => cache.close())
  const original = { at: new Date('2026-01-02T03:04:05.000Z'), ids: ['x'], skip: undefined }
  await cache.set('v', original, 10_000)
  original.ids.push('changed after set')
  const value = await cache.get<{ at: string, ids: string[] }>('v')
  t.same(value, { at: '2026-01-02T03:04:05.000Z', ids: ['x'] })
  t.throws(() => { value!.ids.push('y') }, TypeError)
  await t.rejects(cache.set('u', undefined, 1000), TypeError)
  await t.rejects(cache.set('f', () => 1, 1000), TypeError)
  await t.rejects(cache.set('t', 1, 0), RangeError)
  await t.rejects(cache.set('t', 1, Number.NaN), RangeError)
})

t.test('getOrLoad loads once for concurrent callers and serves the stored value afterwards', async (t) => {
  const cache = createMemoryCache()
  t.teardown(() => cache.close())
  let loads = 0
  const load = async () => { loads++; await sleep(20); return { member: true } }
  const results = await Promise.all(Array.from({ length: 10 }, () => cache.getOrLoad('m', load, 10_000)))
  t.equal(loads, 1)
  t.ok(results.every((r) => r === results[0]), 'every caller got the same value')
  t.same(await cache.getOrLoad('m', load, 10_000), { member: true })
  t.equal(loads, 1)
  t.equal(await cache.getOrLoad('none', async () => undefined, 10_000), undefined)
  t.equal(await cache.get('none'), undefined, 'undefined from the loader is not stored')
  await t.rejects(cache.getOrLoad('boom', async () => { throw new Error('db down') }, 10_000), { message: 'db down' })
  t.equal(await cache.getOrLoad('boom', async () => 'ok', 10_000), 'ok', 'a failed load is not remembered')
})

t.test('a load that overlaps a delete of its key answers its callers but is not stored', async (t) => {
  const cache = createMemoryCache()
  t.teardown(() => cache.close())
  let release!: () => void
  const stale = cache.getOrLoad('member:c1:u1', () => new Promise<boolean>((resolve) => { release = () => resolve(true) }), 10_000)
  await sleep(1)
  await cache.delete('member:c1:u1') // the membership was removed while the old answer was being read
  const fresh = cache.getOrLoad('member:c1:u1', async () => false, 10_000)
  release()
  t.equal(await stale, true)
  t.equal(await fresh, false, 'a caller after the delete does not join the stale load')
  t.equal(await cache.get('member:c1:u1'), false)
})

t.test('two caches as two processes: a delete in one makes the other miss', async (t) => {
  const channel = fakeChannel()
  const one = createMemoryCache({ channel })
  const two = createMemoryCache({ channel })
  t.teardown(async () => { await one.close(); await two.close() })
  await Promise.all([one.ready(), two.ready()])
  await one.set('member:c1:u1', true, 10_000)
  await two.set('member:c1:u1', true, 10_000)
  await two.set('member:c1:u2', true, 10_000)
  await one.delete('member:c1:u1')
  t.equal(await one.get('member:c1:u1'), undefined, 'the deleting process misses at once')
  t.ok(await waitFor(async () => await two.get('member:c1:u1') === undefined, 'the other misses once the message arrives', 2000), 'the other misses once the message arrives')
  t.equal(await two.get('member:c1:u2'), true, 'other keys stay')
  channel.reset()
  t.equal(await two.get('member:c1:u2'), undefined, 'a channel that may have lost messages empties the cache')
  await two.close()
  t.equal(channel.subscribers.size, 1, 'close unsubscribes')
})

t.test('keys are namespaced on a shared channel', async (t) => {
  const channel = fakeChannel()
  const members = createMemoryCache({ channel, keyPrefix: 'members:' })
  const profiles = createMemoryCache({ channel, keyPrefix: 'profiles:' })
  t.teardown(async () => { await members.close(); await profiles.close() })
  await Promise.all([members.ready(), profiles.ready()])
  await members.set('u1', true, 10_000)
  await profiles.set('u1', { name: 'Ann' }, 10_000)
  await members.delete('u1')
  await sleep(5)
  t.same(await profiles.get('u1'), { name: 'Ann' })
})

t.test('with a channel, nothing is kept until the subscription is up', async (t) => {
  let subscribe!: () => void
  const channel: InvalidationChannel = {
    publish () {},
    subscribe: () => new Promise((resolve) => { subscribe = () => resolve(() => {}) })
  }
  const cache = createMemoryCache({ channel })
  t.teardown(() => cache.close())
  await cache.set('k', 1, 10_000)
  t.equal(await cache.get('k'), undefined)
  t.equal(await cache.getOrLoad('k', async () => 2, 10_000), 2, 'loads still answer')
  await sleep(1)
  subscribe()
  await cache.ready()
  await cache.set('k', 3, 10_000)
  t.equal(await cache.get('k'), 3)
})

t.test('without redisUrl the factory builds the in-memory cache', async (t) => {
  const cache = createCache({ maxEntries: 1 })
  t.teardown(() => cache.close())
  await cache.ready()
  await cache.set('a', 1, 10_000)
  await cache.set('b', 2, 10_000)
  t.same(await cache.getMany(['a', 'b']), [undefined, 2])
})

// Last, once every test is registered: arming it earlier lets tap end the file while idle.
armLeakCheck(t)
