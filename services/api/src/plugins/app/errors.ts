// One error handler: domain errors and request errors become {error, code} with their status;
// anything unexpected is logged with its request and answered as a bare internal_error.
import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { ChatError } from '@chatty/chat'
import { guardRequests } from '@chatty/server'

const STATUS_BY_CODE = { bad_request: 400, forbidden: 403, not_found: 404, conflict: 409 } as const

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'unavailable'
}

export class HttpError extends Error {
  readonly statusCode: number
  readonly code: string
  /** More fields for the answer, e.g. retry_after_ms. */
  readonly extra: Record<string, unknown>
  constructor (statusCode: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super(message)
    this.statusCode = statusCode
    this.code = code
    this.extra = extra
  }
}

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

/**
 * Fastify's `frameworkErrors` option: errors raised before routing (a malformed percent-encoding,
 * an over-long path parameter), which never reach the error handler, answer {error, code} too.
 */
export function answerFrameworkError (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
  reply.code(status).send({ error: error.message, code: CODE_BY_STATUS[status] ?? 'bad_request' })
}

export default fp(async (fastify) => {
  // Checks made before anything else (Expect, Host, shutting down), as {error, code}.
  guardRequests(fastify, (status, code, message) => new HttpError(status, code, message))

  fastify.setErrorHandler((error: FastifyError | ChatError | HttpError, request, reply) => {
    if (error instanceof ChatError) {
      return reply.code(STATUS_BY_CODE[error.code]).send({ error: error.message, code: error.code })
    }
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).send({ error: error.message, code: error.code, ...error.extra })
    }
    if (isDatabaseUnavailable(error as { code?: unknown })) {
      request.log.warn({ err: error }, 'database unavailable')
      return reply.code(503).header('retry-after', 1).send({ error: 'the database is unavailable; retry shortly', code: 'unavailable' })
    }
    if (isRedisUnavailable(error)) {
      request.log.warn({ err: error }, 'redis unavailable')
      return reply.code(503).header('retry-after', 1).send({ error: 'the queue is unavailable; retry shortly', code: 'unavailable' })
    }
    const status = (error as FastifyError).statusCode ?? 500
    if ((error as FastifyError).validation !== undefined) {
      return reply.code(400).send({ error: error.message, code: 'bad_request' })
    }
    if (status >= 400 && status < 500) {
      // Fastify's own request errors (broken JSON, body too large, bad content type) say
      // nothing about internals; pass their message on.
      return reply.code(status).send({ error: error.message, code: CODE_BY_STATUS[status] ?? 'bad_request' })
    }
    request.log.error({ err: error }, 'request failed')
    const unavailable = status === 503
    return reply.code(unavailable ? 503 : 500).send({
      error: unavailable ? 'service unavailable' : 'internal error',
      code: unavailable ? 'unavailable' : 'internal_error'
    })
  })

  fastify.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `route ${request.method} ${request.url.split('?')[0]} not found`, code: 'not_found' })
  })
}, { name: 'errors' })
