// `fastify.bus` and `fastify.feed`: live fan-out between processes (docs/design.md section 6),
// Redis pub/sub when a Redis url is given, Postgres LISTEN/NOTIFY otherwise; and the conversation
// feed on it (packages/chat/src/feed.ts), the one way changes reach the members' sockets. Both
// services register it; the bus is closed when the server closes.
import fp from 'fastify-plugin'
import { createBus, type Bus } from '@chatty/bus'
import { createFeed, type ConversationFeed } from '@chatty/chat'

declare module 'fastify' {
  interface FastifyInstance {
    bus: Bus
    feed: ConversationFeed
  }
}

export interface FeedPluginOptions {
  dbUrl: string
  redisUrl?: string
}

export const feedPlugin = fp<FeedPluginOptions>(async (fastify, options) => {
  const bus = createBus({
    dbUrl: options.dbUrl,
    redisUrl: options.redisUrl,
    log: (level, message, err) => fastify.log[level]({ bus: true, err }, message)
  })
  fastify.decorate('bus', bus)
  fastify.decorate('feed', createFeed(bus, fastify.log))
  fastify.addHook('onClose', () => bus.close())
}, { name: 'feed' })
