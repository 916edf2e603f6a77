// The api's error handler (@chatty/server's, shared with the jobs service) with the api's own
// errors: the chat domain's codes, and an unreachable database or Redis as 503 unavailable.
import fp from 'fastify-plugin'
import { ChatError } from '@chatty/chat'
import { guardRequests, handleErrors, HttpError, STATUS_BY_CODE } from '@chatty/server'

/** Errors that mean "the database is not reachable right now", not "this request is wrong". */
function isDatabaseUnavailable (error: { code?: unknown, message?: string }): boolean {
  const code = typeof error.code === 'string' ? error.code : ''
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006'].includes(code) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(error.message ?? '')
}

/** The queue's or ioredis's errors while Redis (the queue with QUEUE_BACKEND=redis) is not reachable. */
function isRedisUnavailable (error: { name?: string, message?: string }): boolean {
  return error.name === 'QueueUnavailableError' || error.name === 'MaxRetriesPerRequestError' ||
    /Stream isn't writeable and enableOfflineQueue options is false|^Connection is closed\.?$/.test(error.message ?? '')
}

export default fp(async (fastify) => {
  // Checks made before anything else (Expect, Host, shutting down), as {error, code}.
  guardRequests(fastify)

  handleErrors(fastify, {
    failureMessage: 'request failed',
    translate (error, request) {
      if (error instanceof ChatError) return new HttpError(STATUS_BY_CODE[error.code], error.code, error.message)
      if (isDatabaseUnavailable(error as { code?: unknown })) {
        request.log.warn({ err: error }, 'database unavailable')
        return new HttpError(503, 'unavailable', 'the database is unavailable; retry shortly', {}, { 'retry-after': 1 })
      }
      if (isRedisUnavailable(error)) {
        request.log.warn({ err: error }, 'redis unavailable')
        return new HttpError(503, 'unavailable', 'the queue is unavailable; retry shortly', {}, { 'retry-after': 1 })
      }
      return undefined
    }
  })

  fastify.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `route ${request.method} ${request.url.split('?')[0]} not found`, code: 'not_found' })
  })
}, { name: 'errors' })
