// Overload protection: when the event loop lags or memory runs out, answer 503 at once instead of
// queueing requests without bound.
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'

export default fp(async (fastify) => {
  await fastify.register(underPressure, {
    maxEventLoopDelay: fastify.config.MAX_EVENT_LOOP_DELAY_MS,
    sampleInterval: 100,
    retryAfter: 5,
    pressureHandler: (_request, reply, type) => {
      reply.code(503).header('retry-after', 5).send({ error: `the server is overloaded (${type}); retry shortly`, code: 'unavailable' })
    }
  })
}, { name: 'under-pressure', dependencies: ['config'] })
