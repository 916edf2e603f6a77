// The pino options of a chatty service process. No credential reaches a log line: the request
// serializer redacts credential-like query parameters in the logged url (the websocket's
// ?access_token=, the jobs dashboard's ?token=), and pino's `redact` censors credential headers
// and the raw bytes of a refused request wherever a line holds them.

export const REDACTED = '[redacted]'

/** Query parameter names whose value is a credential, or may be one. */
const CREDENTIAL_PARAM = /token|secret|passw|signature|credential|api[-_]?key|^sig$|^key$|^code$|^auth/i

/** Paths pino censors in every line, after the serializers ran (`*` is any top-level key). */
export const REDACT_PATHS = [
  ...['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-chatty-signature'].flatMap((header) => [
    `headers["${header}"]`,
    `*.headers["${header}"]`
  ]),
  ...['access_token', 'token'].flatMap((param) => [`query.${param}`, `*.query.${param}`]),
  // Node's HTTP parser errors carry the refused request's bytes, headers included.
  'rawPacket',
  '*.rawPacket'
]

function isCredentialParam (rawName: string): boolean {
  let name: string
  try {
    name = decodeURIComponent(rawName.replace(/\+/g, ' '))
  } catch {
    // A name that does not decode cannot be told apart: its value is hidden.
    return true
  }
  return CREDENTIAL_PARAM.test(name)
}

/** The url with the value of every credential-like query parameter replaced by [redacted]. */
export function redactUrl (url: string): string {
  const at = url.indexOf('?')
  if (at === -1) return url
  const params = url.slice(at + 1).split('&').map((param) => {
    const eq = param.indexOf('=')
    if (eq === -1) return param
    return isCredentialParam(param.slice(0, eq)) ? `${param.slice(0, eq)}=${REDACTED}` : param
  })
  return `${url.slice(0, at)}?${params.join('&')}`
}

/** What Fastify hands the `req` serializer: its request (ip, host) or Node's. */
export interface LoggedRequest {
  method?: string
  url?: string
  headers?: Record<string, string | string[] | undefined>
  host?: string
  ip?: string
  socket?: { remotePort?: number } | null
}

const firstValue = (value: string | string[] | undefined): string | undefined => Array.isArray(value) ? value[0] : value

/** Fastify's own request fields (method, url, host, client address), with the url redacted. */
export function serializeRequest (request: LoggedRequest) {
  return {
    method: request.method,
    url: request.url === undefined ? undefined : redactUrl(request.url),
    version: firstValue(request.headers?.['accept-version']),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}

export interface LoggerOptions {
  level: string
  redact: { paths: string[], censor: string }
  serializers: { req: typeof serializeRequest }
  transport?: { target: string, options: Record<string, unknown> }
}

/** Fastify's `logger` option of a service process: JSON lines, or pino-pretty on a terminal. */
export function loggerOptions (options: { level: string, pretty: boolean }): LoggerOptions {
  return {
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    serializers: { req: serializeRequest },
    ...(options.pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } } : {})
  }
}
