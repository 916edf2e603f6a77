// `fastify.cache`: the cache port (packages/cache), Redis when REDIS_URL is set, else an LRU in
// this process whose deletes reach the other processes through Postgres NOTIFY. And
// `fastify.membership`, its first user, handed to the chat core (app.ts): sends, joins and reads
// check membership against it instead of a query each (packages/chat/src/membership-cache.ts),
// each checked against the conversation's membership version; MEMBERSHIP_CACHE_TTL_MS=0 turns
// that off (null).
import fp from 'fastify-plugin'
import { createCache, createMemoryCache, createPostgresInvalidationChannel, type Cache } from '@chatty/cache'
import { createMembershipCache, MEMBERSHIP_CHANNEL, type MembershipCache } from '@chatty/chat'

declare module 'fastify' {
  interface FastifyInstance {
    cache: Cache
    membership: MembershipCache | null
  }
}

export default fp(async (fastify) => {
  const { config } = fastify
  const onError = (err: Error) => fastify.log.warn({ err, cache: true }, 'cache error')
  const channel = config.REDIS_URL === undefined ? createPostgresInvalidationChannel({ connectionString: config.DB_URL, onError }) : undefined
  const cache = createCache({ redisUrl: config.REDIS_URL, keyPrefix: `${config.REDIS_KEY_PREFIX}cache:`, channel, onError })
  fastify.decorate('cache', cache)
  // Conversations' membership versions, kept here and dropped by the NOTIFY that every
  // membership change sends in its transaction: cached member lists are checked against them, so
  // one that missed its invalidation (Redis unreachable at the time) is never used.
  const cached = config.MEMBERSHIP_CACHE_TTL_MS > 0
  const versionChannel = cached ? createPostgresInvalidationChannel({ connectionString: config.DB_URL, channel: MEMBERSHIP_CHANNEL, onError }) : undefined
  const versions = versionChannel === undefined ? undefined : createMemoryCache({ channel: versionChannel, keyPrefix: '', onError })
  fastify.decorate('membership', cached ? createMembershipCache(cache, { ttlMs: config.MEMBERSHIP_CACHE_TTL_MS, versions }) : null)
  fastify.addHook('onClose', async () => {
    // The channels first: a cache still waiting for its subscription (Postgres away) stops waiting.
    await Promise.all([channel?.close(), versionChannel?.close()])
    await Promise.all([cache.close(), versions?.close()])
  })
}, { name: 'cache', dependencies: ['config'] })
