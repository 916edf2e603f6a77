// `fastify.queue`: the client side of the job queue (the api enqueues, services/jobs runs).
import fp from 'fastify-plugin'
import { createQueueClient, type QueueClient } from '@chatty/queue'

declare module 'fastify' {
  interface FastifyInstance {
    queue: QueueClient
  }
}

export default fp(async (fastify) => {
  const { config } = fastify
  const queue = createQueueClient({
    backend: config.QUEUE_BACKEND,
    dbUrl: config.DB_URL,
    redisUrl: config.REDIS_URL,
    // The jobs service uses the same prefix, so both sides meet on the same keys.
    redisPrefix: `${config.REDIS_KEY_PREFIX}q`,
    log: (level, message) => fastify.log[level === 'error' ? 'error' : 'warn']({ queue: true }, message)
  })
  fastify.decorate('queue', queue)
  fastify.addHook('onClose', () => queue.close())
}, { name: 'queue', dependencies: ['config'] })
