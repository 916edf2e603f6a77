// Generated bad input for every REST route: bodies (wrong types, huge strings, deep nesting, broken
// and non-UTF-8 JSON, duplicated and prototype-polluting keys, numbers at the edges, nasty
// unicode), raw bytes, query strings, path params and headers. Whatever arrives: never a 5xx,
// every error answer is exactly {error, code}, and nothing is stored that the api did not answer
// as accepted.
//
// How "nothing stored" is made exact rather than trivial: requests invalid by construction must
// all be refused and leave every table as it was; arbitrary requests (some of which are valid) are
// checked against a model that adds exactly what each 2xx answer says was created; and valid
// requests with the same nasty content must be accepted and stored exactly as sent.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import pg from 'pg'
import { SignJWT } from 'jose'
import type { FastifyInstance } from 'fastify'
import { sendMessage } from '@chatty/chat'
import { users, waitFor } from '@chatty/db/testing'
import { buildTestApp, startJobs } from './helper.ts'
import { connect, copy, dave, deleteArb, encode, type Expected, type Fixture, headerText, invalidBlockArb, invalidCreateArb, invalidEditArb, invalidMuteArb, invalidSendArb, junkArb, makeSender, type Members, NO_LIMITS, notUuidText, readArb, readStored, type Request, sameStored, SECRET, someUser, sorted, validBlockArb, validCreateArb, validEditArb, validMuteArb, validSendArb, write } from './bad-input-generators.ts'

const { alice, bob, eve } = users

// ---- the tests ----------------------------------------------------------------------------------------

async function setUp (t: Test, config: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const { app, dbUrl } = await buildTestApp(t, { ...NO_LIMITS, ...config })
  const client = await connect(t, dbUrl)
  const created = await app.inject({ method: 'POST', url: '/api/v1/chat', headers, payload: { participant_ids: [alice, bob, dave] } })
  const chat = created.json<{ id: string }>().id
  const store = async (sender: string, body: string) => (await sendMessage(app.chat, { conversationId: chat, senderId: sender, body })).message.id
  const fixture: Fixture = { chat, mine: await store(dave, 'edit me'), doomed: await store(dave, 'delete me'), theirs: await store(bob, 'not yours') }
  return { app, dbUrl, client, fixture }
}

/** Runs a property over requests; then what is stored must be exactly the model. */
async function runRequests (t: Test, app: FastifyInstance, client: pg.Client, what: string, requests: fc.Arbitrary<Request>, numRuns: number,
  options: { mustBeRefused: boolean }): Promise<ReturnType<typeof makeSender>> {
  const model = copy(await readStored(client))
  const sender = makeSender(app, model)
  const started = Date.now()
  await fc.assert(fc.asyncProperty(requests, async (request) => {
    const res = await sender.send(request)
    if (options.mustBeRefused && res.statusCode < 400) {
      throw new Error(`accepted: ${request.method} ${request.url} ${request.payload?.toString('latin1').slice(0, 500)} -> ${res.statusCode} ${res.body.slice(0, 200)}`)
    }
  }), { numRuns })
  t.comment(`${what}: ${sender.total()} requests in ${Date.now() - started} ms: ${sender.tally()}`)
  await sameStored(t, client, model, what)
  return sender
}

t.test('sends that are invalid by construction are all refused with {error, code}, and store and queue nothing', async (t) => {
  const { app, client, fixture } = await setUp(t)
  const before = await readStored(client)
  const sender = await runRequests(t, app, client, 'invalid sends', invalidSendArb(fixture), 2500, { mustBeRefused: true })
  t.same(sorted(sender.statuses.keys()).filter((status) => Number(status) < 400), [], 'nothing was accepted')
  for (const status of [400, 403, 404, 413, 414, 415]) t.ok(sender.statuses.has(status), `the cases reached ${status}`)
  t.equal((await readStored(client)).jobs, before.jobs, 'no job was queued')
})

t.test('invalid creates, mutes, block changes, edits and deletes are refused with {error, code}, and store nothing', async (t) => {
  const { app, client, fixture } = await setUp(t)
  const requests = fc.oneof(invalidCreateArb(), invalidMuteArb(fixture), invalidBlockArb(), invalidEditArb(fixture), deleteArb(fixture, false))
  const sender = await runRequests(t, app, client, 'invalid creates, mutes, blocks, edits and deletes', requests, 2000, { mustBeRefused: true })
  for (const status of [400, 403, 404, 413, 415]) t.ok(sender.statuses.has(status), `the cases reached ${status}`)
})

t.test('reads of history and members with any path, query string and X-User-Id never get a 5xx and change nothing', async (t) => {
  const { app, client, fixture } = await setUp(t)
  const sender = await runRequests(t, app, client, 'reads', readArb(fixture), 1500, { mustBeRefused: false })
  for (const status of [200, 400, 403, 404]) t.ok(sender.statuses.has(status), `the cases reached ${status}`)
})

t.test('arbitrary requests to every route never get a 5xx, and store exactly what the api said it accepted', async (t) => {
  const { app, client, fixture } = await setUp(t)
  const requests = fc.oneof(
    { weight: 3, arbitrary: validSendArb(fixture).map(({ spec }) => write(spec)) },
    { weight: 3, arbitrary: invalidSendArb(fixture) },
    { weight: 1, arbitrary: validCreateArb.map((spec) => write(spec)) },
    { weight: 1, arbitrary: invalidCreateArb() },
    { weight: 1, arbitrary: validMuteArb(fixture).map((spec) => write(spec)) },
    { weight: 1, arbitrary: invalidMuteArb(fixture) },
    { weight: 1, arbitrary: validBlockArb() },
    { weight: 1, arbitrary: invalidBlockArb() },
    { weight: 1, arbitrary: validEditArb(fixture).map((spec) => write(spec)) },
    { weight: 1, arbitrary: invalidEditArb(fixture) },
    { weight: 1, arbitrary: deleteArb(fixture, true) },
    { weight: 1, arbitrary: deleteArb(fixture, false) },
    { weight: 3, arbitrary: readArb(fixture) },
    { weight: 3, arbitrary: junkArb(fixture) }
  )
  const sender = await runRequests(t, app, client, 'arbitrary requests', requests, 2000, { mustBeRefused: false })
  for (const status of [200, 201, 202, 204, 400, 404]) t.ok(sender.statuses.has(status), `the cases reached ${status}`)
})

t.test('with AUTH_MODE=jwt, bad tokens are 401 and other users\' tokens 403 on every route, and nothing is stored', async (t) => {
  const key = new TextEncoder().encode(SECRET)
  const sign = (sub: string, options: { secret?: Uint8Array, alg?: string, exp?: number, nbf?: number } = {}) => {
    let jwt = new SignJWT({}).setProtectedHeader({ alg: options.alg ?? 'HS256' }).setSubject(sub).setIssuedAt()
    jwt = jwt.setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 3600)
    if (options.nbf !== undefined) jwt = jwt.setNotBefore(options.nbf)
    return jwt.sign(options.secret ?? key)
  }
  const { app, client, fixture } = await setUp(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET }, { authorization: `Bearer ${await sign(alice)}` })
  const now = Math.floor(Date.now() / 1000)
  const b64 = fc.base64String({ maxLength: 40 }).map((text) => text.replaceAll('=', ''))
  type TokenSpec = { kind: 'text', value: string } | { kind: 'signed', sub: string, options: Parameters<typeof sign>[1] }
  const badToken: fc.Arbitrary<TokenSpec> = fc.oneof(
    fc.oneof(headerText, fc.constantFrom('Bearer', 'Bearer ', 'bearer', 'Basic YWxpY2U6cHc=', 'Bearer a.b.c', 'Bearer ...', 'Bearer x',
      // alg none, sub alice
      'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMTExMTExMS0xMTExLTQxMTEtODExMS0xMTExMTExMTExMTEifQ.', `Bearer ${'a'.repeat(8000)}`),
    fc.tuple(b64, b64, b64).map(([a, b, c]) => `Bearer ${a}.${b}.${c}`)).map((value) => ({ kind: 'text' as const, value })),
    fc.oneof(
      fc.record({ sub: fc.constant(alice), options: fc.constantFrom({ exp: now - 120 }, { nbf: now + 600 }, { secret: new TextEncoder().encode('another-secret-another-secret-xx!') }, { alg: 'HS512' }) }),
      fc.record({ sub: fc.oneof(notUuidText, fc.constant(`urn:uuid:${alice}`)), options: fc.constant({}) })
    ).map(({ sub, options }) => ({ kind: 'signed' as const, sub, options }))
  )
  // A valid request of any route, made with a bad token: 401 whatever it holds.
  const anyRequest = fc.oneof(
    validSendArb(fixture).map(({ spec }) => write(spec)), invalidSendArb(fixture), validCreateArb.map((spec) => write(spec)),
    validMuteArb(fixture).map((spec) => write(spec)), validBlockArb(), readArb(fixture), validEditArb(fixture).map((spec) => write(spec)), deleteArb(fixture, true)
  )
  const refused = fc.oneof(
    fc.tuple(anyRequest, badToken, fc.boolean()).map(([request, token, inQuery]) => ({ request, token, inQuery })),
    // A good token of someone else: eve is no member of alice and bob's conversation, and alice cannot act as bob.
    fc.tuple(fc.oneof(validSendArb(fixture).map(({ spec }) => write(spec)), validMuteArb(fixture).map((spec) => write(spec)), readArb(fixture).filter((request) => request.url.includes(fixture.chat)),
      validEditArb(fixture).map((spec) => write(spec)), deleteArb(fixture, true)),
      fc.constant({ kind: 'signed' as const, sub: eve, options: {} }), fc.constant(false)).map(([request, token, inQuery]) => ({ request, token, inQuery })),
    fc.tuple(fc.constantFrom('PUT' as const, 'DELETE' as const, 'GET' as const), someUser.filter((id) => id.toLowerCase() !== eve)).map(([method, user]) => ({
      request: { method, url: method === 'GET' ? `/api/v1/users/${user}/blocks` : `/api/v1/users/${user}/blocks/${eve}`, headers: {} },
      token: { kind: 'signed' as const, sub: eve, options: {} },
      inQuery: false
    }))
  )
  const model = copy(await readStored(client))
  const sender = makeSender(app, model)
  await fc.assert(fc.asyncProperty(refused, async ({ request, token, inQuery }) => {
    const value = token.kind === 'text' ? token.value : `Bearer ${await sign(token.sub, token.options)}`
    const authorised: Request = inQuery && token.kind === 'signed'
      ? { ...request, url: `${request.url}${request.url.includes('?') ? '&' : '?'}access_token=${encode(value.slice(7))}` }
      : { ...request, headers: { ...request.headers, authorization: value } }
    const res = await sender.send(authorised)
    // Reads of an unknown or invalid id may answer 400/404 before membership is known.
    if (res.statusCode < 400) throw new Error(`accepted: ${authorised.method} ${authorised.url} -> ${res.statusCode} ${res.body.slice(0, 200)}`)
  }), { numRuns: 500 })
  t.comment(`jwt: ${sender.total()} requests: ${sender.tally()}`)
  t.ok(sender.statuses.has(401) && sender.statuses.has(403), 'both 401 and 403 were reached')
  await sameStored(t, client, model, 'jwt')
})

t.test('valid sends with the same nasty content are accepted and stored exactly as sent, once each', async (t) => {
  const { app, dbUrl, client, fixture } = await setUp(t)
  await startJobs(t, dbUrl)
  const accepted = new Map<string, Expected>()
  let n = 0
  const sender = makeSender(app)
  await fc.assert(fc.asyncProperty(validSendArb(fixture), async ({ spec, expected }) => {
    // A dedupe key of its own, or the worker would rightly store only the first of two.
    const dedupe = expected.dedupe_key === null ? null : `${expected.dedupe_key}#${n++}`
    const members: Members = dedupe === null ? spec.members : [...spec.members, ['dedupe_key', dedupe]]
    const res = await sender.send(write({ ...spec, members }))
    if (res.statusCode !== 202) throw new Error(`refused: ${write({ ...spec, members }).payload?.toString().slice(0, 500)} -> ${res.statusCode} ${res.body}`)
    accepted.set(res.json<{ message_id: string }>().message_id, { ...expected, dedupe_key: dedupe })
  }), { numRuns: 300 })
  t.comment(`valid sends: ${sender.tally()}`)

  // Everything accepted is stored (the worker drains the queue), and read back over the API as sent.
  const fixtureIds = [fixture.mine, fixture.doomed, fixture.theirs]
  await waitFor(async () => ((await readStored(client)).messages >= accepted.size + fixtureIds.length ? true : undefined), { timeoutMs: 45_000 })
  const stored = new Map<string, Record<string, unknown>>()
  for (let after = 0; ;) {
    const page = await app.inject(`/api/v1/chat/${fixture.chat}/messages?limit=100&after_seq=${after}`)
    t.equal(page.statusCode, 200)
    const messages = page.json<{ messages: Array<Record<string, unknown> & { id: string, seq: number }> }>().messages
    if (messages.length === 0) break
    for (const message of messages) if (!fixtureIds.includes(message.id)) stored.set(message.id, message)
    after = Math.max(...messages.map((message) => message.seq))
  }
  t.equal(stored.size, accepted.size, 'one stored message per accepted send')
  let exact = 0
  for (const [id, expected] of accepted) {
    const message = stored.get(id)
    const actual = message === undefined
      ? undefined
      : {
          sender_id: message.sender_id,
          body: message.body,
          msg_type: message.msg_type,
          attachment_url: message.attachment_url,
          meta: message.attachment_meta === null ? null : JSON.stringify(message.attachment_meta),
          dedupe_key: message.dedupe_key
        }
    if (JSON.stringify(actual) === JSON.stringify(expected)) exact++
    else t.same(actual, expected, `message ${id} is stored as sent`)
  }
  t.equal(exact, accepted.size, 'every accepted message is stored exactly as sent')
  t.equal((await readStored(client)).jobs, 0, 'the queue is drained')
})
