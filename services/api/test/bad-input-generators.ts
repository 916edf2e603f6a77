// Generators of bad (and good) REST requests for bad-input.test.ts: JSON written by hand, the
// fast-check arbitraries per route, how an answer is checked and what it should have stored.
import type { Test } from 'tap'
import fc from 'fast-check'
import { isUtf8 } from 'node:buffer'
import pg from 'pg'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { onTeardown, users } from '@chatty/db/testing'

export const { alice, bob, eve } = users
/** A member whose id has letters, so that its upper-case spelling differs (alice's and bob's are digits). */
export const dave = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd'
export const DAVE = dave.toUpperCase()
/** Any uuid, in either letter case. */
export const anyUuid = fc.tuple(fc.uuid(), fc.boolean()).map(([id, upper]) => (upper ? id.toUpperCase() : id))
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export const ERROR_CODES = new Set(['bad_request', 'unauthorized', 'forbidden', 'not_found', 'conflict', 'payload_too_large', 'unsupported_media_type', 'uri_too_long'])
// Thousands of requests from one address and user: the abuse limits would answer 429 after 600.
export const NO_LIMITS = { RATE_LIMIT_IP_MAX: 1_000_000_000, RATE_LIMIT_USER_MAX: 1_000_000_000 }
export const SECRET = 'bad-input-secret-bad-input-secret!!'

// ---- JSON written by hand -------------------------------------------------------------------------

/** JSON text JSON.stringify cannot produce: -0, 1e400, NaN, 10k-deep nesting, broken syntax. */
export class RawJson {
  readonly text: string
  constructor (text: string) {
    this.text = text
  }
}
export const raw = (text: string) => new RawJson(text)

/** An object body as ordered members; a key may repeat, and the last one counts (JSON.parse). */
export type Members = Array<[string, unknown]>
export class ObjectBody {
  readonly members: Members
  constructor (members: Members) {
    this.members = members
  }
}

/** How the text is laid out: both keep the meaning (whitespace between tokens, \u escapes). */
export interface Layout { space: string, escape: boolean }

export function quote (value: string, layout: Layout): string {
  if (!layout.escape) return JSON.stringify(value)
  let text = '"'
  for (let i = 0; i < value.length; i++) text += `\\u${value.charCodeAt(i).toString(16).padStart(4, '0')}`
  return `${text}"`
}

export function toJson (value: unknown, layout: Layout): string {
  const s = layout.space
  if (value instanceof RawJson) return value.text
  if (value instanceof ObjectBody) return `{${s}${value.members.map(([key, member]) => `${quote(key, layout)}${s}:${s}${toJson(member, layout)}`).join(`${s},${s}`)}${s}}`
  if (typeof value === 'string') return quote(value, layout)
  if (Array.isArray(value)) return `[${s}${value.map((item) => toJson(item, layout)).join(`${s},${s}`)}${s}]`
  if (value !== null && typeof value === 'object') return toJson(new ObjectBody(Object.entries(value)), layout)
  return JSON.stringify(value)
}

export const deepArray = (levels: number) => raw('['.repeat(levels) + ']'.repeat(levels))
export const deepObject = (levels: number) => raw('{"a":'.repeat(levels) + '1' + '}'.repeat(levels))

/** Percent-encodes every byte outside RFC 3986's unreserved set: any bytes, even invalid UTF-8, make one segment. */
export function encode (value: string | Uint8Array): string {
  let text = ''
  for (const byte of Buffer.from(value)) {
    const char = String.fromCharCode(byte)
    text += /[A-Za-z0-9._~-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return text
}

// ---- generators -------------------------------------------------------------------------------------

export const NASTY = [
  '😀', '👩‍👩‍👧‍👦', '🏳️‍🌈', '\u202e', '\u202d', '\u200f', 'مرحبا', 'שלום', '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff',
  'e\u0301', 'Z̤͔ͧ̑̓', '𝕳', '\u{10ffff}', '\ufffd', '\ufffe', '<script>', "'; DROP TABLE chat.message; --", '%s%n', '\\', '"',
  '\u2028', '\u2029', '\t', '\r\n', ' ', '__proto__', 'constructor'
]
export const BLANKS = [' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\u1680', '\u2000', '\u2003', '\u2028', '\u3000', '\ufeff']
export const UNSTORABLE_CHARS = ['\u0000', '\ud800', '\udbff', '\udc00', '\udfff']

/** What Postgres text holds exactly as sent: no NUL, no lone surrogate. */
export const storable = (text: string) => !/[\u0000\p{Cs}]/u.test(text)
export const codePoints = (text: string) => [...text].length

export const anyText = fc.array(fc.oneof(fc.constantFrom(...NASTY), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 6 })), { maxLength: 10 })
  .map((parts) => parts.join(''))
export const storableText = anyText.filter(storable)
/** A message body the rules accept: not blank once trimmed, at most 4000 characters. */
export const validText = fc.oneof(
  { weight: 20, arbitrary: storableText.filter((text) => text.trim() !== '' && codePoints(text.trim()) <= 4000) },
  { weight: 1, arbitrary: fc.constantFrom(` ${'😀'.repeat(4000)}\n`, '\u202e'.repeat(4000), `${'e\u0301'.repeat(2000)}`, '\u200b') }
)
export const blankText = fc.array(fc.constantFrom(...BLANKS), { maxLength: 8 }).map((parts) => parts.join(''))
export const unstorableText = fc.tuple(storableText, fc.constantFrom(...UNSTORABLE_CHARS), storableText).map(([before, bad, after]) => `${before}${bad}x${after}`)
export const tooLongText = fc.tuple(fc.integer({ min: 4001, max: 9000 }), fc.constantFrom('x', '😀', 'é', '\u202e')).map(([n, char]) => char.repeat(n))

export const validUrl = fc.oneof(
  fc.webUrl({ validSchemes: ['http', 'https'], withQueryParameters: true, withFragments: true }).filter((url) => url.length <= 2048 && storable(url)),
  fc.constantFrom('https://例え.jp/😀?q=\u202e', '  http://a.example/x  ', 'https://cdn.example/' + 'a'.repeat(2000), 'HTTPS://CDN.EXAMPLE/A.PNG')
)
export const invalidUrl = fc.oneof(
  fc.constantFrom('javascript:alert(1)', 'file:///etc/passwd', 'ftp://a.example/x', 'data:text/html,<script>', '/relative.png', 'http://', '//a.example/x',
    'a.example/x', `https://a.example/${'a'.repeat(2100)}`, 'http://a.example/\u0000', 'https://a.example/\ud800x'),
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 30 }).filter((text) => !/^\s*https?:/i.test(text) && text.trim() !== '')
)

/** A JSON value with no key the body parser refuses (those are tested on their own). */
export const plainJson = fc.jsonValue({ maxDepth: 3 }).filter((value) => {
  const text = JSON.stringify(value)
  return !text.includes('"__proto__"') && !text.includes('"constructor"')
})
export const validMeta = fc.oneof(
  { weight: 6, arbitrary: plainJson.filter((value) => value !== null && Buffer.byteLength(JSON.stringify(value)) <= 4096).map((value) => raw(JSON.stringify(value))) },
  {
    weight: 3,
    arbitrary: fc.constantFrom('1e308', '-1e308', '-0', '5e-324', '1e400', '123456789012345678901234567890', '"\\ud83d\\ude00"', '"\\u202e\\u200b"',
      '{"a":"\\u0000"}', '{"\\ud800":"\\udfff"}', '{"a":1,"a":2}', '[]', '{}', '""', 'false', '0').map(raw)
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 2000 }).map(deepArray) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 600 }).map(deepObject) }
)
export const invalidMeta = fc.oneof(
  fc.integer({ min: 4100, max: 20_000 }).map((n) => 'm'.repeat(n)),
  fc.constantFrom(deepArray(10_000), deepObject(10_000), deepArray(2100), raw(`[${'"😀",'.repeat(700)}0]`))
)

export const validDedupe = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((key) => storable(key) && key.length <= 50)
export const invalidDedupe = fc.oneof(
  fc.constant(''),
  fc.integer({ min: 65, max: 300 }).map((n) => 'k'.repeat(n)),
  fc.integer({ min: 33, max: 64 }).map((n) => '😀'.repeat(n)),
  unstorableText
)

export const finiteNumber = fc.double({ noNaN: true, noDefaultInfinity: true })
/** Any JSON value that is not a string and not null. */
export const notStringNorNull = fc.oneof(fc.integer(), finiteNumber, fc.boolean(), fc.array(plainJson, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), plainJson, { maxKeys: 3 }),
  fc.constantFrom(raw('1e308'), raw('-0'), raw('1e400'), raw('[[[[[[[[]]]]]]]]')))
/** Strings that are not a uuid as Postgres reads one. */
export const notUuidText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
  fc.constantFrom(`urn:uuid:${alice}`, `{${alice}}`, alice.replaceAll('-', ''), `${alice} `, ` ${alice}`, `${alice}\u0000`, `${alice}x`, alice.slice(1),
    'null', 'undefined', '__proto__', 'constructor', '0', '-1', '1e308', 'NaN', '../..', '%00', '00000000-0000-0000-0000-00000000000g')
).filter((text) => !UUID.test(text))

export const knownMsgType = fc.constantFrom<unknown>(undefined, null, 0, raw('-0'), raw('0.0'), raw('0e5'))
export const invalidMsgType = fc.oneof(
  fc.constantFrom<unknown>(3, 4, -1, 255, 1.5, raw('1e308'), raw('-1e308'), raw('5e-324'), raw('1e400'), raw('9007199254740993'), '0', '1', true, [], {}, [0]),
  fc.integer().filter((n) => n < 0 || n > 3)
)

export const spaces = fc.constantFrom('', ' ', '\n\t', '\r\n  ')
export const layout = fc.record({ space: spaces, escape: fc.boolean() })

/** Header values a real HTTP parser lets through: printable Latin-1. */
export const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c < 0x7f || c >= 0xa0).map((c) => String.fromCharCode(c)), maxLength: 60 })
export const junkHeaders = fc.record({
  accept: fc.option(fc.oneof(headerText, fc.constantFrom('application/json', 'text/html', '*/*', 'application/xml;q=0.9')), { nil: undefined }),
  'x-forwarded-for': fc.option(fc.oneof(headerText, fc.ipV4(), fc.ipV6()), { nil: undefined }),
  'user-agent': fc.option(headerText, { nil: undefined }),
  'content-encoding': fc.option(fc.constantFrom('gzip', 'br', 'identity', 'x'), { nil: undefined }),
  'accept-language': fc.option(headerText, { nil: undefined })
}, { requiredKeys: [] })

// ---- requests, answers and what is stored -------------------------------------------------------------

export interface Request {
  method: NonNullable<InjectOptions['method']>
  url: string
  headers: Record<string, string | string[]>
  payload?: Buffer
  /** The decoded user ids of a block route, for the model. */
  block?: [string, string]
}

export function jsonRequest (method: Request['method'], url: string, body: unknown, layout: Layout, headers: Record<string, string | string[] | undefined> = {}): Request {
  return { method, url, headers: clean({ 'content-type': 'application/json', ...headers }), payload: Buffer.from(toJson(body, layout)) }
}

export function clean (headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(headers).filter((entry): entry is [string, string | string[]] => entry[1] !== undefined))
}

/** Never a 5xx; an error is exactly {error, code} in JSON with a known code and no stack trace. */
export function checkAnswer (request: Request, res: LightMyRequestResponse): void {
  const problem = (what: string) => new Error(`${what}: ${request.method} ${request.url.slice(0, 300)} ` +
    `${JSON.stringify(request.headers).slice(0, 300)} ${request.payload?.toString('latin1').slice(0, 300) ?? ''} -> ${res.statusCode} ${res.body.slice(0, 300)}`)
  if (res.statusCode >= 500) throw problem('a 5xx')
  if (res.statusCode === 429) throw problem('rate limited (the limits are off here)')
  if (request.method === 'HEAD' || res.statusCode === 204) return
  if (!/^application\/json/.test(String(res.headers['content-type']))) throw problem('not JSON')
  let body: unknown
  try {
    body = JSON.parse(res.body)
  } catch {
    throw problem('unparseable JSON')
  }
  if (res.statusCode < 400) return
  const { error, code, ...rest } = body as Record<string, unknown>
  if (typeof error !== 'string' || typeof code !== 'string' || Object.keys(rest).length > 0) throw problem('not {error, code}')
  if (!ERROR_CODES.has(code)) throw problem(`unknown code ${code}`)
  if (/\bat .+\.(ts|js):\d+/.test(error)) throw problem('a stack trace in the error')
}

/** Everything a request could store, as a model compares it. */
export interface Stored {
  conversations: number
  messages: number
  receipts: number
  /** "conversation/user" -> muted_until in ms since the epoch, or null. */
  members: Map<string, number | null>
  /** "blocker/blocked". */
  blocks: Set<string>
  jobs: number
  /** message_id of each queued chat:send_message job. */
  queued: Set<string>
  /** Edit and delete events. */
  events: number
  /** message id -> "body|edited|deleted" of every message edited or deleted. */
  changed: Map<string, string>
}

export async function readStored (client: pg.Client): Promise<Stored> {
  const count = async (table: string) => (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n
  const members = await client.query<{ key: string, muted_ms: number | null }>(
    "SELECT conversation_id || '/' || user_id AS key, (extract(epoch FROM muted_until) * 1000)::float8 AS muted_ms FROM chat.participant")
  const blocks = await client.query<{ key: string }>("SELECT blocker_id || '/' || blocked_id AS key FROM chat.block")
  // The Postgres queue adapter writes graphile-worker 0.18's jobs table directly.
  const jobs = await client.query<{ message_id: string | null }>("SELECT payload->>'message_id' AS message_id FROM graphile_worker._private_jobs")
  const changed = await client.query<{ id: string, state: string }>(
    "SELECT id, concat_ws('|', body, (edited_at IS NOT NULL)::text, (deleted_at IS NOT NULL)::text) AS state FROM chat.message WHERE edited_at IS NOT NULL OR deleted_at IS NOT NULL")
  return {
    conversations: await count('chat.conversation'),
    messages: await count('chat.message'),
    receipts: await count('chat.receipt'),
    members: new Map(members.rows.map((row) => [row.key, row.muted_ms])),
    blocks: new Set(blocks.rows.map((row) => row.key)),
    jobs: jobs.rows.length,
    queued: new Set(jobs.rows.flatMap((row) => (row.message_id === null ? [] : [row.message_id]))),
    events: await count('chat.message_event'),
    changed: new Map(changed.rows.map((row) => [row.id, row.state]))
  }
}

/** Adds to the model exactly what an accepted answer says was stored. */
export function account (model: Stored, request: Request, res: LightMyRequestResponse): void {
  const path = request.url.split('?')[0]!
  if (request.method === 'POST' && res.statusCode === 201) {
    const created = res.json<{ id: string, participant_ids: string[] }>()
    model.conversations++
    for (const user of created.participant_ids) model.members.set(`${created.id}/${user.toLowerCase()}`, null)
  } else if (request.method === 'POST' && res.statusCode === 202) {
    model.jobs++
    model.queued.add(res.json<{ message_id: string }>().message_id)
  } else if (request.method === 'PUT' && res.statusCode === 200 && path.endsWith('/mute')) {
    const mute = res.json<{ conversation_id: string, user_id: string, muted_until: string | null }>()
    model.members.set(`${mute.conversation_id.toLowerCase()}/${mute.user_id.toLowerCase()}`, mute.muted_until === null ? null : Date.parse(mute.muted_until))
  } else if ((request.method === 'PATCH' || request.method === 'DELETE') && res.statusCode === 200 && /\/messages\/[^/]+$/.test(path)) {
    const change = res.json<{ seq: number | null, message: { id: string, body: string | null, edited_at: string | null, deleted_at: string | null } }>()
    if (change.seq !== null) model.events++
    const { message } = change
    model.changed.set(message.id, [message.body, message.edited_at !== null, message.deleted_at !== null].filter((part) => part !== null).join('|'))
  } else if (res.statusCode === 204 && request.block !== undefined) {
    const key = request.block.map((id) => id.toLowerCase()).join('/')
    if (request.method === 'PUT') model.blocks.add(key)
    else model.blocks.delete(key)
  } else if (res.statusCode < 300 && request.method !== 'GET' && request.method !== 'HEAD') {
    throw new Error(`an accepted ${request.method} ${path} the model does not know: ${res.statusCode}`)
  }
}

export const sorted = <T>(values: Iterable<T>) => [...values].map(String).sort()

export async function sameStored (t: Test, client: pg.Client, expected: Stored, what: string): Promise<void> {
  const actual = await readStored(client)
  t.same(
    { conversations: actual.conversations, messages: actual.messages, receipts: actual.receipts, jobs: actual.jobs, events: actual.events },
    { conversations: expected.conversations, messages: expected.messages, receipts: expected.receipts, jobs: expected.jobs, events: expected.events },
    `${what}: row counts`)
  t.same(sorted(actual.members), sorted(expected.members), `${what}: members and their mutes`)
  t.same(sorted(actual.blocks), sorted(expected.blocks), `${what}: blocks`)
  t.same(sorted(actual.queued), sorted(expected.queued), `${what}: queued sends`)
  t.same(sorted(actual.changed), sorted(expected.changed), `${what}: edited and deleted messages`)
}

export const copy = (stored: Stored): Stored => ({ ...stored, members: new Map(stored.members), blocks: new Set(stored.blocks), queued: new Set(stored.queued), changed: new Map(stored.changed) })

/** Runs requests against the app, checks every answer, and tallies statuses. */
export function makeSender (app: FastifyInstance, model?: Stored) {
  const statuses = new Map<number, number>()
  const send = async (request: Request): Promise<LightMyRequestResponse> => {
    const res = await app.inject({ method: request.method, url: request.url, headers: request.headers, payload: request.payload })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    checkAnswer(request, res)
    if (model !== undefined) account(model, request, res)
    return res
  }
  const tally = () => [...statuses].sort(([a], [b]) => a - b).map(([status, n]) => `${status} x${n}`).join(', ')
  const total = () => [...statuses.values()].reduce((sum, n) => sum + n, 0)
  return { send, tally, total, statuses }
}

export async function connect (t: Test, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  onTeardown(t, () => client.end())
  return client
}

// ---- the generators of requests, per route ----------------------------------------------------------

export interface Fixture {
  /** alice, bob and dave's conversation. */
  chat: string
  /** Dave's text message in it, for edits. */
  mine: string
  /** Another text message of dave's, for deletes. */
  doomed: string
  /** Bob's message: dave may neither edit nor delete it. */
  theirs: string
}

/** A JSON request before it is written out, so that mutations can still change its members. */
export interface Spec {
  method: Request['method']
  url: string
  members: Members
  layout: Layout
  headers: Record<string, string | undefined>
  block?: [string, string]
}

export const write = (spec: Spec, body: unknown = new ObjectBody(spec.members)): Request =>
  ({ ...jsonRequest(spec.method, spec.url, body, spec.layout, spec.headers), block: spec.block })

/** What a valid send must store. */
export interface Expected {
  sender_id: string
  body: string | null
  msg_type: number
  attachment_url: string | null
  /** attachment_meta as JSON text, or null. */
  meta: string | null
  dedupe_key: string | null
}

export const KNOWN_SEND_KEYS = ['sender_id', 'body', 'msg_type', 'attachment_url', 'attachment_meta', 'dedupe_key']
/** Fields the api must ignore, the server's own among them. */
export const extraMember = fc.tuple(
  fc.oneof(fc.string({ maxLength: 12 }).filter((key) => !KNOWN_SEND_KEYS.includes(key) && key !== '__proto__' && key !== 'constructor'),
    fc.constantFrom('id', 'seq', 'created_at', 'conversation_id', 'task_id', 'message_id', 'toString', 'hasOwnProperty')),
  plainJson)
export const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8', ' application/json')

export function validSendArb (fixture: Fixture): fc.Arbitrary<{ spec: Spec, expected: Expected }> {
  return fc.record({
    sender: fc.constantFrom(alice, bob, dave, DAVE),
    kind: fc.constantFrom('text', 'text', 'link', 'image', 'file'),
    text: validText,
    blank: fc.oneof(blankText, fc.constant(undefined), fc.constant(null)),
    url: validUrl,
    msgType: knownMsgType,
    meta: fc.option(validMeta, { nil: undefined }),
    dedupe: fc.option(validDedupe, { nil: undefined }),
    // Keys first sent with a wrong value and then again with a right one: the last one counts.
    decoys: fc.subarray(['sender_id', 'body', 'msg_type', 'attachment_url', 'dedupe_key']),
    extra: fc.array(extraMember, { maxLength: 3 }),
    layout,
    headers: junkHeaders,
    contentType
  }).map(({ sender, kind, text, blank, url, msgType, meta, dedupe, decoys, extra, layout, headers, contentType }) => {
    const msgTypeValue = kind === 'image' ? 1 : kind === 'file' ? 2 : msgType
    const withUrl = kind !== 'text'
    const body: unknown = kind === 'image' || kind === 'file' ? blank : text
    const members: Members = [['sender_id', sender]]
    if (body !== undefined) members.push(['body', body])
    if (msgTypeValue !== undefined) members.push(['msg_type', msgTypeValue])
    if (withUrl) members.push(['attachment_url', url])
    if (meta !== undefined) members.push(['attachment_meta', meta])
    if (dedupe !== undefined) members.push(['dedupe_key', dedupe])
    const decoyValues: Record<string, unknown> = { sender_id: 'nobody', body: 42, msg_type: 3, attachment_url: 'javascript:x', dedupe_key: '' }
    for (const key of decoys) if (members.some(([name]) => name === key)) members.unshift([key, decoyValues[key]])
    members.splice(Math.floor(members.length / 2), 0, ...extra)
    const trimmed = typeof body === 'string' ? body.trim() : ''
    const metaValue = meta === undefined ? null : JSON.parse(meta.text) as unknown
    return {
      spec: { method: 'POST' as const, url: `/api/v1/chat/${fixture.chat}`, members, layout, headers: { ...headers, 'content-type': contentType } },
      expected: {
        sender_id: sender.toLowerCase(),
        body: trimmed === '' ? null : trimmed,
        msg_type: typeof msgTypeValue === 'number' ? msgTypeValue : 0,
        attachment_url: withUrl ? url.trim() || null : null,
        // Stored as JSON.stringify of what was parsed: 1e400 is Infinity, which is null.
        meta: metaValue === null || JSON.stringify(metaValue) === 'null' ? null : JSON.stringify(metaValue),
        dedupe_key: dedupe ?? null
      }
    }
  })
}

/** A member appended last (so it counts), with others appended just before it. */
export const override = (spec: Spec, member: [string, unknown], before: Members = []): Spec => ({ ...spec, members: [...spec.members, ...before, member] })

export function invalidSendMembers (valid: fc.Arbitrary<{ spec: Spec }>): fc.Arbitrary<Spec> {
  const set = (key: string, values: fc.Arbitrary<unknown>, before: Members = []) =>
    fc.tuple(valid, values).map(([{ spec }, value]) => override(spec, [key, value], before))
  return fc.oneof(
    set('sender_id', fc.oneof(notUuidText, notStringNorNull, fc.constant(null))),
    set('sender_id', fc.oneof(fc.constant(eve), anyUuid.filter((id) => ![alice, bob, dave].includes(id.toLowerCase())))), // not a member: 403
    valid.map(({ spec }) => ({ ...spec, members: spec.members.filter(([key]) => key !== 'sender_id') })), // none mode needs it
    set('body', fc.oneof(notStringNorNull, unstorableText, tooLongText)),
    set('body', fc.oneof(blankText, fc.constant(null)), [['attachment_url', null], ['msg_type', 0]]), // no content at all
    set('msg_type', invalidMsgType),
    set('msg_type', fc.constantFrom(1, 2), [['attachment_url', null]]), // image or file without a url
    set('attachment_url', fc.oneof(invalidUrl, notStringNorNull)),
    set('attachment_meta', invalidMeta),
    set('dedupe_key', fc.oneof(invalidDedupe, notStringNorNull))
  )
}

/** Request-level breakage that makes any JSON request invalid, whatever its members say. */
export function breakRequest (specs: fc.Arbitrary<Spec>): fc.Arbitrary<Request> {
  const invalidUtf8 = fc.oneof(
    fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xc0, 0xaf], [0xf8, 0x88, 0x80, 0x80, 0x80]).map((bytes) => Buffer.from(bytes)),
    fc.uint8Array({ minLength: 1, maxLength: 12 }).map((bytes) => Buffer.from(bytes)).filter((bytes) => !isUtf8(bytes))
  )
  const insertBeforeEnd = (request: Request, insert: Buffer): Request => {
    const text = request.payload!
    const end = text.lastIndexOf('}')
    return { ...request, payload: Buffer.concat([text.subarray(0, end), Buffer.from(','), insert, text.subarray(end)]) }
  }
  return fc.oneof(
    // Not an object at all.
    fc.tuple(specs, fc.oneof(fc.array(plainJson, { maxLength: 3 }), fc.string(), finiteNumber, fc.boolean(), fc.constant(null), fc.constantFrom(deepArray(10_000), deepObject(10_000), raw(''), raw(' '))))
      .map(([spec, body]) => write(spec, body)),
    // Broken JSON: cut short, or a member that is not JSON.
    fc.tuple(specs, fc.nat()).map(([spec, cut]) => {
      const request = write(spec)
      const end = request.payload!.lastIndexOf('}')
      return { ...request, payload: request.payload!.subarray(0, cut % end) }
    }),
    fc.tuple(specs, fc.constantFrom('"x":NaN', '"x":Infinity', '"x":-Infinity', '"x":undefined', '"x":0x10', '"x":01', '"x":.5', '"x":+1', "'x':1", '"x":1,', '/* c */"x":1',
      '"x":"\t"', '"x":"\\x41"', '"x":"\\ud800', '"body":"a"b"', '"x"', '"x":[1,]', '"x":{,}'))
      .map(([spec, member]) => insertBeforeEnd(write(spec), Buffer.from(member))),
    // Not UTF-8: in a member the api ignores, or in the message body itself.
    fc.tuple(specs, invalidUtf8, fc.boolean()).map(([spec, bytes, inBody]) =>
      insertBeforeEnd(write(spec), Buffer.concat([Buffer.from(inBody ? '"body":"a' : '"note":"a'), bytes, Buffer.from('b"')]))),
    // Prototype pollution, at the top or nested, plain or \u-escaped.
    fc.tuple(specs, fc.constantFrom('"__proto__":{"admin":true}', '"constructor":{"prototype":{"admin":true}}', '"\\u005f\\u005fproto__":{"x":1}',
      '"attachment_meta":{"a":[{"__proto__":{"x":1}}]}', '"attachment_meta":{"constructor":{"prototype":{}}}', `"attachment_meta":${'{"a":'.repeat(2000)}{"__proto__":1}${'}'.repeat(2000)}`))
      .map(([spec, member]) => insertBeforeEnd(write(spec), Buffer.from(member))),
    // Not JSON by its content type.
    fc.tuple(specs, fc.constantFrom<string | undefined>(undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml',
      'application/jsonx', 'text/json', 'application/problem+json', '*/*', 'application/json, text/plain'))
      .map(([spec, type]) => write({ ...spec, headers: { ...spec.headers, 'content-type': type } })),
    // Larger than BODY_LIMIT (64 KiB): whitespace that would otherwise not matter.
    fc.tuple(specs, fc.integer({ min: 65_537, max: 90_000 })).map(([spec, size]) => {
      const request = write(spec)
      return { ...request, payload: Buffer.concat([request.payload!, Buffer.alloc(Math.max(0, size - request.payload!.length), ' ')]) }
    })
  )
}

/** A path segment that is not a uuid: text or raw bytes (often not UTF-8), percent-encoded. */
export const badSegment = fc.oneof(
  { weight: 3, arbitrary: notUuidText.map((text) => ({ text, segment: encode(text) })) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }).filter((bytes) => !UUID.test(Buffer.from(bytes).toString())).map((bytes) => ({ text: Buffer.from(bytes).toString('latin1'), segment: encode(bytes) })) },
  { weight: 1, arbitrary: fc.string({ minLength: 201, maxLength: 400 }).map((text) => ({ text, segment: encode(text) })) } // over maxParamLength: 414
)

export function invalidSendArb (fixture: Fixture): fc.Arbitrary<Request> {
  const valid = validSendArb(fixture)
  const specs = valid.map(({ spec }) => spec)
  return fc.oneof(
    { weight: 10, arbitrary: invalidSendMembers(valid).map((spec) => write(spec)) },
    { weight: 6, arbitrary: breakRequest(specs) },
    // An invalid or unknown conversation id.
    { weight: 2, arbitrary: fc.tuple(specs, fc.oneof(badSegment.map((bad) => bad.segment), fc.uuid())).filter(([, id]) => id !== fixture.chat).map(([spec, id]) => write({ ...spec, url: `/api/v1/chat/${id}` })) }
  )
}

export const validCreateArb = fc.record({
  ids: fc.array(fc.oneof(fc.constantFrom(alice, bob, eve, dave, DAVE), anyUuid), { minLength: 1, maxLength: 6 }),
  tenant: fc.option(fc.oneof(fc.uuid(), fc.constant(null)), { nil: undefined }),
  layout,
  headers: junkHeaders,
  contentType
}).map(({ ids, tenant, layout, headers, contentType }): Spec => ({
  method: 'POST',
  url: '/api/v1/chat',
  members: tenant === undefined ? [['participant_ids', ids]] : [['participant_ids', ids], ['tenant_id', tenant]],
  layout,
  headers: { ...headers, 'content-type': contentType }
}))

export function invalidCreateArb (): fc.Arbitrary<Request> {
  const set = (key: string, values: fc.Arbitrary<unknown>) => fc.tuple(validCreateArb, values).map(([spec, value]) => write(override(spec, [key, value])))
  return fc.oneof(
    { weight: 2, arbitrary: set('participant_ids', fc.oneof(fc.constant([]), notStringNorNull.filter((value) => !Array.isArray(value)), fc.constant(null), fc.constant(alice))) },
    { weight: 3, arbitrary: set('participant_ids', fc.tuple(fc.array(fc.uuid(), { maxLength: 3 }), fc.oneof(notUuidText, notStringNorNull, fc.constant(null))).map(([ids, bad]) => [...ids, bad])) },
    { weight: 1, arbitrary: set('participant_ids', fc.constant(Array.from({ length: 1001 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`))) },
    { weight: 2, arbitrary: set('tenant_id', fc.oneof(notUuidText, notStringNorNull)) },
    { weight: 1, arbitrary: validCreateArb.map((spec) => write({ ...spec, members: spec.members.filter(([key]) => key !== 'participant_ids') })) },
    { weight: 4, arbitrary: breakRequest(validCreateArb) }
  )
}

/** A date-time string: RFC 3339 with an offset, or Z. */
export const dateTime = fc.tuple(fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }), fc.constantFrom('Z', '+00:00', '+05:30', '-23:59', 'z'))
  .map(([date, zone]) => date.toISOString().replace('Z', zone))
export const notDateTime = fc.oneof(
  fc.constantFrom('2024-02-30T00:00:00Z', '2024-13-01T00:00:00Z', '2016-12-31T23:59:60Z', '9999-12-31T23:59:59-23:59', '0000-01-01T00:00:00+00:01', '2024-01-01',
    '2024-01-01T00:00:00', '2024-01-01T24:00:00Z', '+010000-01-01T00:00:00Z', '1e308', 'now', '', 'Infinity', '2024-01-01T00:00:00+24:00'),
  fc.string({ maxLength: 30 }).filter((text) => !/^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d/.test(text)),
  notStringNorNull
)

export function validMuteArb (fixture: Fixture): fc.Arbitrary<Spec> {
  return fc.record({ user: fc.constantFrom(alice, bob, dave, DAVE), until: fc.oneof(dateTime, fc.constant(null)), layout, headers: junkHeaders, contentType })
    .map(({ user, until, layout, headers, contentType }) => ({
      method: 'PUT' as const, url: `/api/v1/chat/${fixture.chat}/mute`, members: [['user_id', user], ['until', until]], layout, headers: { ...headers, 'content-type': contentType }
    }))
}

export function invalidMuteArb (fixture: Fixture): fc.Arbitrary<Request> {
  const valid = validMuteArb(fixture)
  const set = (key: string, values: fc.Arbitrary<unknown>) => fc.tuple(valid, values).map(([spec, value]) => write(override(spec, [key, value])))
  const without = (key: string) => valid.map((spec) => write({ ...spec, members: spec.members.filter(([name]) => name !== key) }))
  return fc.oneof(
    set('user_id', fc.oneof(notUuidText, notStringNorNull, fc.constant(null), fc.constant(eve), fc.uuid())),
    set('until', notDateTime),
    without('user_id'),
    without('until'),
    fc.tuple(valid, fc.oneof(badSegment.map((bad) => bad.segment), fc.uuid())).map(([spec, id]) => write({ ...spec, url: `/api/v1/chat/${id}/mute` })),
    breakRequest(valid)
  )
}

/** An edit of dave's message by dave (any spelling of his id), with a valid new body. */
export function validEditArb (fixture: Fixture): fc.Arbitrary<Spec> {
  return fc.record({ sender: fc.constantFrom(dave, DAVE), body: validText, extra: fc.array(extraMember, { maxLength: 2 }), layout, headers: junkHeaders, contentType })
    .map(({ sender, body, extra, layout, headers, contentType }) => ({
      method: 'PATCH' as const,
      url: `/api/v1/chat/${fixture.chat}/messages/${fixture.mine}`,
      members: [['sender_id', sender], ...extra.filter(([key]) => key !== 'body' && key !== 'sender_id'), ['body', body]],
      layout,
      headers: { ...headers, 'content-type': contentType }
    }))
}

export function invalidEditArb (fixture: Fixture): fc.Arbitrary<Request> {
  const valid = validEditArb(fixture)
  const set = (key: string, values: fc.Arbitrary<unknown>) => fc.tuple(valid, values).map(([spec, value]) => write(override(spec, [key, value])))
  const without = (key: string) => valid.map((spec) => write({ ...spec, members: spec.members.filter(([name]) => name !== key) }))
  const at = (url: (id: string) => string, ids: fc.Arbitrary<string>) => fc.tuple(valid, ids).map(([spec, id]) => write({ ...spec, url: url(id) }))
  return fc.oneof(
    set('body', fc.oneof(notStringNorNull, unstorableText, tooLongText, blankText, fc.constant(null))), // a text message keeps a body: 400
    set('sender_id', fc.oneof(notUuidText, notStringNorNull, fc.constant(null), fc.constant(eve), fc.constant(bob), fc.uuid())), // 400, or 403: not a member / not the sender
    without('sender_id'),
    without('body'),
    at((id) => `/api/v1/chat/${fixture.chat}/messages/${id}`, fc.oneof(badSegment.map((bad) => bad.segment), fc.uuid(), fc.constant(fixture.theirs))),
    at((id) => `/api/v1/chat/${id}/messages/${fixture.mine}`, fc.oneof(badSegment.map((bad) => bad.segment), fc.uuid())),
    breakRequest(valid)
  )
}

/** Deletes: dave's doomed message by dave (the first deletes it, repeats answer seq null), or refused ones. */
export function deleteArb (fixture: Fixture, valid: boolean): fc.Arbitrary<Request> {
  const goodSender = fc.constantFrom(dave, DAVE)
  const badSender = fc.oneof(fc.constant(undefined), notUuidText.map(encode), fc.constantFrom(eve, bob), fc.uuid())
  const goodPath = fc.constant(`${fixture.chat}/messages/${fixture.doomed}`)
  const badPath = fc.oneof(
    fc.oneof(badSegment.map((bad) => bad.segment), fc.uuid(), fc.constant(fixture.theirs)).map((id) => `${fixture.chat}/messages/${id}`),
    fc.oneof(badSegment.map((bad) => bad.segment), fc.uuid()).map((id) => `${id}/messages/${fixture.doomed}`)
  )
  const parts = valid
    ? fc.tuple(goodPath, goodSender)
    // (Bob deleting his own message is valid: not among the bad paths' senders.)
    : fc.oneof(fc.tuple(goodPath, badSender), fc.tuple(badPath, fc.oneof(goodSender, badSender.filter((sender) => sender !== bob))))
  return fc.tuple(parts, junkHeaders).map(([[path, sender], headers]) => ({
    method: 'DELETE' as const,
    url: `/api/v1/chat/${path}${sender === undefined ? '' : `?sender_id=${sender}`}`,
    headers: clean(headers)
  }))
}

export const someUser = fc.oneof(fc.constantFrom(alice, bob, eve, dave, DAVE), anyUuid)

export function validBlockArb (): fc.Arbitrary<Request> {
  return fc.record({ method: fc.constantFrom('PUT' as const, 'DELETE' as const), blocker: someUser, blocked: someUser, headers: junkHeaders })
    .filter(({ blocker, blocked }) => blocker.toLowerCase() !== blocked.toLowerCase())
    .map(({ method, blocker, blocked, headers }) => ({ method, url: `/api/v1/users/${blocker}/blocks/${blocked}`, headers: clean(headers), block: [blocker, blocked] }))
}

export function invalidBlockArb (): fc.Arbitrary<Request> {
  const idOrBad = fc.oneof(someUser.map((id) => ({ text: id, segment: id })), badSegment)
  return fc.oneof(
    // At least one id that is not a uuid.
    fc.tuple(fc.constantFrom('PUT' as const, 'DELETE' as const), fc.boolean(), badSegment, idOrBad, junkHeaders).map(([method, first, bad, other, headers]) => {
      const [blocker, blocked] = first ? [bad, other] : [other, bad]
      return { method, url: `/api/v1/users/${blocker.segment}/blocks/${blocked.segment}`, headers: clean(headers), block: [blocker.text, blocked.text] as [string, string] }
    }),
    // Blocking oneself, in any letter case.
    fc.tuple(someUser, fc.boolean(), junkHeaders).map(([user, upper, headers]) =>
      ({ method: 'PUT' as const, url: `/api/v1/users/${user}/blocks/${upper ? user.toUpperCase() : user}`, headers: clean(headers), block: [user, user] as [string, string] })),
    fc.tuple(badSegment, junkHeaders).map(([bad, headers]) => ({ method: 'GET' as const, url: `/api/v1/users/${bad.segment}/blocks`, headers: clean(headers) }))
  )
}

export const queryValue = fc.oneof(
  fc.constantFrom('0', '-0', '1', '50', '100', '101', '-1', '1.5', '1e2', '1e308', '-1e308', '1e309', 'NaN', 'Infinity', '-Infinity', '0x10', '0b1', ' 5', '5 ', '',
    'null', 'true', '[]', '{}', '9007199254740991', '9007199254740992', '9223372036854775807', '9223372036854775808', '99999999999999999999', '-9223372036854775809', '٣', '５'),
  fc.integer().map(String),
  fc.string({ unit: 'binary', maxLength: 20 })
).map(encode)
export const queryKey = fc.oneof(
  fc.constantFrom('limit', 'offset', 'before_seq', 'after_seq', 'access_token', 'user_id', '__proto__', 'constructor', 'prototype', 'limit[]', 'limit[0]', 'hasOwnProperty'),
  fc.string({ unit: 'binary', maxLength: 10 })
).map(encode)
export const edgeNumber = fc.constantFrom('0', '-0', '-1', '1.5', '1e2', '1e308', '-1e308', '1e309', 'NaN', 'Infinity', '0x10', ' 5', '', 'null', '[]',
  '9007199254740991', '9007199254740992', '9223372036854775807', '9223372036854775808', '99999999999999999999', '-9223372036854775809', '٣', '５')
export const cursor = (valid: fc.Arbitrary<number>) => fc.option(fc.oneof({ weight: 3, arbitrary: valid.map(String) }, { weight: 1, arbitrary: edgeNumber }), { nil: undefined })
/** The history's own parameters, each valid or at an edge, so that one bad value is often the only one. */
export const historyQuery = fc.record({
  limit: cursor(fc.integer({ min: 1, max: 100 })),
  offset: cursor(fc.integer({ min: 0, max: 100_000 })),
  before_seq: cursor(fc.oneof(fc.integer({ min: 1, max: 10 }), fc.maxSafeNat().filter((n) => n > 0))),
  after_seq: cursor(fc.oneof(fc.nat(10), fc.maxSafeNat()))
}).map((params) => Object.entries(params).filter(([, value]) => value !== undefined).map(([key, value]) => `${key}=${encode(value!)}`).join('&'))
export const queryString = fc.oneof(
  { weight: 3, arbitrary: historyQuery },
  fc.array(fc.tuple(queryKey, queryValue, fc.boolean()), { maxLength: 6 }).map((pairs) => pairs.map(([key, value, eq]) => (eq ? `${key}=${value}` : key)).join('&')),
  fc.uint8Array({ maxLength: 30 }).map((bytes) => `limit=${encode(bytes)}`),
  fc.constantFrom('&&&', '=', '==1', 'limit=1=2', 'limit=1;offset=2', 'limit=%', 'limit=%zz', 'limit=%E0%A4%A', 'limit=1&limit=2', `${'a=1&'.repeat(500)}limit=1`)
)
export const readerHeader = fc.oneof(
  fc.constantFrom(alice, bob, eve, dave, DAVE, `urn:uuid:${alice}`, `{${dave}}`, dave.replaceAll('-', ''), '', ' '),
  fc.uuid(),
  headerText,
  fc.array(fc.constantFrom(alice, bob), { minLength: 2, maxLength: 2 })
)

/** GET history or members: any path, query string and X-User-Id. */
export function readArb (fixture: Fixture): fc.Arbitrary<Request> {
  return fc.record({
    method: fc.constantFrom('GET' as const, 'GET' as const, 'HEAD' as const),
    id: fc.oneof(fc.constant(fixture.chat), fc.constant(fixture.chat.toUpperCase()), fc.uuid(), badSegment.map((bad) => bad.segment)),
    what: fc.constantFrom('messages', 'participants'),
    query: fc.option(queryString, { nil: undefined }),
    reader: fc.option(readerHeader, { nil: undefined }),
    headers: junkHeaders
  }).map(({ method, id, what, query, reader, headers }) => ({
    method,
    url: `/api/v1/chat/${id}/${what}${query === undefined ? '' : `?${query}`}`,
    headers: clean({ ...headers, 'x-user-id': reader })
  }))
}

/** Any method on any route shape, with any body. */
export function junkArb (fixture: Fixture): fc.Arbitrary<Request> {
  const id = fc.oneof(fc.constantFrom(fixture.chat, alice, bob), fc.uuid(), badSegment.map((bad) => bad.segment))
  const path = fc.oneof(
    fc.constant('/api/v1/chat'),
    id.map((a) => `/api/v1/chat/${a}`),
    fc.tuple(id, fc.constantFrom('messages', 'participants', 'mute', 'ws', 'x')).map(([a, tail]) => `/api/v1/chat/${a}/${tail}`),
    fc.tuple(id, fc.oneof(id, fc.constantFrom(fixture.mine, fixture.doomed, fixture.theirs))).map(([a, b]) => `/api/v1/chat/${a}/messages/${b}`),
    id.map((a) => `/api/v1/users/${a}/blocks`),
    fc.tuple(id, id).map(([a, b]) => `/api/v1/users/${a}/blocks/${b}`),
    badSegment.map((bad) => `/api/v1/${bad.segment}`),
    fc.uint8Array({ maxLength: 20 }).map((bytes) => `/${encode(bytes)}`)
  )
  const payload = fc.oneof(
    fc.constant(undefined),
    plainJson.map((value) => Buffer.from(JSON.stringify(value))),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    fc.constantFrom(deepArray(10_000), deepObject(10_000)).map((value) => Buffer.from(value.text))
  )
  return fc.record({
    method: fc.constantFrom('GET' as const, 'POST' as const, 'PUT' as const, 'DELETE' as const, 'PATCH' as const, 'HEAD' as const, 'OPTIONS' as const),
    path,
    query: fc.option(queryString, { nil: undefined }),
    payload,
    type: fc.option(fc.oneof(contentType, headerText), { nil: undefined }),
    reader: fc.option(readerHeader, { nil: undefined }),
    headers: junkHeaders
  }).map(({ method, path, query, payload, type, reader, headers }) => {
    const blockPath = /^\/api\/v1\/users\/([^/]+)\/blocks\/([^/]+)$/.exec(path)
    return {
      method,
      url: query === undefined ? path : `${path}?${query}`,
      headers: clean({ ...headers, 'content-type': payload === undefined ? undefined : type, 'x-user-id': reader }),
      payload: method === 'GET' || method === 'HEAD' ? undefined : payload,
      block: blockPath === null ? undefined : [decodeURIComponentSafe(blockPath[1]!), decodeURIComponentSafe(blockPath[2]!)] as [string, string]
    }
  })
}

export function decodeURIComponentSafe (text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
