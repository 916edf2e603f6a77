// The api's configuration: one validated object, `fastify.config`. Nothing else reads the
// environment. A bad value stops start-up with a message naming the variable.
import fp from 'fastify-plugin'
import env from '@fastify/env'
import { Type, type Static } from 'typebox'

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  HOST: Type.String({ default: '0.0.0.0' }),
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
  MEMBERSHIP_CACHE_TTL_MS: Type.Integer({ default: 60_000, minimum: 0, description: 'how long a membership fact is cached; 0 turns the cache off' }),
  GROUP_COMMIT_MAX_BATCH: Type.Integer({ default: 256, minimum: 0, description: 'most messages stored by one statement; 0 stores each on its own' }),
  GROUP_COMMIT_WINDOW_MS: Type.Integer({ default: 0, minimum: 0, maximum: 100, description: 'how long a batch waits for more messages when a write slot is free' })
})

export type Config = Static<typeof ConfigSchema> & { AUTH_MODE: 'none' | 'jwt' }

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface EnvOptions {
  /** The variables to read; the process environment when omitted (server.ts). */
  data?: Record<string, unknown>
}

export default fp<EnvOptions>(async (fastify, options) => {
  // env: false: read only `data`, so an app built by a test is not configured by the process's environment.
  await fastify.register(env, { schema: ConfigSchema, data: options.data ?? process.env, dotenv: false, env: false })
  const config = fastify.config
  // AUTH_MODE defaults to jwt in production and none elsewhere (DESIGN.md section 5).
  config.AUTH_MODE ??= config.NODE_ENV === 'production' ? 'jwt' : 'none'
  if (config.AUTH_MODE === 'none' && config.NODE_ENV === 'production') {
    throw new Error('AUTH_MODE=none is refused when NODE_ENV=production: anyone could act as any user')
  }
  if (config.AUTH_MODE === 'jwt' && config.JWT_SECRET === undefined && config.JWKS_URL === undefined) {
    throw new Error('AUTH_MODE=jwt needs JWT_SECRET (HS256, at least 32 characters) or JWKS_URL (RS256/ES256)')
  }
  if (config.QUEUE_BACKEND === 'redis' && config.REDIS_URL === undefined) {
    throw new Error('QUEUE_BACKEND=redis needs REDIS_URL')
  }
}, { name: 'config' })
