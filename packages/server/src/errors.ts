// The error answers of both services: one error class, one status <-> code table and one error
// handler. Every error answer is {error, code} with its status; anything unexpected is logged
// with its request and answered as a bare internal_error.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

const CODE_BY_STATUS = {
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
} as const

export type StatusCode = (typeof CODE_BY_STATUS)[keyof typeof CODE_BY_STATUS]

/** The status of each code of the table (a domain error's code, e.g. the chat's not_found). */
export const STATUS_BY_CODE = Object.fromEntries(
  Object.entries(CODE_BY_STATUS).map(([status, code]) => [code, Number(status)])
) as Record<StatusCode, number>

/** The code of a status; bad_request for a 4xx the table does not name. */
export function codeOf (status: number): string {
  return (CODE_BY_STATUS as Record<number, string>)[status] ?? 'bad_request'
}

export class HttpError extends Error {
  readonly statusCode: number
  readonly code: string
  /** More fields for the answer, e.g. retry_after_ms. */
  readonly extra: Record<string, unknown>
  /** Headers of the answer, e.g. www-authenticate or retry-after. */
  readonly headers: Record<string, string | number>
  constructor (statusCode: number, code: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string | number> = {}) {
    super(message)
    this.statusCode = statusCode
    this.code = code
    this.extra = extra
    this.headers = headers
  }
}

/**
 * Fastify's `frameworkErrors` option: errors raised before routing (a malformed percent-encoding,
 * an over-long path parameter), which never reach the error handler, answer {error, code} too.
 */
export function answerFrameworkError (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
  void reply.code(status).send({ error: error.message, code: codeOf(status) })
}

export interface ErrorHandlerOptions {
  /** A service's own errors as HttpErrors (the api's chat errors, an unreachable database); undefined for others. */
  translate?: (error: Error, request: FastifyRequest) => HttpError | undefined
  /** The log line of an unexpected error. */
  failureMessage: string
}

/** The error handler of `fastify` (and the plugins it registers from now on). */
export function handleErrors (fastify: FastifyInstance, options: ErrorHandlerOptions): void {
  fastify.setErrorHandler((thrown: FastifyError | HttpError, request, reply) => {
    const error = thrown instanceof HttpError ? thrown : options.translate?.(thrown, request) ?? thrown
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).headers(error.headers).send({ error: error.message, code: error.code, ...error.extra })
    }
    if (error.validation !== undefined) return reply.code(400).send({ error: error.message, code: 'bad_request' })
    const status = error.statusCode ?? 500
    // Fastify's own request errors (broken JSON, body too large, bad content type) say nothing
    // about internals; pass their message on.
    if (status >= 400 && status < 500) return reply.code(status).send({ error: error.message, code: codeOf(status) })
    request.log.error({ err: error }, options.failureMessage)
    const unavailable = status === 503
    return reply.code(unavailable ? 503 : 500).send({
      error: unavailable ? 'service unavailable' : 'internal error',
      code: unavailable ? 'unavailable' : 'internal_error'
    })
  })
}
