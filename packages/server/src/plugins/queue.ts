// `fastify.queue`: the client side of the job queue (the api enqueues sends, the jobs service its
// offline notifications). Closed when the server closes.
import fp from 'fastify-plugin'
import { createQueueClient, type QueueClient, type QueueConfig } from '@chatty/queue'

declare module 'fastify' {
  interface FastifyInstance {
    queue: QueueClient
  }
}

export type QueuePluginOptions = Omit<QueueConfig, 'log'>

export const queuePlugin = fp<QueuePluginOptions>(async (fastify, options) => {
  const queue = createQueueClient({
    ...options,
    log: (level, message) => fastify.log[level === 'error' ? 'error' : 'warn']({ queue: true }, message)
  })
  fastify.decorate('queue', queue)
  fastify.addHook('onClose', () => queue.close())
}, { name: 'queue' })
