// Who may use the dashboard. With JOBS_ADMIN_TOKEN set, a request must carry the token as
// `Authorization: Bearer <token>`, or the HttpOnly session cookie that logging in with the token
// sets for the page; without it the dashboard is open (bind JOBS_ADMIN_HOST to a private address).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

export const SESSION_COOKIE = 'chatty_jobs_admin'
const SESSION_MAX_AGE_S = 12 * 3600

export interface AdminAuth {
  readonly required: boolean
  /** The request carries the token or a session cookie made from it. */
  allows (headers: IncomingHttpHeaders): boolean
  /** A token typed into the login form or passed as ?token=. */
  isToken (candidate: string): boolean
  /** Set-Cookie values that start and end a page session. */
  sessionCookie (secure: boolean): string
  clearedCookie (secure: boolean): string
}

// Hashing both sides first gives equal lengths, so the comparison takes the same time whatever
// the candidate; the session value is derived from the token, so changing the token ends sessions.
const digest = (text: string) => createHash('sha256').update(text).digest()
const sameSecret = (candidate: string, expected: Buffer) => timingSafeEqual(digest(candidate), expected)

function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const at = part.indexOf('=')
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim()
  }
  return undefined
}

function bearerToken (header: string | undefined): string | undefined {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')
  return match?.[1]
}

export function createAdminAuth (token: string | undefined): AdminAuth {
  const attributes = (secure: boolean) => `Path=/admin; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
  if (token === undefined) {
    return {
      required: false,
      allows: () => true,
      isToken: () => true,
      sessionCookie: (secure) => `${SESSION_COOKIE}=open; Max-Age=0; ${attributes(secure)}`,
      clearedCookie: (secure) => `${SESSION_COOKIE}=; Max-Age=0; ${attributes(secure)}`
    }
  }
  const expectedToken = digest(token)
  const session = createHmac('sha256', token).update('chatty-jobs-admin-session-v1').digest('base64url')
  const expectedSession = digest(session)
  return {
    required: true,
    allows (headers) {
      const bearer = bearerToken(headers.authorization)
      if (bearer !== undefined) return sameSecret(bearer, expectedToken)
      const cookie = cookieValue(headers.cookie, SESSION_COOKIE)
      return cookie !== undefined && sameSecret(cookie, expectedSession)
    },
    isToken: (candidate) => sameSecret(candidate, expectedToken),
    sessionCookie: (secure) => `${SESSION_COOKIE}=${session}; Max-Age=${SESSION_MAX_AGE_S}; ${attributes(secure)}`,
    clearedCookie: (secure) => `${SESSION_COOKIE}=; Max-Age=0; ${attributes(secure)}`
  }
}
