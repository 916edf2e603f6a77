// Identity (docs/design.md section 5). AUTH_MODE=jwt: every request to a route that is not declared
// public (access.ts) carries a bearer token (the websocket upgrade may pass it as ?access_token=)
// and the user is its `sub`. AUTH_MODE=none is go-chatty's behaviour: the caller is whoever
// user_id / sender_id claims, for development only.
import { webcrypto } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose'
import { HttpError } from '@chatty/server'
import { createRemoteKeySet, KeySetUnavailableError } from '../../jwks.ts'
import { isPublic } from './access.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface Identity {
  userId: string
  /** Seconds since the epoch (every accepted token expires); null in none mode's callers. */
  expiresAt: number | null
}

export interface Authenticator {
  mode: 'none' | 'jwt'
  /**
   * Verifies a token; throws HttpError 401 unless it is valid now, or 503 when the identity
   * provider's keys cannot be fetched.
   */
  verify (token: string): Promise<Identity>
}

declare module 'fastify' {
  interface FastifyInstance {
    auth: Authenticator
  }
  interface FastifyRequest {
    /** The authenticated user (jwt mode); null in none mode. */
    identity: Identity | null
  }
}

export function unauthorized (message: string): HttpError {
  return new HttpError(401, 'unauthorized', message)
}

/**
 * The bearer token of a request: the Authorization header, or ?access_token= on a websocket
 * upgrade (browsers cannot set headers there). REST ignores the query string: a token in a URL
 * ends up in logs and browser history.
 */
export function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    return match?.[1] ?? ''
  }
  if (request.ws !== true || request.routeOptions.config.websocket !== true) return undefined
  const query = request.query as Record<string, unknown> | undefined
  return typeof query?.access_token === 'string' ? query.access_token : undefined
}

/**
 * The user a request acts as. In jwt mode, the token's subject; a claimed id that differs is
 * 403. In none mode, the claimed id (which may be absent).
 */
export function actingUser (request: FastifyRequest, claimed: string | undefined): string | undefined {
  if (request.identity === null) return claimed
  if (claimed !== undefined && claimed.toLowerCase() !== request.identity.userId.toLowerCase()) {
    throw new HttpError(403, 'forbidden', 'the user in the request is not the authenticated user')
  }
  return request.identity.userId
}

export default fp(async (fastify) => {
  const { config } = fastify
  let getKey: JWTVerifyGetKey | webcrypto.CryptoKey | undefined
  if (config.AUTH_MODE === 'jwt') {
    getKey = config.JWKS_URL !== undefined
      ? createRemoteKeySet({
        url: new URL(config.JWKS_URL),
        cacheMaxAgeMs: config.JWKS_CACHE_MAX_AGE_MS,
        cooldownMs: config.JWKS_COOLDOWN_MS,
        onError: (err) => fastify.log.warn({ err }, 'cannot fetch the identity provider\'s keys (JWKS_URL); token checks answer 503 until a fetch succeeds')
      })
      // Imported once: given the secret's bytes, jose imports them again for every token, which
      // cost about as much as the signature check itself (docs/performance.md, connects).
      : await webcrypto.subtle.importKey('raw', new TextEncoder().encode(config.JWT_SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
  }
  const algorithms = config.JWKS_URL !== undefined ? ['RS256', 'ES256'] : ['HS256']

  const auth: Authenticator = {
    mode: config.AUTH_MODE,
    async verify (token) {
      if (getKey === undefined) throw unauthorized('authentication is not configured')
      try {
        const verifyOptions = { algorithms, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, clockTolerance: 5 }
        const { payload } = typeof getKey === 'function'
          ? await jwtVerify(token, getKey, verifyOptions)
          : await jwtVerify(token, getKey, verifyOptions)
        if (typeof payload.sub !== 'string' || !UUID.test(payload.sub)) throw unauthorized('the token subject must be a user uuid')
        // A token that never expires, or lives longer than JWT_MAX_AGE_S, is refused: a leaked
        // one would work (nearly) forever. Without iat, or with one in the future, the lifetime
        // left (exp - now) is what counts.
        if (payload.exp === undefined) throw unauthorized('the token must expire (exp)')
        const now = Math.floor(Date.now() / 1000)
        const lifetime = payload.exp - Math.min(payload.iat ?? now, now)
        if (lifetime > config.JWT_MAX_AGE_S) throw unauthorized(`the token lives longer than ${config.JWT_MAX_AGE_S} s (exp - iat)`)
        return { userId: payload.sub.toLowerCase(), expiresAt: payload.exp }
      } catch (error) {
        if (error instanceof HttpError) throw error
        if (error instanceof KeySetUnavailableError) throw new HttpError(503, 'unavailable', error.message)
        if (error instanceof joseErrors.JWTExpired) throw unauthorized('the token has expired')
        if (error instanceof joseErrors.JOSEError) throw unauthorized(`invalid token (${error.code})`)
        throw error
      }
    }
  }
  fastify.decorate('auth', auth)
  fastify.decorateRequest('identity', null)

  if (config.AUTH_MODE === 'jwt') {
    // Decided by the route the request matched, in whatever spelling it reached it; a request
    // that matched no route only gets the 404 answer.
    fastify.addHook('onRequest', async (request) => {
      if (request.is404 || isPublic(request)) return
      const token = bearerToken(request)
      if (token === undefined || token === '') throw unauthorized('a bearer token is required')
      request.identity = await auth.verify(token)
    })
  } else {
    fastify.log.warn('AUTH_MODE=none: callers are trusted to say who they are; use AUTH_MODE=jwt in production')
  }
}, { name: 'auth', dependencies: ['config', 'errors', 'access', 'websocket'] })
