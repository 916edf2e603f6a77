// Generated bad input for the websocket, over a real listening server: broken and non-object JSON,
// binary frames of random bytes, deep nesting, huge strings, nulls, nasty unicode, unknown types,
// and fields of the wrong type on join, leave and message. Whatever arrives: the server keeps
// running, the socket stays open, every reply is an error frame with a known code (or a normal
// reply), and nothing is stored but what the server answered as stored.
//
// How replies are matched to frames: after each generated frame the test sends a probe (a leave
// with a ref of its own) and waits for its reply; a frame that carries a test-assigned ref is also
// waited for by that ref. What arrived in between is the generated frame's answer.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import pg from 'pg'
import { onTeardown, users } from '@chatty/db/testing'
import { createChat, listen, openSocket, type Frame, type RawSocket } from './ws-helper.ts'

const { alice, bob, eve } = users
const ERROR_CODES = new Set(['bad_request', 'forbidden', 'rate_limited', 'internal_error'])
const REPLY_TYPES = new Set(['joined', 'left', 'sent', 'message', 'error'])
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const PROBE_CHAT = '00000000-0000-4000-8000-000000000000'
// Thousands of frames on one socket: the frame rate limit is ws-limits.test.ts's subject.
const CONFIG = { WS_RATE_LIMIT_PER_SEC: 0 }

/** One generated frame: text (maybe not JSON) or binary bytes; `ref` when the test put one in it. */
interface Case { data: string | Uint8Array, binary: boolean, ref?: string }

let refs = 0
const text = (data: string): Case => ({ data, binary: false })
/** An object frame with a ref of the test's own, so its (maybe late) reply can be found. */
function withRef (frame: Record<string, unknown>): Case {
  const ref = `g${++refs}`
  return { data: JSON.stringify({ ...frame, ref }), binary: false, ref }
}

// ---- generators -------------------------------------------------------------------------------------

const NASTY = ['😀', '👩‍👩‍👧‍👦', '\u202e', '\u200b', '\ufeff', 'e\u0301', 'Z̤͔ͧ̑̓', '\u{10ffff}', '\ufffd', '<script>', "'; DROP TABLE chat.message; --", '\\', '"', '\u2028', '__proto__']
const anyText = fc.array(fc.oneof(fc.constantFrom(...NASTY), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 6 })), { maxLength: 8 })
  .map((parts) => parts.join(''))
const storable = (value: string) => !/[\u0000\p{Cs}]/u.test(value)
/** A body the rules accept: storable, not blank once trimmed, at most 4000 characters. */
const validBody = anyText.filter((value) => storable(value) && value.trim() !== '' && [...value.trim()].length <= 4000)
const deepArray = (levels: number) => '['.repeat(levels) + ']'.repeat(levels)
const deepObject = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels)
/** Any JSON value but a string, for fields that must be strings. */
const notString = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant({}), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }))
const notUuid = fc.oneof(
  fc.string({ maxLength: 40 }).filter((value) => !UUID.test(value)),
  fc.constantFrom('', ' ', '00000000-0000-4000-8000-00000000000', '00000000-0000-4000-8000-0000000000000', '{00000000-0000-4000-8000-000000000000}', 'zzzzzzzz-zzzz-4zzz-8zzz-zzzzzzzzzzzz'),
  notString,
  fc.constant(null)
)

function invalidCases (chat: string): fc.Arbitrary<Case> {
  const message = (fields: Record<string, unknown>) => withRef({ type: 'message', conversation_id: chat, ...fields })
  return fc.oneof(
    // Not JSON at all, or broken JSON.
    fc.string({ maxLength: 60 }).filter((value) => { try { JSON.parse(value); return false } catch { return true } }).map(text),
    fc.constantFrom('', ' ', '{', '{"type":', '{"type":"join",}', "{'type':'join'}", 'nul', 'NaN', '[1,]', '\u0000', '{"type":"join"}garbage').map(text),
    // JSON that is not an object.
    fc.jsonValue({ maxDepth: 3 }).filter((value) => typeof value !== 'object' || value === null || Array.isArray(value)).map((value) => text(JSON.stringify(value))),
    // Deep nesting, under the frame size limit.
    fc.integer({ min: 50, max: 30_000 }).map((levels) => text(deepArray(levels))),
    fc.integer({ min: 50, max: 10_000 }).map((levels) => text(deepObject(levels))),
    // Binary frames: random bytes (mostly invalid UTF-8), or a valid frame sent as binary.
    fc.uint8Array({ maxLength: 3000 }).map((data): Case => ({ data, binary: true })),
    fc.constant<Case>({ data: Buffer.from(JSON.stringify({ type: 'message', conversation_id: chat, body: 'binary' })), binary: true }),
    // A missing or unknown type.
    fc.record({ conversation_id: fc.constant(chat), body: anyText }).map((frame) => withRef(frame)),
    fc.oneof(fc.string({ maxLength: 20 }).filter((type) => !['join', 'leave', 'message'].includes(type)), fc.constantFrom('JOIN', 'Message', ' join', 'join ', 'connected', 'sent', 'error', '__proto__'), notString, fc.constant(null))
      .map((type) => withRef({ type, conversation_id: chat, body: 'x' })),
    // join / leave / message without a usable conversation_id.
    fc.tuple(fc.constantFrom('join', 'leave', 'message'), notUuid).map(([type, id]) => withRef({ type, conversation_id: id, body: 'x' })),
    fc.constantFrom('join', 'leave', 'message').map((type) => withRef({ type, body: 'x' })),
    // join with a since_seq that is not an integer >= 0.
    fc.oneof(fc.integer({ max: -1 }), fc.double({ noInteger: true }), fc.string({ maxLength: 10 }), fc.boolean(), fc.constant(null), fc.constant({}))
      .map((since) => withRef({ type: 'join', conversation_id: chat, since_seq: since })),
    // message fields of the wrong type.
    fc.oneof(
      notString.map((body) => ({ body })),
      fc.oneof(fc.string({ maxLength: 5 }), fc.double({ noInteger: true, noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant({})).map((msgType) => ({ body: 'x', msg_type: msgType })),
      notString.map((url) => ({ body: 'x', attachment_url: url })),
      notString.map((key) => ({ body: 'x', dedupe_key: key }))
    ).map(message),
    // message content the rules refuse.
    fc.oneof(
      fc.constantFrom({}, { body: null }, { body: '' }, { body: ' \n\t\u3000' }, { body: null, attachment_url: null }, { body: 'x', msg_type: 3 },
        { body: 'x', msg_type: 1 }, { body: 'x', msg_type: 2 }, { body: 'x', msg_type: 4 }, { body: 'x', msg_type: -1 }, { body: 'x', msg_type: 2 ** 53 },
        { body: 'x', attachment_url: 'javascript:alert(1)' }, { body: 'x', attachment_url: '/relative' }, { body: 'x', attachment_url: `https://a.example/${'a'.repeat(2100)}` },
        { body: 'x', dedupe_key: '' }, { body: 'x', dedupe_key: 'k'.repeat(65) }, { body: 'x', attachment_meta: 'm'.repeat(5000) }),
      fc.tuple(fc.integer({ min: 4001, max: 15_000 }), fc.constantFrom('x', '😀', 'é')).map(([n, char]) => ({ body: char.repeat(n) })),
      fc.tuple(anyText, fc.constantFrom('\u0000', '\ud800', '\udfff'), anyText).map(([before, bad, after]) => ({ body: `${before}${bad}${after}` })),
      fc.tuple(fc.constantFrom('\u0000', '\udc00'), fc.constantFrom('body', 'dedupe_key', 'attachment_url')).map(([bad, field]) => ({ body: 'x', [field]: `k${bad}` })),
    ).map(message),
    // edit / delete frames that cannot apply: broken ids, bodies the rules refuse, a message that does not exist.
    fc.tuple(fc.constantFrom('edit', 'delete'), fc.oneof(
      notUuid.map((id) => ({ conversation_id: id, message_id: '99999999-9999-4999-8999-999999999999', body: 'x' })),
      notUuid.map((id) => ({ conversation_id: chat, message_id: id, body: 'x' })),
      fc.constant({ conversation_id: chat, body: 'x' }),
      fc.uuid().map((id) => ({ conversation_id: chat, message_id: id, body: 'x' }))
    )).map(([type, fields]) => withRef({ type, ...fields })),
    fc.oneof(
      notString.filter((body) => body !== null).map((body) => ({ body })),
      fc.tuple(fc.integer({ min: 4001, max: 9000 }), fc.constantFrom('x', '😀')).map(([n, char]) => ({ body: char.repeat(n) })),
      fc.tuple(anyText, fc.constantFrom('\u0000', '\ud800'), anyText).map(([before, bad, after]) => ({ body: `${before}${bad}${after}` })),
      fc.constant({})
    ).map((fields) => withRef({ type: 'edit', conversation_id: chat, message_id: '99999999-9999-4999-8999-999999999999', ...fields })),
    // attachment_meta nested past 4096 bytes, written by hand (JSON.stringify runs out of stack).
    fc.integer({ min: 2100, max: 25_000 }).map((levels) => {
      const ref = `g${++refs}`
      return { data: `{"type":"message","conversation_id":"${chat}","body":"x","ref":"${ref}","attachment_meta":${deepArray(levels)}}`, binary: false, ref }
    }),
    // A ref that is neither a number nor a string of at most 128 characters: the error has no ref.
    fc.oneof(fc.string({ minLength: 129, maxLength: 300 }), fc.boolean(), fc.constant(null), fc.constant({}), fc.array(fc.integer(), { maxLength: 2 }))
      .map((ref) => text(JSON.stringify({ type: 'join', conversation_id: chat, ref })))
  )
}

/** Frames of every kind, valid ones included, some for conversations alice is not in. */
function arbitraryCases (chat: string, notMine: string): fc.Arbitrary<Case> {
  const conversation = fc.oneof(
    { weight: 6, arbitrary: fc.constant(chat) },
    { weight: 1, arbitrary: fc.constant(chat.toUpperCase()) },
    { weight: 2, arbitrary: fc.constant(notMine) },
    { weight: 2, arbitrary: fc.uuid() },
    { weight: 1, arbitrary: notUuid }
  )
  const field = <T>(value: fc.Arbitrary<T>) => fc.option(value, { nil: undefined, freq: 2 })
  return fc.oneof(
    { weight: 1, arbitrary: invalidCases(chat) },
    {
      weight: 3,
      arbitrary: fc.record({
        type: fc.constantFrom('join', 'leave', 'message', 'message', 'message'),
        conversation_id: conversation,
        since_seq: field(fc.oneof(fc.nat(50), fc.integer({ min: -2, max: 2 }))),
        body: field(fc.oneof(validBody, anyText, fc.constant(null), notString)),
        msg_type: field(fc.oneof(fc.constantFrom(0, 0, 0, 1, 2, 3), fc.constant(null), notString)),
        attachment_url: field(fc.oneof(fc.constantFrom('https://cdn.example/a.png', 'http://a.example/😀', 'ftp://x'), fc.constant(null), notString)),
        attachment_meta: field(fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.integer({ min: 1, max: 600 }).map((levels) => JSON.parse(deepArray(levels))))),
        dedupe_key: field(fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.constant(null), fc.string({ minLength: 60, maxLength: 70 })))
      }, { requiredKeys: ['type', 'conversation_id'] }).map((frame) => withRef(Object.fromEntries(Object.entries(frame).filter(([, value]) => value !== undefined))))
    }
  )
}

// ---- sending ----------------------------------------------------------------------------------------

let probes = 0

/** Sends one case and returns every frame it got in answer (message broadcasts included). */
async function exchange (socket: RawSocket, item: Case): Promise<Frame[]> {
  const start = socket.frames.length
  if (item.binary) socket.ws.send(item.data, { binary: true })
  else socket.ws.send(item.data as string)
  const probe = `probe${++probes}`
  socket.send({ type: 'leave', conversation_id: PROBE_CHAT, ref: probe })
  await socket.until((frame) => frame.ref === probe, 10_000)
  if (item.ref !== undefined && !socket.frames.slice(start).some((frame) => frame.ref === item.ref && frame.type !== 'message')) {
    await socket.until((frame) => frame.ref === item.ref, 10_000)
  }
  return socket.frames.slice(start).filter((frame) => frame.ref !== probe)
}

async function messageIds (client: pg.Client, conversationId: string): Promise<string[]> {
  return (await client.query<{ id: string }>('SELECT id FROM chat.message WHERE conversation_id = $1 ORDER BY seq', [conversationId])).rows.map((row) => row.id)
}

async function setUp (t: Test) {
  const { app, url, dbUrl } = await listen(t, CONFIG)
  const chat = await createChat(app, [alice, bob])
  const notMine = await createChat(app, [bob, eve])
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  onTeardown(t, () => client.end())
  const socket = await openSocket(t, url, alice)
  return { app, url, chat, notMine, client, socket }
}

function checkReply (t: Test, frame: Frame, item: Case): void {
  if (!REPLY_TYPES.has(frame.type)) t.fail(`unexpected reply ${JSON.stringify(frame)} to ${String(item.data).slice(0, 200)}`)
  if (frame.type === 'error') {
    if (!ERROR_CODES.has(frame.code) || typeof frame.error !== 'string') t.fail(`malformed error ${JSON.stringify(frame)}`)
    if (frame.code === 'internal_error') t.fail(`internal_error for ${String(item.data).slice(0, 200)}`)
  }
}

t.test('invalid frames are each answered with one bad_request error, the socket stays open, and nothing is stored', async (t) => {
  const { chat, client, socket } = await setUp(t)
  let sent = 0
  await fc.assert(fc.asyncProperty(invalidCases(chat), async (item) => {
    const answer = await exchange(socket, item)
    sent++
    if (socket.ws.readyState !== socket.ws.OPEN) throw new Error(`the socket closed after ${String(item.data).slice(0, 200)}`)
    if (answer.length !== 1) throw new Error(`expected one reply, got ${JSON.stringify(answer)}`)
    const [reply] = answer
    if (reply!.type !== 'error' || reply!.code !== 'bad_request') throw new Error(`expected bad_request, got ${JSON.stringify(reply)}`)
    if (Object.keys(reply!).some((key) => !['type', 'code', 'error', 'ref'].includes(key))) throw new Error(`extra fields in ${JSON.stringify(reply)}`)
    if (item.ref !== undefined && reply!.ref !== item.ref) throw new Error(`the ref was not echoed: ${JSON.stringify(reply)}`)
  }), { numRuns: 2500 })
  t.equal(socket.ws.readyState, socket.ws.OPEN, `the socket survived ${sent} invalid frames`)
  t.same(await messageIds(client, chat), [], 'no message was stored')
  socket.send({ type: 'message', conversation_id: chat, body: 'still works', ref: 'last' })
  const last = await socket.until((frame) => frame.ref === 'last')
  t.equal(last.type, 'sent', 'and a valid send is still stored')
  t.equal(last.message.seq, 1, 'as the first message: nothing before it')
})

t.test('arbitrary frames, valid ones included: known replies only, and exactly what was acknowledged is stored, as sent', async (t) => {
  const { chat, notMine, client, socket } = await setUp(t)
  const acknowledged = new Map<string, Frame>()
  const seen = new Set<string>()
  let replies = 0
  await fc.assert(fc.asyncProperty(arbitraryCases(chat, notMine), async (item) => {
    const answer = await exchange(socket, item)
    if (socket.ws.readyState !== socket.ws.OPEN) throw new Error(`the socket closed after ${String(item.data).slice(0, 200)}`)
    if (answer.filter((frame) => frame.type !== 'message').length === 0) throw new Error(`no reply to ${String(item.data).slice(0, 200)}`)
    for (const frame of answer) {
      replies++
      checkReply(t, frame, item)
      if (frame.type === 'sent') acknowledged.set(frame.message.id, frame.message)
      if (frame.type === 'message') {
        if (frame.message.conversation_id !== chat) throw new Error(`a message of another conversation: ${JSON.stringify(frame)}`)
        seen.add(frame.message.id)
      }
    }
  }), { numRuns: 3000 })
  t.ok(acknowledged.size > 50, `${acknowledged.size} valid sends among ${replies} replies`)
  t.same(await messageIds(client, notMine), [], 'nothing reached the conversation alice is not in')
  const stored = (await client.query('SELECT id, conversation_id, sender_id, seq::int AS seq, body, msg_type, attachment_url, attachment_meta, dedupe_key, edited_at, deleted_at, parent_id, reply_count, last_reply_at, mentioned_user_ids, reactions, pinned_at, pinned_by FROM chat.message WHERE conversation_id = $1', [chat])).rows
  t.same(new Set(stored.map((row) => row.id)), new Set([...acknowledged.keys(), ...seen]), 'every stored message was acknowledged or delivered, and nothing else was stored')
  t.equal(stored.length, acknowledged.size, 'each acknowledged message stored once')
  for (const row of stored) {
    const { created_at: _, ...sent } = acknowledged.get(row.id)!
    if (JSON.stringify(row) !== JSON.stringify(sent)) t.fail(`stored ${JSON.stringify(row)} but acknowledged ${JSON.stringify(sent)}`)
  }
  t.equal(socket.ws.readyState, socket.ws.OPEN)
})

t.test('a text frame that is not valid UTF-8 closes the socket with 1007 (RFC 6455); other sockets are not affected', async (t) => {
  const { chat, url, socket: other } = await setUp(t)
  const socket = await openSocket(t, url, alice)
  // ws would refuse to send invalid UTF-8 as text: write the frame by hand (FIN, text, masked).
  const payload = Buffer.from([0x7b, 0xc3, 0x28, 0xff, 0x7d])
  const mask = Buffer.from([1, 2, 3, 4])
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!))
  ;(socket.ws as unknown as { _socket: import('node:net').Socket })._socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]))
  t.equal((await socket.closed).code, 1007, 'closed with 1007 (invalid frame payload data)')
  other.send({ type: 'message', conversation_id: chat, body: 'unaffected', ref: 'o' })
  t.equal((await other.until((frame) => frame.ref === 'o')).type, 'sent', 'another socket still works')
})

t.test('a frame over WS_MAX_PAYLOAD closes only that socket with 1009', async (t) => {
  const { chat, url, socket: other, client } = await setUp(t)
  const socket = await openSocket(t, url, alice)
  socket.send({ type: 'message', conversation_id: chat, body: 'x'.repeat(70_000) })
  t.equal((await socket.closed).code, 1009)
  t.same(await messageIds(client, chat), [], 'nothing stored')
  other.send({ type: 'join', conversation_id: chat, ref: 'j' })
  t.equal((await other.until((frame) => frame.ref === 'j')).type, 'joined', 'another socket still works')
})
