// One error handler: domain errors and request errors become {error, code} with their status;
// anything unexpected is logged with its request and answered as a bare internal_error.
import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import { ChatError } from '@chatty/chat'

const STATUS_BY_CODE = { bad_request: 400, forbidden: 403, not_found: 404 } as const

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'unavailable'
}

export class HttpError extends Error {
  readonly statusCode: number
  readonly code: string
  constructor (statusCode: number, code: string, message: string) {
    super(message)
    this.statusCode = statusCode
    this.code = code
  }
}

export default fp(async (fastify) => {
  fastify.setErrorHandler((error: FastifyError | ChatError | HttpError, request, reply) => {
    if (error instanceof ChatError) {
      return reply.code(STATUS_BY_CODE[error.code]).send({ error: error.message, code: error.code })
    }
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).send({ error: error.message, code: error.code })
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
