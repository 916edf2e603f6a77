// `fastify.bus`: live fan-out between processes (docs/design.md section 6). Redis pub/sub when
// REDIS_URL is set, Postgres LISTEN/NOTIFY otherwise; closed on close.
import fp from 'fastify-plugin'
import { createBus, type Bus } from '@chatty/bus'

declare module 'fastify' {
  interface FastifyInstance {
    bus: Bus
  }
}

/** A topic no conversation can have: publishing to it proves the broker takes frames. */
const READINESS_TOPIC = 'readiness'

export default fp(async (fastify) => {
  const { config } = fastify
  const bus = createBus({
    dbUrl: config.DB_URL,
    redisUrl: config.REDIS_URL,
    log: (level, message, err) => fastify.log[level]({ bus: true, err }, message)
  })
  fastify.decorate('bus', bus)
  fastify.readinessProbes.bus = () => bus.publish(READINESS_TOPIC, 'ping')
  fastify.addHook('onClose', () => bus.close())
}, { name: 'bus', dependencies: ['config'] })
