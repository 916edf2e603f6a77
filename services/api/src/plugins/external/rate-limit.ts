// Abuse limits, by the route a request matched: per client IP for every request except the public
// routes (health checks, docs), requests that match no route included, and per user once the user
// is known (the token's user, or in none mode the claimed one). With REDIS_URL the counters live
// in Redis, so limits hold across api processes; otherwise each process counts for itself.
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import { HttpError } from '@chatty/server'
import { isPublic } from '../app/access.ts'

function limited (ttlMs: number, what: string): HttpError {
  return new HttpError(429, 'rate_limited', `too many requests ${what}; retry in ${Math.ceil(ttlMs / 1000)} s`, { retry_after_ms: ttlMs })
}

export default fp(async (fastify) => {
  const { config } = fastify
  const redis = config.REDIS_URL === undefined
    ? undefined
    : new Redis(config.REDIS_URL, {
      connectTimeout: 1000,
      maxRetriesPerRequest: 1,
      lazyConnect: false,
      // The counts of the requests handled in one turn of the event loop (history pages, a burst
      // of websocket upgrades) go to Redis in one write rather than one each
      // (docs/performance.md).
      enableAutoPipelining: true
    })
  if (redis !== undefined) {
    // Once connected, no offline queue: while Redis is away a count fails at once and the request
    // is let through (skipOnError), instead of waiting out a reconnect attempt.
    redis.once('ready', () => { redis.options.enableOfflineQueue = false })
    redis.on('error', (err) => fastify.log.debug({ err }, 'rate-limit redis error'))
    fastify.addHook('onClose', async () => { redis.disconnect() })
  }
  const store = { redis, skipOnError: true, nameSpace: `${config.REDIS_KEY_PREFIX}rl:` }

  await fastify.register(rateLimit, {
    ...store,
    // One hook for every request rather than the plugin's hook on each route, which would leave
    // out requests that match no route (probes of unknown paths).
    global: false,
    max: config.RATE_LIMIT_IP_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW_MS,
    keyGenerator: (request) => `ip:${request.ip}`,
    allowList: (request) => isPublic(request),
    errorResponseBuilder: (_request, context) => limited(context.ttl, 'from this address')
  })
  fastify.addHook('onRequest', fastify.rateLimit())

  const perUser = fastify.createRateLimit({
    ...store,
    max: config.RATE_LIMIT_USER_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW_MS,
    keyGenerator: (request) => `user:${userKey(request)}`
  })
  fastify.addHook('preHandler', async (request, reply) => {
    if (request.is404 || isPublic(request)) return
    if (userKey(request) === undefined) return
    const result = await perUser(request)
    if (!result.isAllowed && result.isExceeded) {
      reply.header('retry-after', result.ttlInSeconds)
      throw limited(result.ttl, 'for this user')
    }
  })
}, { name: 'rate-limit', dependencies: ['config'] })

/**
 * The user a request counts against: the token's, else (AUTH_MODE=none) the one it claims to act
 * as, in the body (sender_id, user_id, actor_id), the query (DELETE routes) or X-User-Id. Lower
 * case: a uuid written in upper or mixed case is the same user, with the same count.
 */
function userKey (request: FastifyRequest): string | undefined {
  if (request.identity?.userId !== undefined) return request.identity.userId
  type Claims = { sender_id?: unknown, user_id?: unknown, actor_id?: unknown } | undefined
  const body = request.body as Claims
  const query = request.query as Claims
  const id = body?.sender_id ?? body?.user_id ?? body?.actor_id ?? query?.sender_id ?? query?.actor_id ?? request.headers['x-user-id']
  return typeof id === 'string' ? id.toLowerCase() : undefined
}
