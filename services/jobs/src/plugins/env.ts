// The jobs service's configuration: one validated object, `fastify.jobsConfig`, and the queue
// configuration derived from it. A bad value stops start-up with a message naming the variable.
import fp from 'fastify-plugin'
import { readConfig } from '@chatty/server'
import env from '@fastify/env'
import { Type, type Static } from 'typebox'
import { parseQueueWeights, type QueueConfig } from '@chatty/queue'

export const JobsConfigSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  LOG_LEVEL: Type.String({ default: 'info' }),
  DB_URL: Type.String({ minLength: 1 }),
  DB_POOL_MAX: Type.Integer({ default: 10, minimum: 1 }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  // The queue's keys are `<REDIS_KEY_PREFIX>q:...` (chatty:q:... by default, as the api's).
  REDIS_KEY_PREFIX: Type.String({ default: 'chatty:', maxLength: 100 }),
  QUEUE_BACKEND: Type.Union([Type.Literal('postgres'), Type.Literal('redis')], { default: 'postgres' }),
  WORKER_CONCURRENCY: Type.Integer({ default: 10, minimum: 1, maximum: 1000 }),
  // Unset: as many as WORKER_CONCURRENCY.
  WORKER_PREFETCH: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'jobs claimed ahead of free slots (Postgres queue); 0 claims only for free slots' })),
  // Checked by parseQueueWeights below, which names the bad part.
  WORKER_QUEUES: Type.String({ default: 'default=1' }),
  JOBS_TIMEOUT_MS: Type.Integer({ default: 60_000, minimum: 1 }),
  JOBS_LOCK_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 100 }),
  JOBS_BACKOFF_BASE_MS: Type.Integer({ default: 1000, minimum: 1, maximum: 3_600_000 }),
  JOBS_ADMIN_PORT: Type.Integer({ default: 8081, minimum: 0, maximum: 65535 }),
  // Unset: 0.0.0.0 with JOBS_ADMIN_TOKEN, 127.0.0.1 without (an open dashboard stays on this machine).
  JOBS_ADMIN_HOST: Type.Optional(Type.String({ minLength: 1 })),
  JOBS_ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 16, description: 'bearer token of the dashboard; open when unset, required when NODE_ENV=production' })),
  WEBHOOK_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'where chat:notify_offline POSTs; unset: no offline notifications' })),
  WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 16, description: 'HMAC-SHA256 key of X-Chatty-Signature; required with WEBHOOK_URL' })),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 600_000, description: 'a webhook that has not answered by then fails the attempt' }),
  GROUP_COMMIT_MAX_BATCH: Type.Integer({ default: 256, minimum: 0, description: 'most messages stored by one statement; 0 stores each on its own' }),
  GROUP_COMMIT_WINDOW_MS: Type.Integer({ default: 0, minimum: 0, maximum: 100, description: 'how long a batch waits for more messages when a write slot is free' })
})

export type JobsConfig = Static<typeof JobsConfigSchema> & { JOBS_ADMIN_HOST: string }

declare module 'fastify' {
  interface FastifyInstance {
    // Not `config`: the api and jobs run in one process in tests, each with its own settings.
    jobsConfig: JobsConfig
  }
}

/**
 * go-chatty's Asynq names are accepted as aliases of ours. An empty JOBS_ADMIN_TOKEN, WEBHOOK_URL
 * or WEBHOOK_SECRET (compose's `${JOBS_ADMIN_TOKEN:-}`) is none.
 */
export function withAliases (data: Record<string, unknown>): Record<string, unknown> {
  return {
    ...data,
    WORKER_CONCURRENCY: data.WORKER_CONCURRENCY ?? data.ASYNQ_CONCURRENCY,
    WORKER_QUEUES: data.WORKER_QUEUES ?? data.ASYNQ_QUEUES,
    JOBS_ADMIN_TOKEN: data.JOBS_ADMIN_TOKEN === '' ? undefined : data.JOBS_ADMIN_TOKEN,
    WEBHOOK_URL: data.WEBHOOK_URL === '' ? undefined : data.WEBHOOK_URL,
    WEBHOOK_SECRET: data.WEBHOOK_SECRET === '' ? undefined : data.WEBHOOK_SECRET
  }
}

/** What the worker and the dashboard hand to @chatty/queue. */
export function queueConfig (config: JobsConfig, log?: QueueConfig['log']): QueueConfig {
  return {
    backend: config.QUEUE_BACKEND,
    dbUrl: config.DB_URL,
    redisUrl: config.REDIS_URL,
    redisPrefix: `${config.REDIS_KEY_PREFIX}q`,
    concurrency: config.WORKER_CONCURRENCY,
    prefetch: config.WORKER_PREFETCH ?? config.WORKER_CONCURRENCY,
    queues: parseQueueWeights(config.WORKER_QUEUES),
    timeoutMs: config.JOBS_TIMEOUT_MS,
    lockTimeoutMs: config.JOBS_LOCK_TIMEOUT_MS,
    backoff: { baseMs: config.JOBS_BACKOFF_BASE_MS },
    log
  }
}

const plugin = fp<{ data?: Record<string, unknown> }>(async (fastify, options) => {
  const raw = options.data ?? process.env
  const data = withAliases(raw)
  await fastify.register(env, { schema: JobsConfigSchema, data, dotenv: false, env: false, confKey: 'jobsConfig' })
  const config = fastify.jobsConfig
  // The dashboard shows pending payloads (message bodies) and deletes accepted sends.
  if (config.JOBS_ADMIN_TOKEN === undefined && config.NODE_ENV === 'production') {
    throw new Error('JOBS_ADMIN_TOKEN (16+ characters) is required when NODE_ENV=production: without it the queue dashboard is open to anyone who reaches JOBS_ADMIN_PORT')
  }
  config.JOBS_ADMIN_HOST ??= config.JOBS_ADMIN_TOKEN === undefined ? '127.0.0.1' : '0.0.0.0'
  if (config.QUEUE_BACKEND === 'redis' && config.REDIS_URL === undefined) {
    throw new Error('QUEUE_BACKEND=redis needs REDIS_URL')
  }
  if (config.WEBHOOK_URL !== undefined && config.WEBHOOK_SECRET === undefined) {
    throw new Error('WEBHOOK_URL needs WEBHOOK_SECRET (at least 16 characters): receivers verify every request with it')
  }
  try {
    parseQueueWeights(config.WORKER_QUEUES)
  } catch (error) {
    const name = raw.WORKER_QUEUES === undefined ? 'ASYNQ_QUEUES' : 'WORKER_QUEUES'
    throw new Error(`${name}=${JSON.stringify(config.WORKER_QUEUES)}: ${(error as Error).message}`)
  }
}, { name: 'config' })

export default plugin

/**
 * The validated configuration, read before the service is built so that server.ts sets up
 * logging (LOG_LEVEL, NODE_ENV) from the same object the service reads.
 */
export async function loadConfig (data: Record<string, unknown>): Promise<JobsConfig> {
  return await readConfig<JobsConfig>(plugin, data, 'jobsConfig')
}
