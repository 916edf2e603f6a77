// Membership checks are served from the cache (packages/chat/src/membership-cache.ts); a block
// made through one api process must stop sends checked by another, long before the cache TTL.
import t from 'tap'
import { buildTestApp, users, waitFor } from './helper.ts'

const { alice, bob } = users
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
    }, 5000)
    t.equal(refused.json().code, 'forbidden', 'the second process refuses once the invalidation arrives')

    t.equal((await first.inject({ method: 'DELETE', url: `/api/v1/users/${alice}/blocks/${bob}` })).statusCode, 204)
    await waitFor(async () => (await send('unblocked')).statusCode === 202 ? true : undefined, 5000)
    t.pass('and accepts again after the unblock')
  })
}
