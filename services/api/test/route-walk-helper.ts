// The route walk of route-walk.test.ts and load-balancer.test.ts: every route of the api's OpenAPI
// document, sent over real HTTP in every spelling of its path (percent-encoded characters in each
// segment, an absolute-form target, //, dot segments, a trailing slash, mixed case), as plain
// requests and as websocket upgrades, with no token and with the token of a user who is no member.
import type { Test } from 'tap'
import { Agent, request } from 'node:http'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { users } from '@chatty/db/testing'

const { alice, bob, eve } = users

export interface Answer {
  status: number
  /** The JSON body, when there is one. */
  body: any
}

/**
 * One request over HTTP/1.1 with `target` written as is on the request line (an absolute URL, //,
 * %61: nothing is normalised on the way). An upgrade that succeeds is status 101; its socket is
 * destroyed at once.
 */
export async function rawRequest (base: string, options: { method: string, target: string, headers?: Record<string, string>, body?: unknown, upgrade?: boolean, agent?: Agent }): Promise<Answer> {
  const { hostname, port } = new URL(base)
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
  const headers: Record<string, string> = { ...options.headers }
  if (payload !== undefined) headers['content-type'] = 'application/json'
  if (options.upgrade === true) {
    Object.assign(headers, { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') })
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method: options.method, path: options.target, headers, agent: options.upgrade === true ? false : options.agent }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { text += chunk })
      response.on('end', () => {
        let body: unknown
        try { body = text === '' ? undefined : JSON.parse(text) } catch { body = text }
        resolve({ status: response.statusCode ?? 0, body })
      })
      response.on('error', reject)
    })
    req.on('upgrade', (_response, socket) => {
      socket.destroy()
      resolve({ status: 101, body: undefined })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

export interface Variant {
  name: string
  /** The request target: a path (and query), or an absolute URL. */
  target: string
  /** Not canonical: must be refused with 400 bad_request, whoever asks. */
  refused: boolean
}

/** The spellings of `path` (with `query`, '' or '?...') that reach, or must not reach, its route. */
export function pathVariants (base: string, path: string, query: string): Variant[] {
  const segments = path.split('/').slice(1)
  const join = (parts: string[]) => `/${parts.join('/')}`
  const encode = (char: string, lower = false) => {
    const hex = char.charCodeAt(0).toString(16).padStart(2, '0')
    return `%${lower ? hex.toLowerCase() : hex.toUpperCase()}`
  }
  const variants: Variant[] = [{ name: 'canonical', target: path + query, refused: false }]
  if (path !== '/') variants.push({ name: 'trailing slash', target: `${path}/${query}`, refused: false })
  variants.push({ name: 'absolute form', target: `${base}${path}${query}`, refused: true })
  variants.push({ name: 'double slash at the end', target: `${path}${path === '/' ? '' : '/'}/${query}`, refused: true })
  segments.forEach((segment, i) => {
    const with_ = (replacement: string[]) => join([...segments.slice(0, i), ...replacement, ...segments.slice(i + 1)]) + query
    if (segment !== '') {
      variants.push({ name: `segment ${i + 1} with its first character percent-encoded`, target: with_([encode(segment[0]!) + segment.slice(1)]), refused: true })
      const dash = segment.indexOf('-')
      if (dash !== -1) variants.push({ name: `segment ${i + 1} with a %2d`, target: with_([segment.slice(0, dash) + encode('-', true) + segment.slice(dash + 1)]), refused: true })
      if (/[a-z]/.test(segment)) {
        const letter = segment.search(/[a-z]/)
        variants.push({ name: `segment ${i + 1} in mixed case`, target: with_([segment.slice(0, letter) + segment[letter]!.toUpperCase() + segment.slice(letter + 1)]), refused: false })
      }
    }
    variants.push({ name: `double slash before segment ${i + 1}`, target: with_(['', segment]), refused: true })
    variants.push({ name: `. before segment ${i + 1}`, target: with_(['.', segment]), refused: true })
    variants.push({ name: `x/.. before segment ${i + 1}`, target: with_(['x', '..', segment]), refused: true })
  })
  if (/[a-z]/.test(path)) variants.push({ name: 'upper case', target: path.toUpperCase() + query, refused: false })
  return variants
}

export interface WalkedRoute {
  method: string
  /** The OpenAPI path, /api/v1/chat/{chat_id}. */
  route: string
  /** The path with its parameters filled in. */
  path: string
  query: string
  body: unknown
  /** Declared public (an empty `security` in the document). */
  public: boolean
  /** Documents a 101 answer: also walked as a websocket upgrade. */
  upgrade: boolean
}

/** Values for path, query and body fields by name, the victim's where the field names a user. */
export interface WalkValues {
  params: Record<string, string>
  query: Record<string, string>
  body: Record<string, unknown>
}

/** The victim's values for every field a route may name: alice's conversation, message and id. */
export function victimValues (chat: string, message: string): WalkValues {
  return {
    params: { chat_id: chat, message_id: message, user_id: alice, blocked_id: bob, reaction: 'ok' },
    // user_id on the websocket names who connects: the victim.
    query: { user_id: alice, user_ids: alice, q: 'hello' },
    // No sender_id / user_id / actor_id in bodies: the token's user acts as themselves.
    body: { participant_ids: [alice, eve], user_ids: [eve], body: 'forged', until: '2099-01-01T00:00:00.000Z', message_id: message }
  }
}

/**
 * Every operation of an OpenAPI document, with its parameters and body filled in from `values`.
 * A route with a required field `values` does not name is an error: the walk must reach it.
 */
export function routesOf (document: any, values: WalkValues): WalkedRoute[] {
  const walked: WalkedRoute[] = []
  for (const [route, operations] of Object.entries<Record<string, any>>(document.paths)) {
    for (const [method, operation] of Object.entries<any>(operations)) {
      const parameters: any[] = operation.parameters ?? []
      const path = route.replace(/\{([^}]+)\}/g, (_, name: string) => {
        if (values.params[name] === undefined) throw new Error(`${method} ${route}: no value for the path parameter ${name}`)
        return values.params[name]
      })
      const query = new URLSearchParams()
      for (const parameter of parameters.filter((parameter) => parameter.in === 'query')) {
        const value = values.query[parameter.name]
        if (value !== undefined) query.set(parameter.name, value)
        else if (parameter.required === true && parameter.schema?.default === undefined) throw new Error(`${method} ${route}: no value for the query parameter ${parameter.name}`)
      }
      const schema = operation.requestBody?.content?.['application/json']?.schema
      let body: Record<string, unknown> | undefined
      if (schema !== undefined) {
        body = {}
        for (const name of Object.keys(schema.properties ?? {})) {
          if (values.body[name] !== undefined) body[name] = values.body[name]
          else if ((schema.required ?? []).includes(name)) throw new Error(`${method} ${route}: no value for the body field ${name}`)
        }
      }
      walked.push({
        method: method.toUpperCase(),
        route,
        path,
        query: query.size === 0 ? '' : `?${query}`,
        body,
        public: Array.isArray(operation.security) && operation.security.length === 0,
        upgrade: operation.responses?.['101'] !== undefined
      })
    }
  }
  return walked
}

export interface WalkResult {
  requests: number
  statuses: Map<number, number>
}

/**
 * Sends every variant of every route (and, for GET routes, the same as a websocket upgrade) with
 * each of `credentials`, and checks each answer: a non-canonical spelling is 400 bad_request; a
 * route that is not public never answers 2xx or 101, and without a token it is 401 (404 where
 * mixed case names no route, 400 for an upgrade of a route that is no websocket). Public routes
 * are only checked for the refused spellings.
 */
export async function walkRoutes (t: Test, base: string, routes: WalkedRoute[], credentials: Array<{ name: string, headers: Record<string, string>, query?: Record<string, string> }>): Promise<WalkResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 })
  const statuses = new Map<number, number>()
  const failures: string[] = []
  let requests = 0
  try {
    for (const route of routes) {
      for (const credential of credentials) {
        const extra = new URLSearchParams(credential.query ?? {})
        const query = extra.size === 0 ? route.query : `${route.query === '' ? '?' : `${route.query}&`}${extra}`
        for (const variant of pathVariants(base, route.path, query)) {
          for (const upgrade of route.method === 'GET' ? [false, true] : [false]) {
            const answer = await rawRequest(base, { method: route.method, target: variant.target, headers: credential.headers, body: route.body, upgrade, agent })
            requests++
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
            const what = `${credential.name}: ${route.method} ${variant.target}${upgrade ? ' (upgrade)' : ''} [${variant.name}] -> ${answer.status} ${JSON.stringify(answer.body)?.slice(0, 160)}`
            if (variant.refused) {
              if (answer.status !== 400 || answer.body?.code !== 'bad_request') failures.push(`not refused: ${what}`)
              continue
            }
            if (route.public) continue
            if ((answer.status >= 200 && answer.status < 300) || answer.status === 101) failures.push(`accepted: ${what}`)
            else if (Object.keys(credential.headers).length === 0 && credential.query === undefined && ![401, 404].includes(answer.status) &&
              !(upgrade && !route.upgrade && answer.status === 400)) failures.push(`not 401: ${what}`)
            else if (answer.status < 400 || answer.status >= 500 || typeof answer.body?.code !== 'string') failures.push(`not a 4xx {error, code}: ${what}`)
          }
        }
      }
    }
  } finally {
    agent.destroy()
  }
  t.same(failures.slice(0, 20), [], `${requests} requests: every spelling refused or answered without access (${failures.length} failures)`)
  return { requests, statuses }
}

/** The tables a request could change, each as a row count and a digest of every row. */
const TABLES = ['chat.conversation', 'chat.participant', 'chat.message', 'chat.message_event', 'chat.reaction', 'chat.receipt', 'chat.block', 'chat.presence', 'graphile_worker._private_jobs']

export async function storedState (dbUrl: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  try {
    const state: Record<string, string> = {}
    for (const table of TABLES) {
      const { rows } = await client.query<{ n: number, digest: string | null }>(`SELECT count(*)::int AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS digest FROM ${table} t`)
      state[table] = `${rows[0]!.n} rows ${rows[0]!.digest ?? ''}`
    }
    return state
  } finally {
    await client.end()
  }
}
