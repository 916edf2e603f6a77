// Security headers (helmet) and CORS (@fastify/cors, only for CORS_ORIGINS), which allows the
// methods of the registered routes.
import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet from 'helmet'
import cors, { type FastifyCorsOptions } from '@fastify/cors'

/**
 * The headers helmet sets, worked out once: they do not depend on the request (no nonces). The
 * @fastify/helmet plugin built the helmet middleware again on every request, parsing the CSP
 * directives each time (docs/performance.md, history reads).
 */
function securityHeaders (): Array<[string, string]> {
  const headers: Array<[string, string]> = []
  const recorder = {
    setHeader (name: string, value: string) { headers.push([name, value]) },
    removeHeader () {}
  }
  const middleware = helmet({
    // The API answers JSON; only the /docs UI is a page, and it needs its own scripts and styles.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'validator.swagger.io'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"]
      }
    },
    crossOriginResourcePolicy: { policy: 'same-site' }
  })
  middleware({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => { if (err !== undefined) throw err })
  return headers
}

export default fp(async (fastify) => {
  const headers = securityHeaders()
  const setHeaders = (raw: ServerResponse) => {
    for (const [name, value] of headers) raw.setHeader(name, value)
    raw.removeHeader('X-Powered-By')
  }
  // On every response, errors and unknown paths included, set as helmet sets them. A websocket
  // upgrade that goes through is answered by ws with a 101 of its own, which never carried these
  // headers, so an upgrade gets them only when it is refused with an answer (onSend below): the
  // per-upgrade work is skipped for the sockets that open (docs/performance.md, connects).
  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.ws && request.routeOptions.config.websocket === true) return done()
    setHeaders(reply.raw)
    done()
  })
  // access.ts marked the websocket routes (its onRoute hook runs before this one).
  fastify.addHook('onRoute', (route) => {
    if (route.config?.websocket !== true) return
    const own = route.onSend === undefined ? [] : [route.onSend].flat()
    route.onSend = [(_request, reply, payload, done) => {
      setHeaders(reply.raw)
      done(null, payload)
    }, ...own]
  })
  const origins = fastify.config.CORS_ORIGINS
  if (origins !== undefined) {
    // Every method some route answers, so a route added later is reachable from browsers too.
    const methods = new Set<string>()
    fastify.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) if (method !== 'OPTIONS') methods.add(method)
    })
    let options: FastifyCorsOptions | undefined
    await fastify.register(cors, {
      // Built at the first request, once every route is registered.
      delegator: (_request, callback) => {
        options ??= {
          origin: origins === '*' ? true : origins.split(',').map((origin) => origin.trim()),
          methods: [...methods].sort(),
          allowedHeaders: ['authorization', 'content-type', 'x-user-id'],
          maxAge: 600
        }
        callback(null, options)
      }
    })
  }
}, { name: 'security', dependencies: ['config'] })
