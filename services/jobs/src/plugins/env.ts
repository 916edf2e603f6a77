// The jobs service's configuration: one validated object, `fastify.config`.
import fp from 'fastify-plugin'
import env from '@fastify/env'
import { Type, type Static } from 'typebox'

export const JobsConfigSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  LOG_LEVEL: Type.String({ default: 'info' }),
  DB_URL: Type.String({ minLength: 1 }),
  DB_POOL_MAX: Type.Integer({ default: 10, minimum: 1 }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  QUEUE_BACKEND: Type.Union([Type.Literal('postgres'), Type.Literal('redis')], { default: 'postgres' }),
  WORKER_CONCURRENCY: Type.Integer({ default: 10, minimum: 1, maximum: 1000 }),
  WORKER_QUEUES: Type.String({ default: 'default=1', pattern: '^\\s*[\\w:.-]+\\s*=\\s*\\d+\\s*(,\\s*[\\w:.-]+\\s*=\\s*\\d+\\s*)*$' }),
  JOBS_ADMIN_PORT: Type.Integer({ default: 8081, minimum: 0, maximum: 65535 }),
  JOBS_ADMIN_HOST: Type.String({ default: '0.0.0.0' })
})

export type JobsConfig = Static<typeof JobsConfigSchema>

declare module 'fastify' {
  interface FastifyInstance {
    // Not `config`: the api and jobs run in one process in tests, each with its own settings.
    jobsConfig: JobsConfig
  }
}

/** go-chatty's Asynq names are accepted as aliases of ours. */
export function withAliases (data: Record<string, unknown>): Record<string, unknown> {
  return {
    ...data,
    WORKER_CONCURRENCY: data.WORKER_CONCURRENCY ?? data.ASYNQ_CONCURRENCY,
    WORKER_QUEUES: data.WORKER_QUEUES ?? data.ASYNQ_QUEUES
  }
}

export default fp<{ data?: Record<string, unknown> }>(async (fastify, options) => {
  await fastify.register(env, { schema: JobsConfigSchema, data: withAliases(options.data ?? process.env), dotenv: false, env: false, confKey: 'jobsConfig' })
  if (fastify.jobsConfig.QUEUE_BACKEND === 'redis' && fastify.jobsConfig.REDIS_URL === undefined) {
    throw new Error('QUEUE_BACKEND=redis needs REDIS_URL')
  }
}, { name: 'config' })
