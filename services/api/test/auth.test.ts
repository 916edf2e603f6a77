import t, { type Test } from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import type { InjectOptions } from 'fastify'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import { onTeardown, sleep, users, waitFor } from '@chatty/db/testing'
import { sendMessage } from '@chatty/chat'
import { buildTestApp, countRows, startJobs, type TestApp } from './helper.ts'
import { listen, openSocket } from './ws-helper.ts'

const { alice, bob, eve } = users
const SECRET = 'test-secret-test-secret-test-secret!'
const key = new TextEncoder().encode(SECRET)

function token (sub: string, options: { exp?: string | number, nbf?: string | number, iss?: string, aud?: string, secret?: Uint8Array } = {}) {
  let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(options.exp ?? '1h')
  if (options.nbf !== undefined) jwt = jwt.setNotBefore(options.nbf)
  if (options.iss !== undefined) jwt = jwt.setIssuer(options.iss)
  if (options.aud !== undefined) jwt = jwt.setAudience(options.aud)
  return jwt.sign(options.secret ?? key)
}

const bearer = async (sub: string) => ({ authorization: `Bearer ${await token(sub)}` })


const jwtConfig = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET }

t.test('jwt mode: no token, a bad token, an expired or not-yet-valid token are 401', async (t) => {
  const { app } = await buildTestApp(t, jwtConfig)
  const url = '/api/v1/chat'
  const payload = { participant_ids: [bob] }
  const cases: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['not a bearer', { authorization: 'Basic abc' }],
    ['garbage', { authorization: 'Bearer abc.def.ghi' }],
    ['wrong secret', { authorization: `Bearer ${await token(alice, { secret: new TextEncoder().encode('another-secret-another-secret-xx!') })}` }],
    ['expired', { authorization: `Bearer ${await token(alice, { exp: Math.floor(Date.now() / 1000) - 60 })}` }],
    ['not yet valid', { authorization: `Bearer ${await token(alice, { nbf: Math.floor(Date.now() / 1000) + 600 })}` }],
    ['subject not a uuid', { authorization: `Bearer ${await token('alice')}` }]
  ]
  for (const [name, headers] of cases) {
    const res = await app.inject({ method: 'POST', url, payload, headers })
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'unauthorized', name)
  }
  t.equal((await app.inject('/')).statusCode, 200, 'health routes stay open')
  t.equal((await app.inject('/readyz')).statusCode, 200)
})

t.test('jwt mode: issuer and audience are checked when configured', async (t) => {
  const { app } = await buildTestApp(t, { ...jwtConfig, JWT_ISSUER: 'https://id.example', JWT_AUDIENCE: 'chatty' })
  const good = await token(alice, { iss: 'https://id.example', aud: 'chatty' })
  const wrongAud = await token(alice, { iss: 'https://id.example', aud: 'other' })
  const noIss = await token(alice, { aud: 'chatty' })
  const send = (jwt: string) => app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: { authorization: `Bearer ${jwt}` } })
  t.equal((await send(good)).statusCode, 201)
  t.equal((await send(wrongAud)).statusCode, 401)
  t.equal((await send(noIss)).statusCode, 401)
})

t.test('jwt mode: the creator is a member and the owner; the sender defaults to the token user', async (t) => {
  const { app, dbUrl } = await buildTestApp(t, jwtConfig)
  await startJobs(t, dbUrl)
  const created = await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: await bearer(alice) })
  t.equal(created.statusCode, 201)
  const chat = created.json()
  t.same([...chat.participant_ids].sort(), [alice, bob].sort())
  const sent = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { body: 'from the token' }, headers: await bearer(alice) })
  t.equal(sent.statusCode, 202)
  const page = await waitFor(async () => {
    const body = (await app.inject({ url: `/api/v1/chat/${chat.id}/messages`, headers: await bearer(bob) })).json()
    return body.count > 0 ? body : undefined
  })
  t.equal(page.messages[0].sender_id, alice)
  const spoof = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { sender_id: bob, body: 'as bob' }, headers: await bearer(alice) })
  t.equal(spoof.statusCode, 403, 'a sender_id other than the token user is 403')

  // Edits and deletes act as the token user too.
  const messageUrl = `/api/v1/chat/${chat.id}/messages/${page.messages[0].id}`
  const edited = await app.inject({ method: 'PATCH', url: messageUrl, payload: { body: 'edited with the token' }, headers: await bearer(alice) })
  t.same([edited.statusCode, edited.json().message.body], [200, 'edited with the token'])
  const spoofDelete = await app.inject({ method: 'DELETE', url: `${messageUrl}?sender_id=${bob}`, headers: await bearer(alice) })
  t.equal(spoofDelete.statusCode, 403, 'a sender_id other than the token user is 403 on delete too')
  const deleted = await app.inject({ method: 'DELETE', url: messageUrl, headers: await bearer(alice) })
  t.same([deleted.statusCode, deleted.json().message.body, typeof deleted.json().message.deleted_at], [200, null, 'string'])
})

t.test('jwt mode: an outsider gets 403 on every route and changes nothing', async (t) => {
  const { app, dbUrl } = await buildTestApp(t, jwtConfig)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: await bearer(alice) })).json()
  const { message } = await sendMessage(app.chat, { conversationId: chat.id, senderId: alice, body: 'for members' })
  const state = async () => ({
    messages: await countRows(dbUrl, 'chat.message'),
    participants: await countRows(dbUrl, 'chat.participant'),
    blocks: await countRows(dbUrl, 'chat.block'),
    receipts: await countRows(dbUrl, 'chat.receipt'),
    read: await countRows(dbUrl, 'chat.participant WHERE last_read_msg IS NOT NULL'),
    changed: await countRows(dbUrl, 'chat.message WHERE edited_at IS NOT NULL OR deleted_at IS NOT NULL'),
    events: await countRows(dbUrl, 'chat.message_event')
  })
  const before = await state()
  const outsider = await bearer(eve)
  const calls: Array<[string, InjectOptions]> = [
    ['read history', { url: `/api/v1/chat/${chat.id}/messages`, headers: outsider }],
    ['list participants', { url: `/api/v1/chat/${chat.id}/participants`, headers: outsider }],
    ['send', { method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { body: 'let me in' }, headers: outsider }],
    ['send as a member', { method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { sender_id: alice, body: 'as alice' }, headers: outsider }],
    ['mute', { method: 'PUT', url: `/api/v1/chat/${chat.id}/mute`, payload: { until: null }, headers: outsider }],
    ['mute someone else', { method: 'PUT', url: `/api/v1/chat/${chat.id}/mute`, payload: { user_id: alice, until: null }, headers: outsider }],
    ['read history claiming a member', { url: `/api/v1/chat/${chat.id}/messages`, headers: { ...outsider, 'x-user-id': alice } }],
    ['block on behalf of another user', { method: 'PUT', url: `/api/v1/users/${alice}/blocks/${bob}`, headers: outsider }],
    ['list another user\'s blocks', { url: `/api/v1/users/${alice}/blocks`, headers: outsider }],
    ['mark read', { method: 'POST', url: `/api/v1/chat/${chat.id}/read`, payload: { message_id: message.id }, headers: outsider }],
    ['mark read as a member', { method: 'POST', url: `/api/v1/chat/${chat.id}/read`, payload: { user_id: alice, message_id: message.id }, headers: outsider }],
    ['list another user\'s conversations', { url: `/api/v1/users/${alice}/conversations`, headers: outsider }],
    ['read history around a seq', { url: `/api/v1/chat/${chat.id}/messages?around_seq=1`, headers: outsider }],
    ['add members', { method: 'POST', url: `/api/v1/chat/${chat.id}/participants`, payload: { user_ids: [eve] }, headers: outsider }],
    ['add members as the owner', { method: 'POST', url: `/api/v1/chat/${chat.id}/participants`, payload: { user_ids: [eve], actor_id: alice }, headers: outsider }],
    ['remove a member', { method: 'DELETE', url: `/api/v1/chat/${chat.id}/participants/${bob}`, headers: outsider }],
    ['remove a member as the owner', { method: 'DELETE', url: `/api/v1/chat/${chat.id}/participants/${bob}?actor_id=${alice}`, headers: outsider }],
    ['a member who is not an owner adds', { method: 'POST', url: `/api/v1/chat/${chat.id}/participants`, payload: { user_ids: [eve] }, headers: await bearer(bob) }],
    ['a member who is not an owner removes the owner', { method: 'DELETE', url: `/api/v1/chat/${chat.id}/participants/${alice}`, headers: await bearer(bob) }],
    ['edit a message', { method: 'PATCH', url: `/api/v1/chat/${chat.id}/messages/${message.id}`, payload: { body: 'mine now' }, headers: outsider }],
    ['edit a message as its sender', { method: 'PATCH', url: `/api/v1/chat/${chat.id}/messages/${message.id}`, payload: { sender_id: alice, body: 'mine now' }, headers: outsider }],
    ['delete a message', { method: 'DELETE', url: `/api/v1/chat/${chat.id}/messages/${message.id}`, headers: outsider }],
    ['delete a message as its sender', { method: 'DELETE', url: `/api/v1/chat/${chat.id}/messages/${message.id}?sender_id=${alice}`, headers: outsider }],
    ['a member edits another member\'s message', { method: 'PATCH', url: `/api/v1/chat/${chat.id}/messages/${message.id}`, payload: { body: 'edited by bob' }, headers: await bearer(bob) }],
    ['a member deletes another member\'s message', { method: 'DELETE', url: `/api/v1/chat/${chat.id}/messages/${message.id}`, headers: await bearer(bob) }],
    ['create a conversation owned by someone else', { method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob], creator_id: alice }, headers: outsider }]
  ]
  for (const [name, call] of calls) {
    const res = await app.inject(call)
    t.equal(res.statusCode, 403, name)
    t.equal(res.json().code, 'forbidden', name)
  }
  // The marker: a member's send through the same queue, stored by the worker; a refused call's
  // side effect, if any, is there by then.
  await startJobs(t, dbUrl)
  const marker = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { body: 'marker' }, headers: await bearer(alice) })
  t.equal(marker.statusCode, 202)
  await waitFor(async () => await countRows(dbUrl, `chat.message WHERE id = '${marker.json().message_id}'`) === 1, 'the marker to be stored')
  t.same(await state(), { ...before, messages: before.messages + 1 }, 'no side effect: only the marker was stored')
})

t.test('jwt mode: a user lists their own conversations', async (t) => {
  const { app } = await buildTestApp(t, jwtConfig)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: await bearer(alice) })).json()
  const own = await app.inject({ url: `/api/v1/users/${alice}/conversations`, headers: await bearer(alice) })
  t.equal(own.statusCode, 200)
  t.same(own.json().conversations.map((c: { id: string }) => c.id), [chat.id])
  t.same((await app.inject({ url: `/api/v1/users/${alice.toUpperCase()}/conversations`, headers: await bearer(alice) })).statusCode, 200, 'ids are case-insensitive')
})

t.test('jwt mode: an outsider\'s websocket frames are refused and change nothing', async (t) => {
  const { app, dbUrl, url } = await listen(t, jwtConfig)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: await bearer(alice) })).json()
  const { message } = await sendMessage(app.chat, { conversationId: chat.id, senderId: alice, body: 'for members' })
  const member = await openSocket(t, url, alice, { headers: await bearer(alice) })
  member.send({ type: 'join', conversation_id: chat.id })
  await member.until((frame) => frame.type === 'joined')
  const outsider = await openSocket(t, url, eve, { headers: await bearer(eve) })
  const frames: Array<[string, Record<string, unknown>]> = [
    ['join', { type: 'join', conversation_id: chat.id }],
    ['send', { type: 'message', conversation_id: chat.id, body: 'let me in' }],
    ['read', { type: 'read', conversation_id: chat.id, message_id: message.id }],
    ['delivered', { type: 'delivered', conversation_id: chat.id, message_id: message.id }],
    ['typing', { type: 'typing', conversation_id: chat.id }],
    ['edit', { type: 'edit', conversation_id: chat.id, message_id: message.id, body: 'mine now' }],
    ['delete', { type: 'delete', conversation_id: chat.id, message_id: message.id }]
  ]
  for (const [name, frame] of frames) {
    outsider.send({ ...frame, ref: name })
    t.same(await outsider.next(), { type: 'error', code: 'forbidden', error: 'user is not a participant in this conversation', ref: name }, name)
  }
  // The marker: a member's send through the same path; whatever the outsider caused came before it.
  member.send({ type: 'message', conversation_id: chat.id, body: 'marker' })
  await member.until((frame) => frame.type === 'message' && frame.message.body === 'marker')
  t.equal(await countRows(dbUrl, 'chat.receipt'), 0, 'no receipt')
  t.equal(await countRows(dbUrl, 'chat.participant WHERE last_read_msg IS NOT NULL'), 0, 'no read position')
  t.equal(await countRows(dbUrl, 'chat.message'), 2, 'no message but the marker')
  t.equal(await countRows(dbUrl, 'chat.message_event'), 0, 'no edit or delete')
  t.same(member.frames.filter((frame) => frame.type !== 'connected' && frame.type !== 'joined').map((frame) => frame.message?.body ?? frame.type), ['marker'], 'members see nothing before the marker')
})

t.test('jwt mode with a JWKS URL: RS256 and ES256 keys, and a rotated key is picked up', async (t) => {
  const rsa = await generateKeyPair('RS256')
  const ec = await generateKeyPair('ES256')
  const next = await generateKeyPair('RS256')
  let keys = [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256' }, { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256' }]
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTeardown(t, () => new Promise((resolve) => server.close(resolve)))
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`
  const { app } = await buildTestApp(t, { AUTH_MODE: 'jwt', JWKS_URL: jwksUrl, JWKS_COOLDOWN_MS: 0 })
  const sign = (privateKey: Parameters<SignJWT['sign']>[0], alg: string, kid: string) =>
    new SignJWT({}).setProtectedHeader({ alg, kid }).setSubject(alice).setIssuedAt().setExpirationTime('5m').sign(privateKey)
  const create = (jwt: string) => app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: { authorization: `Bearer ${jwt}` } })
  t.equal((await create(await sign(rsa.privateKey, 'RS256', 'rsa-1'))).statusCode, 201, 'RS256')
  t.equal((await create(await sign(ec.privateKey, 'ES256', 'ec-1'))).statusCode, 201, 'ES256')
  t.equal((await create(await token(alice))).statusCode, 401, 'HS256 is not accepted with a JWKS')
  // The identity provider rotates to a new key.
  keys = [{ ...(await exportJWK(next.publicKey)), kid: 'rsa-2', alg: 'RS256' }]
  t.equal((await create(await sign(next.privateKey, 'RS256', 'rsa-2'))).statusCode, 201, 'a new kid triggers a refetch')
})

t.test('a blocked user cannot send into a direct conversation with the blocker; unblock restores it', async (t) => {
  const { app, dbUrl } = await buildTestApp(t, jwtConfig)
  const direct = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: await bearer(alice) })).json()
  const group = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob, eve] }, headers: await bearer(alice) })).json()
  t.equal((await app.inject({ method: 'PUT', url: `/api/v1/users/${alice}/blocks/${bob}`, headers: await bearer(alice) })).statusCode, 204)
  t.same((await app.inject({ url: `/api/v1/users/${alice}/blocks`, headers: await bearer(alice) })).json(), { blocked_ids: [bob] })
  const blocked = await app.inject({ method: 'POST', url: `/api/v1/chat/${direct.id}`, payload: { body: 'hi' }, headers: await bearer(bob) })
  t.equal(blocked.statusCode, 403)
  t.equal(blocked.json().code, 'forbidden')
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${group.id}`, payload: { body: 'hi all' }, headers: await bearer(bob) })).statusCode, 202, 'group conversations are not affected')
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${direct.id}`, payload: { body: 'hi' }, headers: await bearer(alice) })).statusCode, 202, 'the blocker may still write')
  t.equal((await app.inject({ method: 'PUT', url: `/api/v1/users/${alice}/blocks/${alice}`, headers: await bearer(alice) })).statusCode, 400, 'no self-block')
  t.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/${alice}/blocks/${bob}`, headers: await bearer(alice) })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${direct.id}`, payload: { body: 'hi again' }, headers: await bearer(bob) })).statusCode, 202)
  t.equal(await countRows(dbUrl, 'chat.block'), 0)
})

t.test('a user blocked by another cannot start a direct conversation with them, whoever asks; groups are not affected', async (t) => {
  const { app, dbUrl } = await buildTestApp(t, jwtConfig)
  t.equal((await app.inject({ method: 'PUT', url: `/api/v1/users/${alice}/blocks/${bob}`, headers: await bearer(alice) })).statusCode, 204)
  const before = await countRows(dbUrl, 'chat.conversation')
  const refused = await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice.toUpperCase()] }, headers: await bearer(bob) })
  t.equal(refused.statusCode, 403, 'the blocked user asks: 403')
  t.same(Object.keys(refused.json()).sort(), ['code', 'error'])
  t.equal(refused.json().code, 'forbidden')
  t.equal((await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: await bearer(alice) })).statusCode, 403, 'the blocker asks: 403 too')
  t.equal(await countRows(dbUrl, 'chat.conversation'), before, 'nothing stored')
  t.equal((await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, eve] }, headers: await bearer(bob) })).statusCode, 201, 'a group with the blocker is allowed')
  t.equal((await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [eve] }, headers: await bearer(bob) })).statusCode, 201, 'a direct conversation with someone else is allowed')
  t.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/${alice}/blocks/${bob}`, headers: await bearer(alice) })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice] }, headers: await bearer(bob) })).statusCode, 201, 'after the unblock: 201')
})

t.test('a member mutes and unmutes a conversation', async (t) => {
  const { app, dbUrl } = await buildTestApp(t, jwtConfig)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob] }, headers: await bearer(alice) })).json()
  const until = new Date(Date.now() + 3_600_000).toISOString()
  const muted = await app.inject({ method: 'PUT', url: `/api/v1/chat/${chat.id}/mute`, payload: { until }, headers: await bearer(bob) })
  t.equal(muted.statusCode, 200)
  t.same(muted.json(), { conversation_id: chat.id, user_id: bob, muted_until: until })
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  const stored = (await client.query(`SELECT to_char(muted_until, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at FROM chat.participant WHERE user_id = $1`, [bob])).rows[0].at as string
  await client.end()
  t.equal(stored, until, 'stored as UTC')
  const unmuted = await app.inject({ method: 'PUT', url: `/api/v1/chat/${chat.id}/mute`, payload: { until: null }, headers: await bearer(bob) })
  t.same(unmuted.json().muted_until, null)
  t.equal((await app.inject({ method: 'PUT', url: `/api/v1/chat/${chat.id}/mute`, payload: { until: 'tomorrow' }, headers: await bearer(bob) })).statusCode, 400)
})

t.test('jwt mode needs a secret or a JWKS URL, and none mode is refused in production', async (t) => {
  await t.rejects(buildTestApp(t, { AUTH_MODE: 'jwt' }), /JWT_SECRET/)
  await t.rejects(buildTestApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: 'short' }), /JWT_SECRET/)
  await t.rejects(buildTestApp(t, { NODE_ENV: 'production' }), /JWT_SECRET/, 'production defaults to jwt')
})

t.test('`pnpm mint-token <user>` mints a token the api accepts as that user; bad arguments exit 2 with usage', async (t) => {
  const { execFile } = await import('node:child_process')
  const run = (args: string[], env: Record<string, string>) => new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
    execFile(process.execPath, ['scripts/mint-token.ts', ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr })
    })
  })
  const minted = await run([alice, '--ttl', '600'], { JWT_SECRET: SECRET })
  t.equal(minted.code, 0, minted.stderr)
  const { app } = await buildTestApp(t, jwtConfig)
  const created = await app.inject({ method: 'POST', url: '/api/v1/chat', headers: { authorization: `Bearer ${minted.stdout.trim()}` }, payload: { participant_ids: [bob] } })
  t.equal(created.statusCode, 201)
  t.same(created.json().participant_ids.toSorted(), [alice, bob].toSorted(), 'the token\'s user is the caller, added to the conversation')

  const noSecret = await run([alice], { JWT_SECRET: '' })
  t.equal(noSecret.code, 2)
  t.match(noSecret.stderr, /JWT_SECRET must be set/)
  const notAUser = await run(['alice'], { JWT_SECRET: SECRET })
  t.equal(notAUser.code, 2)
  t.match(notAUser.stderr, /usage: pnpm mint-token <user-uuid>/)
  const tooLong = await run([alice, '--ttl', '86401'], { JWT_SECRET: SECRET })
  t.equal(tooLong.code, 2, 'a lifetime the api would refuse is not minted')
  t.match(tooLong.stderr, /--ttl must be a whole number of seconds from 1 to 86400/)
  const longest = await run([alice, '--ttl', '86400'], { JWT_SECRET: SECRET })
  const accepted = await app.inject({ url: `/api/v1/users/${alice}/conversations`, headers: { authorization: `Bearer ${longest.stdout.trim()}` } })
  t.equal(accepted.statusCode, 200, 'the longest lifetime it mints is accepted')
})

t.test('jwt mode: a token without exp, or living longer than JWT_MAX_AGE_S, is 401', async (t) => {
  const { app } = await buildTestApp(t, jwtConfig)
  const { app: strict } = await buildTestApp(t, { ...jwtConfig, JWT_MAX_AGE_S: 600 })
  const now = Math.floor(Date.now() / 1000)
  const sign = (claims: { iat?: number, exp?: number }) => {
    let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(alice)
    if (claims.iat !== undefined) jwt = jwt.setIssuedAt(claims.iat)
    if (claims.exp !== undefined) jwt = jwt.setExpirationTime(claims.exp)
    return jwt.sign(key)
  }
  const read = async (target: typeof app, claims: { iat?: number, exp?: number }) =>
    target.inject({ url: `/api/v1/users/${alice}/conversations`, headers: { authorization: `Bearer ${await sign(claims)}` } })
  const cases: Array<[string, typeof app, { iat?: number, exp?: number }, number]> = [
    ['no exp', app, { iat: now }, 401],
    ['no exp and no iat', app, {}, 401],
    ['a day and a minute (exp - iat)', app, { iat: now, exp: now + 86_460 }, 401],
    ['issued long ago, a day and a minute in all, though not expired', app, { iat: now - 60, exp: now + 86_400 }, 401],
    ['no iat, more than a day left', app, { exp: now + 86_460 }, 401],
    ['iat in the future, more than a day left', app, { iat: now + 86_400, exp: now + 87_000 }, 401],
    ['exactly a day', app, { iat: now, exp: now + 86_400 }, 200],
    ['no iat, an hour left', app, { exp: now + 3600 }, 200],
    ['an hour, over a ceiling of 600 s', strict, { iat: now, exp: now + 3600 }, 401],
    ['ten minutes, within a ceiling of 600 s', strict, { iat: now, exp: now + 600 }, 200]
  ]
  for (const [name, target, claims, status] of cases) {
    const res = await read(target, claims)
    t.equal(res.statusCode, status, name)
    if (status === 401) t.equal(res.json().code, 'unauthorized', name)
  }
  t.match((await read(app, { iat: now })).json().error, /must expire/)
  await t.rejects(buildTestApp(t, { ...jwtConfig, JWT_MAX_AGE_S: 0 }), /JWT_MAX_AGE_S/, 'a ceiling of 0 is refused at start-up')
})

/** A JWKS endpoint whose answer a test changes: keys, a status code, or down (connections refused). */
async function jwksServer (t: Test) {
  const state = { keys: [] as object[], status: 200, hits: 0 }
  const server = http.createServer((_req, res) => {
    state.hits++
    res.statusCode = state.status
    res.setHeader('content-type', 'application/json')
    res.end(state.status === 200 ? JSON.stringify({ keys: state.keys }) : '{"error":"down"}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  let up = true
  onTeardown(t, () => up ? new Promise((resolve) => server.close(resolve)) : undefined)
  return {
    state,
    url: `http://127.0.0.1:${port}/jwks.json`,
    async stop () {
      up = false
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
    async start () {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()))
      up = true
    }
  }
}

t.test('with JWKS_URL, an identity provider that is down or failing answers 503 unavailable, never 500 or a grant', async (t) => {
  const rsa = await generateKeyPair('RS256')
  const jwks = await jwksServer(t)
  jwks.state.keys = [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256' }]
  const sign = (kid: string) => new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid }).setSubject(alice).setIssuedAt().setExpirationTime('5m').sign(rsa.privateKey)
  const readAs = async (target: TestApp['app'], kid: string) =>
    target.inject({ url: `/api/v1/users/${alice}/conversations`, headers: { authorization: `Bearer ${await sign(kid)}` } })

  // Down before the first fetch: connections refused.
  await jwks.stop()
  const { app: fresh } = await buildTestApp(t, { AUTH_MODE: 'jwt', JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: 0 })
  const refused = await readAs(fresh, 'rsa-1')
  t.equal(refused.statusCode, 503, 'provider down: 503')
  t.same(Object.keys(refused.json()).sort(), ['code', 'error'])
  t.equal(refused.json().code, 'unavailable')
  await jwks.start()

  // Answering 500, and answering 200 with something that is not a key set.
  jwks.state.status = 500
  const { app } = await buildTestApp(t, { AUTH_MODE: 'jwt', JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: 0 })
  const failing = await readAs(app, 'rsa-1')
  t.equal(failing.statusCode, 503, 'provider answering 500: 503')
  t.equal(failing.json().code, 'unavailable')
  jwks.state.status = 200
  const keys = jwks.state.keys
  jwks.state.keys = 'not keys' as unknown as object[]
  t.equal((await readAs(app, 'rsa-1')).statusCode, 503, 'a malformed key set: 503')
  jwks.state.keys = keys
  t.equal((await readAs(app, 'rsa-1')).statusCode, 200, 'back: the token is accepted')
  // A token signed by a key the provider does not have stays a token error, not an outage.
  t.equal((await readAs(app, 'rsa-unknown')).statusCode, 401, 'unknown kid with the provider up: 401')
})

t.test('with JWKS_URL, refetches are bounded while the provider fails, shared while in flight, and resume when it is back', async (t) => {
  const rsa = await generateKeyPair('RS256')
  const next = await generateKeyPair('RS256')
  const jwks = await jwksServer(t)
  jwks.state.keys = [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256' }]
  const cooldown = 3000
  const { app } = await buildTestApp(t, { AUTH_MODE: 'jwt', JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: cooldown })
  const sign = (privateKey: Parameters<SignJWT['sign']>[0], kid: string) =>
    new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid }).setSubject(alice).setIssuedAt().setExpirationTime('5m').sign(privateKey)
  const read = async (jwt: string) => app.inject({ url: `/api/v1/users/${alice}/conversations`, headers: { authorization: `Bearer ${jwt}` } })
  const known = await sign(rsa.privateKey, 'rsa-1')
  t.equal((await read(known)).statusCode, 200)
  t.equal(jwks.state.hits, 1)

  // The provider starts failing; a key it does not serve (a rotation in progress) keeps arriving.
  jwks.state.status = 500
  await sleep(cooldown)
  const started = Date.now()
  const unknown = await Promise.all(Array.from({ length: 30 }, (_, i) => sign(next.privateKey, `rsa-${i + 2}`)))
  const burst = await Promise.all(unknown.map(read))
  const more = []
  for (const jwt of unknown) more.push(await read(jwt))
  const within = Date.now() - started < cooldown
  for (const res of [...burst, ...more]) {
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'unavailable')
  }
  if (within) t.equal(jwks.state.hits, 2, '60 requests with unknown kids within one cooldown: one fetch, shared')
  else t.ok(jwks.state.hits <= 2 + Math.ceil((Date.now() - started) / cooldown), 'at most one fetch per cooldown')
  t.equal((await read(known)).statusCode, 200, 'a token whose key is in hand still works during the outage')

  // Back, with the new key: after the cooldown the next request fetches it.
  jwks.state.status = 200
  jwks.state.keys = [...jwks.state.keys, { ...(await exportJWK(next.publicKey)), kid: 'rsa-2', alg: 'RS256' }]
  const back = await waitFor(async () => {
    const res = await read(unknown[0]!)
    return res.statusCode === 503 ? undefined : res
  }, { timeoutMs: 3 * cooldown + 10_000, intervalMs: 200 })
  t.equal(back.statusCode, 200, 'recovered')
})
