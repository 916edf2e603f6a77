// What a request may reach, decided by the route it matched and never by its URL string. Every
// route declares its access in its options, `config: { access: 'public' }` for the few open ones;
// a route that declares nothing requires an authenticated user (auth.ts enforces it), so a route
// added later is protected by default. Request targets must be in canonical form: a path the
// router would map onto a route through another spelling (%61 for "a", an absolute URL, //, a
// dot segment) is refused with 400 before any hook or handler of that route runs, and so is an
// upgrade of a route that is not a websocket.
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { HttpError } from '@chatty/server'

export type Access = 'public' | 'user'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route: anyone ('public'), or an authenticated user ('user', the default). */
    access?: Access
    /** Set from the route's wsHandler: the route upgrades to a websocket. */
    websocket?: boolean
  }
}

/** A percent-encoded unreserved character (RFC 3986 2.3: ALPHA DIGIT - . _ ~), which must be written as is. */
const ENCODED_UNRESERVED = /%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2d|2e|5f|7e)/i
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/

/** Why a request target is not in canonical form; undefined when it is. */
export function nonCanonical (target: string): string | undefined {
  if (!target.startsWith('/')) return 'the request target must be a path, not an absolute URL'
  const query = target.indexOf('?')
  const path = query === -1 ? target : target.slice(0, query)
  if (path.includes('//')) return 'the path has an empty segment (//)'
  if (DOT_SEGMENT.test(path)) return 'the path has a dot segment (/./ or /../)'
  if (ENCODED_UNRESERVED.test(path)) return 'the path percent-encodes a letter, digit or one of -._~, which must be written as is'
  return undefined
}

/** Whether the request matched a route declared public. A request that matched no route is not. */
export function isPublic (request: FastifyRequest): boolean {
  return request.routeOptions.config.access === 'public'
}

export default fp(async (fastify) => {
  fastify.addHook('onRoute', (route) => {
    const access = route.config?.access ?? 'user'
    if (access !== 'public' && access !== 'user') {
      throw new Error(`route ${String(route.method)} ${route.url}: config.access must be 'public' or 'user', not ${JSON.stringify(access)}`)
    }
    // Fastify adds a HEAD route beside each GET one; a HEAD request is never upgraded.
    const websocket = (route.wsHandler !== undefined || route.websocket === true) && route.method !== 'HEAD'
    route.config = { ...route.config, access, websocket }
    // The OpenAPI document asks for a bearer token everywhere unless a route says otherwise.
    if (access === 'public' && route.schema !== undefined) route.schema = { ...route.schema, security: [] }
  })

  fastify.addHook('onRequest', async (request) => {
    const reason = nonCanonical(request.raw.url ?? '')
    if (reason !== undefined) throw new HttpError(400, 'bad_request', reason)
    // @fastify/websocket would answer an upgrade of any other route with 101 and close the socket.
    if (request.ws && !request.is404 && request.routeOptions.config.websocket !== true) {
      throw new HttpError(400, 'bad_request', 'this route is not a websocket; send the request without an Upgrade header')
    }
  })
}, { name: 'access', dependencies: ['errors', 'websocket'] })
