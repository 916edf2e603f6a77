// Answers to requests that Node refuses before Fastify sees them: the same {error, code} JSON as
// every other error answer, instead of Fastify's {statusCode, error, message} or Node's empty
// body. The refused request's raw bytes may hold a token, so only the parser's error code is logged.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { HttpError } from './errors.ts'

interface ClientError extends Error {
  code?: string
}

function answer (error: ClientError): { status: number, code: string, message: string } {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      // Node counts the request line (the url) in the header size: a too long url lands here too.
      return { status: 431, code: 'headers_too_large', message: 'the request line and header fields are too large' }
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'request_timeout', message: 'the request did not arrive in time' }
    default:
      return { status: 400, code: 'bad_request', message: 'the request is not valid HTTP/1.1' }
  }
}

/** Fastify's `clientErrorHandler`: a request Node's HTTP parser refused (431, 400, 408). */
export function answerClientError (this: { log: { debug (object: object, message: string): void } }, error: ClientError, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const { status, code, message } = answer(error)
  this.log.debug({ parserError: error.code, status }, 'refused a malformed request')
  if (socket.writable) {
    const body = JSON.stringify({ error: message, code })
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

/**
 * The http server's 'checkExpectation' listener: an `Expect` header other than 100-continue,
 * which Node would answer 417 with an empty body.
 */
export function answerExpectationFailed (_request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify({ error: 'the only expectation this server meets is 100-continue', code: 'expectation_failed' })
  response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
  response.end(body)
}

/**
 * Node answers an HTTP/1.1 request without a Host header 400 with an empty body unless its
 * `requireHostHeader` option is off; it is off (the `http` server option below) and this check,
 * run by each service's first onRequest hook, answers {error, code} instead.
 */
export const HTTP_SERVER_OPTIONS = { requireHostHeader: false }

export function lacksHost (request: { headers: { host?: string }, raw: { httpVersionMajor: number, httpVersionMinor: number } }): boolean {
  return request.headers.host === undefined && request.raw.httpVersionMajor === 1 && request.raw.httpVersionMinor >= 1
}

/**
 * The checks both services make before anything else, answered as {error, code} by the error
 * handler (HttpError): `Expect` other than 100-continue (417), an HTTP/1.1
 * request without Host (400), and a request that arrives on an open connection once close()
 * began (503 with `Connection: close`; Fastify's own answer, return503OnClosing, is
 * {error, message, statusCode}, so each service turns it off and this one answers).
 */
export function guardRequests (fastify: FastifyInstance): void {
  fastify.server.on('checkExpectation', answerExpectationFailed)
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  fastify.addHook('onRequest', async (request, reply) => {
    if (lacksHost(request)) throw new HttpError(400, 'bad_request', 'an HTTP/1.1 request needs a Host header')
    if (closing) {
      void reply.header('connection', 'close')
      throw new HttpError(503, 'unavailable', 'the server is shutting down; retry')
    }
  })
}
