// The api's configuration: one validated object, `fastify.config`. Nothing else reads the
// environment. A bad value stops start-up with a message naming the variable.
import fp from 'fastify-plugin'
import { readConfig } from '@chatty/server'
import env from '@fastify/env'
import { Type, type Static } from 'typebox'

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  // Unset: 127.0.0.1 with AUTH_MODE=none (an open API stays on this machine), else 0.0.0.0.
  HOST: Type.Optional(Type.String({ minLength: 1 })),
  LOG_LEVEL: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info' }),
  DB_URL: Type.String({ minLength: 1 }),
  DB_POOL_MAX: Type.Integer({ default: 20, minimum: 1 }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  QUEUE_BACKEND: Type.Union([Type.Literal('postgres'), Type.Literal('redis')], { default: 'postgres' }),
  AUTH_MODE: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('jwt')])),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  JWKS_CACHE_MAX_AGE_MS: Type.Integer({ default: 600_000, minimum: 0 }),
  JWKS_COOLDOWN_MS: Type.Integer({ default: 30_000, minimum: 0 }),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_MAX_AGE_S: Type.Integer({ default: 86_400, minimum: 1, description: 'longest token lifetime accepted (exp - iat; exp - now without iat)' }),
  TRUST_PROXY: Type.Optional(Type.String({ pattern: '^(true|false|\\d+|[0-9a-fA-F.:/]+(\\s*,\\s*[0-9a-fA-F.:/]+)*)$', description: 'true, a hop count, or proxy addresses' })),
  REDIS_KEY_PREFIX: Type.String({ default: 'chatty:', description: 'prefix of every Redis key and channel' }),
  CORS_ORIGINS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated origins, or *' })),
  RATE_LIMIT_IP_MAX: Type.Integer({ default: 1200, minimum: 1 }),
  RATE_LIMIT_USER_MAX: Type.Integer({ default: 600, minimum: 1 }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 60_000, minimum: 1000 }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ default: 1000, minimum: 0, description: '0 turns the check off' }),
  BODY_LIMIT: Type.Integer({ default: 65536, minimum: 1024 }),
  WS_PING_INTERVAL_MS: Type.Integer({ default: 30000, minimum: 100 }),
  WS_MAX_PAYLOAD: Type.Integer({ default: 65536, minimum: 1024 }),
  // Bytes queued for one socket before it is cut as a slow consumer (close 1013).
  WS_MAX_BUFFERED_BYTES: Type.Integer({ default: 1048576, minimum: 1024 }),
  WS_MAX_PROCESS_REPLAY_BYTES: Type.Integer({ default: 33554432, minimum: 65536, description: 'bytes of replay pages (read, not yet written out) all websockets of the process may hold' }),
  WS_REPLAY_DRAIN_TIMEOUT_MS: Type.Integer({ default: 30000, minimum: 100, description: 'how long a replay waits for its socket to write out its last page, or for room in WS_MAX_PROCESS_REPLAY_BYTES, before the socket is cut (1013)' }),
  WS_MAX_JOINS_PER_SOCKET: Type.Integer({ default: 1000, minimum: 1, description: 'conversations one websocket may have joined at once' }),
  // Per-socket token bucket for client frames; over it a frame gets a rate_limited error frame.
  WS_RATE_LIMIT_PER_SEC: Type.Number({ default: 20, minimum: 0, description: 'client frames per second per socket; 0 turns the limit off' }),
  WS_RATE_LIMIT_BURST: Type.Integer({ default: 40, minimum: 1, description: 'client frames a socket may send at once before WS_RATE_LIMIT_PER_SEC applies' }),
  WS_MAX_SOCKETS_PER_USER: Type.Integer({ default: 10, minimum: 0, description: 'open websockets per user per api process; 0 turns the limit off' }),
  WS_ALLOWED_ORIGINS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated origins a browser may open the websocket from' })),
  WEBHOOK_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'set: every stored message queues chat:notify_offline (the jobs service POSTs it there)' })),
  PRESENCE_TTL_MS: Type.Integer({ default: 30_000, minimum: 300, maximum: 3_600_000, description: 'how long an api process counts as alive after its last presence heartbeat (sent every third of it)' }),
  MEMBERSHIP_CACHE_TTL_MS: Type.Integer({ default: 60_000, minimum: 0, description: 'how long a membership fact is cached; 0 turns the cache off' }),
  GROUP_COMMIT_MAX_BATCH: Type.Integer({ default: 256, minimum: 0, description: 'most messages stored by one statement; 0 stores each on its own' }),
  GROUP_COMMIT_WINDOW_MS: Type.Integer({ default: 0, minimum: 0, maximum: 100, description: 'how long a batch waits for more messages when a write slot is free' })
})

export type Config = Static<typeof ConfigSchema> & { AUTH_MODE: 'none' | 'jwt', HOST: string }

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface EnvOptions {
  /** The variables to read; the process environment when omitted (server.ts). */
  data?: Record<string, unknown>
}

const plugin = fp<EnvOptions>(async (fastify, options) => {
  // env: false: read only `data`, so an app built by a test is not configured by the process's environment.
  const data = options.data ?? process.env
  // An empty WEBHOOK_URL (compose's `${WEBHOOK_URL:-}`) is none.
  const withoutEmpty = data.WEBHOOK_URL === '' ? { ...data, WEBHOOK_URL: undefined } : data
  await fastify.register(env, { schema: ConfigSchema, data: withoutEmpty, dotenv: false, env: false })
  const config = fastify.config
  // AUTH_MODE defaults to jwt in production and none elsewhere (docs/design.md section 5).
  config.AUTH_MODE ??= config.NODE_ENV === 'production' ? 'jwt' : 'none'
  if (config.AUTH_MODE === 'none' && config.NODE_ENV === 'production') {
    throw new Error('AUTH_MODE=none is refused when NODE_ENV=production: anyone could act as any user')
  }
  // Without identity anyone who can connect can act as anyone: listen on every interface only when asked.
  config.HOST ??= config.AUTH_MODE === 'none' ? '127.0.0.1' : '0.0.0.0'
  if (config.AUTH_MODE === 'jwt' && config.JWT_SECRET === undefined && config.JWKS_URL === undefined) {
    throw new Error('AUTH_MODE=jwt needs JWT_SECRET (HS256, at least 32 characters) or JWKS_URL (RS256/ES256)')
  }
  if (config.WS_ALLOWED_ORIGINS !== undefined) {
    for (const origin of config.WS_ALLOWED_ORIGINS.split(',')) {
      if (normalizeOrigin(origin) === undefined) throw new Error(`WS_ALLOWED_ORIGINS: ${JSON.stringify(origin.trim())} is not an origin like https://chat.example.com`)
    }
  }
  if (config.QUEUE_BACKEND === 'redis' && config.REDIS_URL === undefined) {
    throw new Error('QUEUE_BACKEND=redis needs REDIS_URL')
  }
}, { name: 'config' })

export default plugin

/**
 * The validated configuration, read before the app is built so that server.ts sets up logging
 * (LOG_LEVEL, NODE_ENV) from the same object the app reads; the app is then built from it.
 */
export async function loadConfig (data: Record<string, unknown>): Promise<Config> {
  return await readConfig<Config>(plugin, data, 'config')
}

/** An origin as browsers send it (scheme://host[:port], lower case, default port left out); undefined if it is not one. */
export function normalizeOrigin (value: string): string | undefined {
  const trimmed = value.trim()
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#]+\/?$/i.test(trimmed)) return undefined
  try {
    const { origin } = new URL(trimmed)
    return origin === 'null' ? undefined : origin
  } catch {
    return undefined
  }
}
