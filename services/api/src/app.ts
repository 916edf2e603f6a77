// The api as a plugin: everything registered, nothing listening. server.ts runs it; tests build
// it with buildApp().
import { isUtf8 } from 'node:buffer'
import type { Server } from 'node:http'
import Fastify, { type FastifyHttpOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { answerClientError, answerFrameworkError, chatPlugin, feedPlugin, HTTP_SERVER_OPTIONS, HttpError, queuePlugin } from '@chatty/server'
import env, { type EnvOptions } from './plugins/external/env.ts'
import swagger from './plugins/external/swagger.ts'
import security from './plugins/external/security.ts'
import rateLimit from './plugins/external/rate-limit.ts'
import underPressure from './plugins/external/under-pressure.ts'
import websocket from './plugins/external/websocket.ts'
import errors from './plugins/app/errors.ts'
import cache from './plugins/app/cache.ts'
import access from './plugins/app/access.ts'
import auth from './plugins/app/auth.ts'
import rooms from './plugins/app/rooms.ts'
import presence from './plugins/app/presence.ts'
import rootRoutes from './routes/root.ts'
import chatRoutes from './routes/api/v1/chat/index.ts'
import chatSocketRoutes from './routes/api/v1/chat/ws.ts'
import reactionRoutes from './routes/api/v1/chat/reactions.ts'
import searchRoutes from './routes/api/v1/search/index.ts'
import userRoutes from './routes/api/v1/users/index.ts'
import presenceRoutes from './routes/api/v1/users/presence.ts'
import { makeValidatorCompiler } from './validation.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Named checks /readyz runs besides Postgres; plugins add theirs. */
    readinessProbes: Record<string, () => Promise<unknown>>
  }
}

export const app = fp<EnvOptions>(async (fastify, options) => {
  await fastify.register(env, options)
  // A JSON API: other bodies are 415, not parsed as text and then rejected for their shape.
  fastify.removeContentTypeParser('text/plain')
  // JSON is UTF-8 (RFC 8259): other bytes are refused, not decoded to U+FFFD and stored altered.
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer
    if (!isUtf8(bytes)) return done(new HttpError(400, 'bad_request', 'the body is not valid UTF-8'), undefined)
    parseJson(request, bytes.toString('utf8'), done)
  })
  fastify.decorate('readinessProbes', {})
  await fastify.register(errors)
  // Order matters: the hooks of every request run as registered. @fastify/websocket's marks an
  // upgrade first (so a refused upgrade's socket is closed, whichever hook refuses it); the
  // address limit counts everything; non-canonical paths are refused next; CORS answers
  // preflights (which carry no token); then auth. access's onRoute hook sees every route.
  await fastify.register(websocket)
  await fastify.register(underPressure)
  await fastify.register(rateLimit)
  await fastify.register(access)
  await fastify.register(security)
  await fastify.register(swagger)
  await fastify.register(auth)
  const { config } = fastify
  await fastify.register(cache)
  // The chat core, built once from the configuration: its writer and membership cache are passed
  // in (packages/chat/src/context.ts), not looked up.
  await fastify.register(chatPlugin, {
    dbUrl: config.DB_URL,
    poolMax: config.DB_POOL_MAX,
    applicationName: 'chatty-api',
    groupCommitMaxBatch: config.GROUP_COMMIT_MAX_BATCH,
    groupCommitWindowMs: config.GROUP_COMMIT_WINDOW_MS,
    membership: fastify.membership
  })
  await fastify.register(queuePlugin, {
    backend: config.QUEUE_BACKEND,
    dbUrl: config.DB_URL,
    redisUrl: config.REDIS_URL,
    // The jobs service uses the same prefix, so both sides meet on the same keys.
    redisPrefix: `${config.REDIS_KEY_PREFIX}q`
  })
  await fastify.register(feedPlugin, { dbUrl: config.DB_URL, redisUrl: config.REDIS_URL })
  // Publishing to a topic no conversation can have proves the broker takes frames.
  fastify.readinessProbes.bus = () => fastify.bus.publish('readiness', 'ping')
  await fastify.register(rooms)
  await fastify.register(presence)
  await fastify.register(rootRoutes)
  await fastify.register(chatRoutes, { prefix: '/api/v1' })
  await fastify.register(chatSocketRoutes, { prefix: '/api/v1' })
  await fastify.register(reactionRoutes, { prefix: '/api/v1' })
  await fastify.register(searchRoutes, { prefix: '/api/v1' })
  await fastify.register(userRoutes, { prefix: '/api/v1' })
  await fastify.register(presenceRoutes, { prefix: '/api/v1' })
}, { name: 'chatty-api' })

export interface BuildOptions {
  /** Configuration variables (docs/design.md section 2); defaults apply to what is missing. */
  config: Record<string, unknown>
  logger?: FastifyServerOptions['logger']
}

/** Fastify options shared by tests and server.ts. */
/** TRUST_PROXY: "true", a hop count, or a comma-separated list of proxy addresses/CIDRs. */
function trustProxy (value: unknown): boolean | number | string[] {
  if (typeof value !== 'string' || value === '' || value === 'false') return false
  if (value === 'true') return true
  if (/^\d+$/.test(value)) return Number(value)
  return value.split(',').map((entry) => entry.trim())
}

export function serverOptions (config: Record<string, unknown>, logger: FastifyServerOptions['logger'] = false): FastifyHttpOptions<Server> {
  return {
    logger,
    // Behind a load balancer, the client address (rate limits, logs) comes from X-Forwarded-For.
    trustProxy: trustProxy(config.TRUST_PROXY) as FastifyServerOptions['trustProxy'],
    bodyLimit: Number(config.BODY_LIMIT ?? 65536),
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    // The errors plugin answers requests that arrive while closing: 503 {error, code}.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    frameworkErrors: answerFrameworkError,
    // Requests Node refuses before routing (431, a malformed request line) answer {error, code} too.
    clientErrorHandler: answerClientError,
    // A missing Host header is refused by the errors plugin, with {error, code}.
    http: HTTP_SERVER_OPTIONS
  }
}

export async function buildApp (options: BuildOptions): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(options.config, options.logger)).withTypeProvider<TypeBoxTypeProvider>()
  fastify.setValidatorCompiler(makeValidatorCompiler())
  await fastify.register(app, { data: options.config })
  return fastify
}
