// The dashboard's errors and their one handler: every error answer is {error, code} with its
// status; anything unexpected is logged with its request and answered as a bare internal_error.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

export class AdminError extends Error {
  readonly statusCode: number
  readonly code: string
  constructor (statusCode: number, code: string, message: string) {
    super(message)
    this.statusCode = statusCode
    this.code = code
  }
}

export const jobNotFound = (id: string) => new AdminError(404, 'not_found', `no job ${JSON.stringify(id)}`)
export const jobRunning = (id: string) => new AdminError(409, 'job_running', `job ${JSON.stringify(id)} is running; wait until it finishes`)
export const unauthorized = () => new AdminError(401, 'unauthorized', 'a valid admin token is required (Authorization: Bearer <JOBS_ADMIN_TOKEN>)')

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type'
}

/**
 * Fastify's `frameworkErrors` option: errors raised before routing (a malformed percent-encoding,
 * an over-long path parameter), which never reach the error handler, answer {error, code} too.
 */
export function answerFrameworkError (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
  void reply.code(status).send({ error: error.message, code: CODE_BY_STATUS[status] ?? 'bad_request' })
}

export function setAdminErrorHandler (fastify: FastifyInstance): void {
  fastify.setErrorHandler((error: FastifyError | AdminError, request, reply) => {
    if (error instanceof AdminError) {
      if (error.statusCode === 401) void reply.header('www-authenticate', 'Bearer realm="chatty jobs"')
      return reply.code(error.statusCode).send({ error: error.message, code: error.code })
    }
    if (error.validation !== undefined) return reply.code(400).send({ error: error.message, code: 'bad_request' })
    const status = error.statusCode ?? 500
    // Fastify's own request errors (broken body, wrong content type) say nothing about internals.
    if (status >= 400 && status < 500) return reply.code(status).send({ error: error.message, code: CODE_BY_STATUS[status] ?? 'bad_request' })
    request.log.error({ err: error }, 'admin request failed')
    return reply.code(500).send({ error: 'internal error', code: 'internal_error' })
  })
}

/** An unknown route is an {error, code} answer too (the whole admin port, and /admin/api). */
export function setAdminNotFoundHandler (fastify: FastifyInstance): void {
  fastify.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}`, code: 'not_found' })
  })
}
