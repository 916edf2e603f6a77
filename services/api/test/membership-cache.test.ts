// Membership checks are served from the cache (packages/chat/src/membership-cache.ts); a block
// made through one api process must stop sends checked by another, long before the cache TTL,
// and so must a removal or block whose invalidation could not reach Redis.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { SignJWT } from 'jose'
import { users, waitFor } from '@chatty/db/testing'
import { buildTestApp } from './helper.ts'
import { redisServerBinary, startRedisServer } from './process-helper.ts'

const { alice, bob, eve } = users
const SECRET = 'membership-secret-membership-secret'
const bearer = async (sub: string) => ({
  authorization: `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))}`
})
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

for (const backend of ['postgres', 'redis'] as const) {
  t.test(`a block made on one api process reaches another's cached check (${backend} invalidation)`, async (t) => {
    const extra = backend === 'redis'
      ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `chatty-test-${process.pid}-${Date.now()}:` }
      : {}
    // An hour-long TTL: only an invalidation can make the second process notice.
    const config = { MEMBERSHIP_CACHE_TTL_MS: 3_600_000, ...extra }
    const { app: first, dbUrl } = await buildTestApp(t, config)
    const { app: second } = await buildTestApp(t, config, dbUrl)
    await second.cache.ready()
    const chat = (await first.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json()
    const send = (body: string) => second.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { sender_id: bob, body } })
    t.equal((await send('cached now')).statusCode, 202, 'the second process has the membership cached')

    t.equal((await first.inject({ method: 'PUT', url: `/api/v1/users/${alice}/blocks/${bob}` })).statusCode, 204)
    const refused = await waitFor(async () => {
      const res = await send('after the block')
      return res.statusCode === 403 ? res : undefined
    }, { timeoutMs: 5000 })
    t.equal(refused.json().code, 'forbidden', 'the second process refuses once the invalidation arrives')

    t.equal((await first.inject({ method: 'DELETE', url: `/api/v1/users/${alice}/blocks/${bob}` })).statusCode, 204)
    await waitFor(async () => (await send('unblocked')).statusCode === 202 ? true : undefined, { timeoutMs: 5000 })
    t.pass('and accepts again after the unblock')
  })
}

const binary = redisServerBinary()
t.test('a member removed (or blocked) while Redis is down is refused on every api process after Redis comes back from its append-only file', { skip: binary === undefined ? 'no redis-server binary' : false, timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'chatty-aof-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const redis = await startRedisServer(t, binary!, { appendOnlyDir: dir })
  const config = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET, REDIS_URL: redis.url, REDIS_KEY_PREFIX: `chatty-aof-${randomUUID()}:`, MEMBERSHIP_CACHE_TTL_MS: 3_600_000 }
  const { app: first, dbUrl } = await buildTestApp(t, config)
  const { app: second } = await buildTestApp(t, config, dbUrl)
  const processes = [first, second]
  await Promise.all(processes.map((app) => app.cache.ready()))
  const group = (await first.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob, eve] }, headers: await bearer(alice) })).json().id as string
  const direct = (await first.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: await bearer(alice) })).json().id as string
  const read = async (app: FastifyInstance, chat: string) => app.inject({ url: `/api/v1/chat/${chat}/messages`, headers: await bearer(bob) })
  const send = async (app: FastifyInstance, chat: string) => app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { body: 'hello' }, headers: await bearer(bob) })
  // Warm: both processes have both conversations' members cached, in Redis and near.
  for (const app of processes) {
    t.equal((await read(app, group)).statusCode, 200)
    t.equal((await send(app, group)).statusCode, 202)
    t.equal((await send(app, direct)).statusCode, 202)
  }
  t.not(await first.cache.get(`members:${group}`), undefined, 'the group\'s members are in Redis')

  await redis.kill()
  const removed = await first.inject({ method: 'DELETE', url: `/api/v1/chat/${group}/participants/${bob}`, headers: await bearer(alice) })
  t.equal(removed.statusCode, 200, 'the removal commits while Redis is down')
  t.same(removed.json().participant_ids, [alice, eve].sort())
  t.equal((await second.inject({ method: 'PUT', url: `/api/v1/users/${alice}/blocks/${bob}`, headers: await bearer(alice) })).statusCode, 204, 'so does the block')

  await redis.restart()
  // Both processes talk to Redis again, which holds the member lists from before the changes.
  for (const app of processes) {
    await waitFor(async () => await app.cache.get(`members:${group}`).then(() => true, () => undefined), { timeoutMs: 20_000, intervalMs: 50 })
    await app.cache.ready()
  }
  t.not(await second.cache.get(`members:${group}`), undefined, 'Redis came back with the group\'s old members')
  for (const [name, app] of [['first', first], ['second', second]] as const) {
    const refusedRead = await read(app, group)
    t.equal(refusedRead.statusCode, 403, `${name} process: the removed member cannot read`)
    t.equal(refusedRead.json().code, 'forbidden')
    t.equal((await send(app, group)).statusCode, 403, `${name} process: nor send`)
    t.equal((await send(app, direct)).statusCode, 403, `${name} process: the blocked user cannot send to the blocker`)
    t.equal((await app.inject({ url: `/api/v1/chat/${group}/messages`, headers: await bearer(eve) })).statusCode, 200, `${name} process: the others still can`)
  }
})
