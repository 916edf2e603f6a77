// Reactions, pins and search over real HTTP and websockets, with members on a second api process
// (a real child process): live events in seq order, idempotent repeats that broadcast nothing
// (decided by a later marker arriving first), acknowledgements with ref, every refusal as a clear
// 4xx or error frame, resume after a reconnect, a deleted pinned message unpinned, search's reach,
// both auth modes, and go-chatty clients (snake_case and camelCase) that know none of this.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { SignJWT } from 'jose'
import { pinMessage, sendMessage } from '@chatty/chat'
import { createRestClient, type MessagePinnedFrame, type ReactionEventFrame } from '@chatty/client'
import { users, waitFor } from '@chatty/db/testing'
import { buildTestApp, query, storeMessages } from './helper.ts'
import { startService } from './process-helper.ts'
import { ack, chatClient, createChat, listen, openSocket, rawSocket, type Frame, type RawSocket } from './ws-helper.ts'

const { alice, bob, eve } = users
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const UNKNOWN = '99999999-9999-4999-8999-999999999999'

function reactionUrl (chat: string, message: string, reaction: string, userId?: string): string {
  return `/api/v1/chat/${chat}/messages/${message}/reactions/${encodeURIComponent(reaction)}${userId === undefined ? '' : `?user_id=${userId}`}`
}

const react = (app: FastifyInstance, chat: string, message: string, reaction: string, userId?: string, method: 'PUT' | 'DELETE' = 'PUT') =>
  app.inject({ method, url: reactionUrl(chat, message, reaction, userId) })

const pin = (app: FastifyInstance, chat: string, message: string, userId?: string, method: 'PUT' | 'DELETE' = 'PUT') =>
  app.inject({ method, url: `/api/v1/chat/${chat}/pins/${message}${userId === undefined ? '' : `?user_id=${userId}`}` })

async function joined (socket: RawSocket, chat: string, sinceSeq?: number): Promise<Frame[]> {
  socket.send({ type: 'join', conversation_id: chat, ...(sinceSeq === undefined ? {} : { since_seq: sinceSeq }), ref: 'j' })
  const frames: Frame[] = []
  for (let frame = await socket.next(); frame.type !== 'joined'; frame = await socket.next()) frames.push(frame)
  return frames
}

/** The seq of a frame in the conversation's order. */
const orderSeq = (frame: Frame): number => frame.type === 'message' ? frame.message.seq : frame.seq

t.test('reactions and pins over REST reach members on another api process live, in seq order; repeats broadcast nothing', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const other = await startService(t, 'services/api/src/server.ts', { DB_URL: dbUrl })
  const chat = await createChat(app, [alice, bob])
  const [hello] = await storeMessages(app, chat, bob, ['hello'])
  const b = await openSocket(t, other.url, bob)
  await joined(b, chat)
  const a = await openSocket(t, url, alice)
  await joined(a, chat)

  const added = await react(app, chat, hello!, '👍', alice)
  t.equal(added.statusCode, 200)
  const expected = { conversation_id: chat, seq: 2, message_id: hello, user_id: alice, reaction: '👍', reactions: { '👍': 1 } }
  t.same(added.json(), expected)
  t.same(await b.next(), { type: 'reaction_added', ...expected }, 'a member on the other process gets reaction_added')
  t.same(await a.next(), { type: 'reaction_added', ...expected }, 'and so does the reactor\'s own joined socket')

  const again = await react(app, chat, hello!, '👍', alice)
  t.same(again.json(), { ...expected, seq: null }, 'a repeat answers seq null')
  const shortcode = await react(app, chat, hello!, ':thumbs_up:', bob)
  t.same(shortcode.json().reactions, { '👍': 1, ':thumbs_up:': 1 })
  t.same(await b.next(), { type: 'reaction_added', conversation_id: chat, seq: 3, message_id: hello, user_id: bob, reaction: ':thumbs_up:', reactions: { '👍': 1, ':thumbs_up:': 1 } },
    'the next frame after the repeat is the next change: the repeat broadcast nothing')

  const pinned = await pin(app, chat, hello!, bob)
  t.equal(pinned.statusCode, 200)
  t.match(pinned.json(), { conversation_id: chat, seq: 4, message: { id: hello, seq: 1, pinned_at: ISO, pinned_by: bob, reactions: { '👍': 1, ':thumbs_up:': 1 } } })
  t.same(await b.next(), { type: 'message_pinned', conversation_id: chat, seq: 4, message: pinned.json().message })
  t.same((await pin(app, chat, hello!, alice)).json(), { ...pinned.json(), seq: null }, 'pinning again changes nothing')

  const removed = await react(app, chat, hello!, '👍', alice, 'DELETE')
  t.same(removed.json(), { conversation_id: chat, seq: 5, message_id: hello, user_id: alice, reaction: '👍', reactions: { ':thumbs_up:': 1 } })
  t.same(await b.next(), { type: 'reaction_removed', ...removed.json() }, 'the pin repeat sent nothing either')
  t.equal((await react(app, chat, hello!, '👍', alice, 'DELETE')).json().seq, null, 'removing it again changes nothing')
  const unpinned = await pin(app, chat, hello!, alice, 'DELETE')
  t.match(unpinned.json(), { seq: 6, message: { id: hello, pinned_at: null, pinned_by: null } })
  t.equal((await pin(app, chat, hello!, alice, 'DELETE')).json().seq, null)

  // The marker: a message after every repeat; nothing came between the last change and it.
  a.send({ type: 'message', conversation_id: chat, body: 'marker' })
  t.same((await b.next()).type, 'message_unpinned')
  const marker = await b.next()
  t.same([marker.type, marker.message.seq, marker.message.body, marker.message.reactions, marker.message.pinned_at], ['message', 7, 'marker', {}, null])
  t.same(b.frames.map((frame) => [frame.type, frame.type === 'connected' || frame.type === 'joined' ? null : orderSeq(frame)]),
    [['connected', null], ['joined', null], ['reaction_added', 2], ['reaction_added', 3], ['message_pinned', 4], ['reaction_removed', 5], ['message_unpinned', 6], ['message', 7]],
    'every change once, in seq order, and nothing for the repeats')

  const history = (await app.inject(`/api/v1/chat/${chat}/messages`)).json().messages
  t.same(history.map((m: Frame) => [m.seq, m.reactions, m.pinned_at]), [[7, {}, null], [1, { ':thumbs_up:': 1 }, null]], 'history shows the reactions')
  const list = (await app.inject(`/api/v1/chat/${chat}/messages/${hello}/reactions`)).json()
  t.same([list.reactions.map((r: Frame) => [r.user_id, r.reaction]), list.next_cursor], [[[bob, ':thumbs_up:']], null])
  t.match(list.reactions[0].created_at, ISO)
})

t.test('react, unreact, pin and unpin frames: acks with ref, the events, errors that keep the socket open and change nothing', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const sql = await query(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const [mine, doomed] = await storeMessages(app, chat, alice, ['mine', 'doomed'])
  await app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat}/messages/${doomed}?sender_id=${alice}` })
  const b = await openSocket(t, url, bob)
  await joined(b, chat)
  // Alice's socket is not joined: it gets each event itself, as a sender does with messages.
  const a = await openSocket(t, url, alice)

  a.send({ type: 'react', conversation_id: chat, message_id: mine, reaction: '🎉', ref: 'r1' })
  const event = { conversation_id: chat, seq: 4, message_id: mine, user_id: alice, reaction: '🎉', reactions: { '🎉': 1 } }
  t.same(await a.next(), { type: 'reaction_added', ...event })
  t.same(await a.next(), { type: 'reacted', ...event, ref: 'r1' })
  t.same(await b.next(), { type: 'reaction_added', ...event })
  a.send({ type: 'react', conversation_id: chat, message_id: mine, reaction: '🎉', ref: 'r2' })
  t.same(await a.next(), { type: 'reacted', ...event, seq: null, ref: 'r2' }, 'a repeat: acknowledged with seq null, and no event')
  a.send({ type: 'unreact', conversation_id: chat, message_id: mine, reaction: '🎉', ref: 'u1' })
  t.same(await a.next(), { type: 'reaction_removed', ...event, seq: 5, reactions: {} })
  t.same(await a.next(), { type: 'unreacted', ...event, seq: 5, reactions: {}, ref: 'u1' })
  t.same(await b.next(), { type: 'reaction_removed', ...event, seq: 5, reactions: {} }, 'b got nothing for the repeat')

  a.send({ type: 'pin', conversation_id: chat, message_id: mine, ref: 'p1' })
  const pinnedEvent = await a.next()
  t.match(pinnedEvent, { type: 'message_pinned', conversation_id: chat, seq: 6, message: { id: mine, pinned_by: alice, pinned_at: ISO } })
  t.same(await a.next(), { type: 'pinned', conversation_id: chat, seq: 6, message: pinnedEvent.message, ref: 'p1' })
  t.same(await b.next(), pinnedEvent)
  a.send({ type: 'pin', conversation_id: chat, message_id: mine, ref: 'p2' })
  t.same(await a.next(), { type: 'pinned', conversation_id: chat, seq: null, message: pinnedEvent.message, ref: 'p2' })
  a.send({ type: 'unpin', conversation_id: chat, message_id: mine, ref: 'p3' })
  const unpinnedEvent = await a.next()
  t.match(unpinnedEvent, { type: 'message_unpinned', seq: 7, message: { id: mine, pinned_at: null, pinned_by: null } })
  t.same(await a.next(), { type: 'unpinned', conversation_id: chat, seq: 7, message: unpinnedEvent.message, ref: 'p3' })
  a.send({ type: 'unpin', conversation_id: chat, message_id: mine, ref: 'p4' })
  t.same(await a.next(), { type: 'unpinned', conversation_id: chat, seq: null, message: unpinnedEvent.message, ref: 'p4' })

  const errors: Array<[string, object, string, string | RegExp]> = [
    ['a deleted message', { type: 'react', conversation_id: chat, message_id: doomed, reaction: '👍' }, 'bad_request', 'the message was deleted; it takes no reactions'],
    ['pin a deleted message', { type: 'pin', conversation_id: chat, message_id: doomed }, 'bad_request', 'the message was deleted; it cannot be pinned'],
    ['whitespace', { type: 'react', conversation_id: chat, message_id: mine, reaction: 'thumbs up' }, 'bad_request', 'reaction must not contain whitespace or control characters'],
    ['empty', { type: 'react', conversation_id: chat, message_id: mine, reaction: '' }, 'bad_request', 'reaction must be 1 to 32 characters'],
    ['33 characters', { type: 'unreact', conversation_id: chat, message_id: mine, reaction: 'x'.repeat(33) }, 'bad_request', 'reaction must be 1 to 32 characters'],
    ['no reaction', { type: 'react', conversation_id: chat, message_id: mine }, 'bad_request', /required propert/],
    ['a reaction that is not a string', { type: 'react', conversation_id: chat, message_id: mine, reaction: 1 }, 'bad_request', 'reaction must be string'],
    ['an unknown message', { type: 'pin', conversation_id: chat, message_id: UNKNOWN }, 'bad_request', 'message not found in this conversation'],
    ['message_id not a uuid', { type: 'unpin', conversation_id: chat, message_id: 'm1' }, 'bad_request', 'message_id must match format "uuid"']
  ]
  for (const [name, frame, code, error] of errors) {
    a.send({ ...frame, ref: name })
    const reply = await a.next()
    t.same([reply.type, reply.code, reply.ref], ['error', code, name], name)
    t.match(reply.error, error, name)
  }
  const e = await openSocket(t, url, eve)
  for (const type of ['react', 'unreact', 'pin', 'unpin']) {
    e.send({ type, conversation_id: chat, message_id: mine, reaction: '👍', ref: type })
    t.same(await e.next(), { type: 'error', code: 'forbidden', error: 'user is not a participant in this conversation', ref: type }, `an outsider: ${type}`)
  }
  t.same(await sql('SELECT last_seq::int FROM chat.conversation WHERE id = $1', [chat]), [{ last_seq: 7 }], 'no seq taken by a refusal')
  t.same(await sql('SELECT count(*)::int AS n FROM chat.reaction'), [{ n: 0 }])
  a.send({ type: 'react', conversation_id: chat, message_id: mine, reaction: 'marker' })
  await b.until((frame) => frame.type === 'reaction_added' && frame.reaction === 'marker')
  t.same(b.frames.map((frame) => frame.type), ['connected', 'joined', 'reaction_added', 'reaction_removed', 'message_pinned', 'message_unpinned', 'reaction_added'],
    'the joined member saw the four changes, then the marker: nothing for repeats or refusals')
})

t.test('REST: every refusal is a clear 4xx and changes nothing; the limits', async (t) => {
  const { app, dbUrl } = await listen(t)
  const sql = await query(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const [mine, doomed] = await storeMessages(app, chat, alice, ['mine', 'doomed'])
  await app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat}/messages/${doomed}?sender_id=${alice}` })
  const other = await createChat(app, [alice])
  const [elsewhere] = await storeMessages(app, other, alice, ['elsewhere'])
  const before = await sql('SELECT last_seq::int FROM chat.conversation WHERE id = $1', [chat])

  const cases: Array<[string, Promise<Awaited<ReturnType<typeof react>>>, number, string]> = [
    ['no user_id', react(app, chat, mine!, '👍'), 400, 'bad_request'],
    ['user_id not a uuid', react(app, chat, mine!, '👍', 'nope'), 400, 'bad_request'],
    ['whitespace in the reaction', react(app, chat, mine!, 'a b', alice), 400, 'bad_request'],
    ['a 33-character reaction', react(app, chat, mine!, 'x'.repeat(33), alice), 400, 'bad_request'],
    ['a control character', react(app, chat, mine!, 'a\u0001', alice), 400, 'bad_request'],
    ['an outsider reacts', react(app, chat, mine!, '👍', eve), 403, 'forbidden'],
    ['an outsider pins', pin(app, chat, mine!, eve), 403, 'forbidden'],
    ['react to a deleted message', react(app, chat, doomed!, '👍', alice), 409, 'conflict'],
    ['pin a deleted message', pin(app, chat, doomed!, alice), 409, 'conflict'],
    ['an unknown message', react(app, chat, UNKNOWN, '👍', alice), 404, 'not_found'],
    ['pin an unknown message', pin(app, chat, UNKNOWN, alice), 404, 'not_found'],
    ['a message of another conversation', pin(app, chat, elsewhere!, alice), 404, 'not_found'],
    ['an unknown conversation', react(app, UNKNOWN, mine!, '👍', alice), 404, 'not_found'],
    ['message_id not a uuid', pin(app, chat, 'nope', alice), 400, 'bad_request'],
    ['list reactions of an unknown message', app.inject(`/api/v1/chat/${chat}/messages/${UNKNOWN}/reactions`), 404, 'not_found'],
    ['list reactions with a bad cursor', app.inject(`/api/v1/chat/${chat}/messages/${mine}/reactions?cursor=nope`), 400, 'bad_request'],
    ['list reactions as an outsider', app.inject({ url: `/api/v1/chat/${chat}/messages/${mine}/reactions`, headers: { 'x-user-id': eve } }), 403, 'forbidden'],
    ['list pins as an outsider', app.inject({ url: `/api/v1/chat/${chat}/pins`, headers: { 'x-user-id': eve } }), 403, 'forbidden'],
    ['list pins of an unknown conversation', app.inject(`/api/v1/chat/${UNKNOWN}/pins`), 404, 'not_found']
  ]
  for (const [name, pending, status, code] of cases) {
    const res = await pending
    t.same([res.statusCode, res.json().code], [status, code], name)
    t.type(res.json().error, 'string', name)
  }
  t.same(await sql('SELECT last_seq::int FROM chat.conversation WHERE id = $1', [chat]), before, 'no seq taken by a refusal')
  t.same(await sql('SELECT count(*)::int AS n FROM chat.reaction'), [{ n: 0 }], 'no reaction stored')

  const longest = '😀'.repeat(32)
  t.same([(await react(app, chat, mine!, longest, alice)).statusCode, (await react(app, chat, mine!, longest, alice, 'DELETE')).statusCode], [200, 200],
    'a 32-emoji reaction fits in the path')
  for (let i = 1; i <= 20; i++) t.equal((await react(app, chat, mine!, `:r${i}:`, alice)).statusCode, 200)
  const over = await react(app, chat, mine!, ':r21:', alice)
  t.same([over.statusCode, over.json()], [400, { error: 'at most 20 different reactions per user on one message', code: 'bad_request' }])

  const [pinned] = await storeMessages(app, chat, alice, ['first pinned'])
  for (let i = 0; i < 50; i++) {
    const { message } = await sendMessage(app.chat, { conversationId: chat, senderId: bob, body: `p${i}` })
    await pinMessage(app.chat, { conversationId: chat, messageId: i === 0 ? pinned! : message.id, userId: bob })
  }
  const full = await pin(app, chat, mine!, alice)
  t.same([full.statusCode, full.json()], [409, { error: 'at most 50 pinned messages per conversation; unpin one first', code: 'conflict' }])
  const pins = (await app.inject(`/api/v1/chat/${chat}/pins`)).json().messages
  t.same([pins.length, pins.at(-1).id, pins.at(-1).body], [50, pinned, 'first pinned'], 'the pins, most recently pinned first')
})

t.test('a client away while reactions, pins and a delete of a pinned message happen resumes and gets them in seq order', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const other = await startService(t, 'services/api/src/server.ts', { DB_URL: dbUrl })
  const chat = await createChat(app, [alice, bob])
  const [one, two] = await storeMessages(app, chat, alice, ['one', 'two'])
  const first = await openSocket(t, other.url, bob)
  t.same((await joined(first, chat, 0)).map(orderSeq), [1, 2])
  first.ws.close()
  await first.closed

  const a = await openSocket(t, url, alice)
  await ack(a, { type: 'react', conversation_id: chat, message_id: one, reaction: '👍' })
  await ack(a, { type: 'pin', conversation_id: chat, message_id: two })
  await ack(a, { type: 'react', conversation_id: chat, message_id: one, reaction: '👍' })
  await ack(a, { type: 'message', conversation_id: chat, body: 'three' })
  await ack(a, { type: 'react', conversation_id: chat, message_id: two, reaction: '❤️' })
  await ack(a, { type: 'unreact', conversation_id: chat, message_id: one, reaction: '👍' })
  await ack(a, { type: 'delete', conversation_id: chat, message_id: two })

  const back = await openSocket(t, url, bob)
  const frames = await joined(back, chat, 2)
  t.same(frames.map((frame) => [frame.type, orderSeq(frame)]), [
    ['reaction_added', 3], ['message_pinned', 4], ['message', 5], ['reaction_added', 6], ['reaction_removed', 7], ['message_deleted', 8], ['message_unpinned', 9]
  ], 'every missed change once, in seq order (the repeat took no seq); the delete of the pinned message unpinned it')
  t.same(frames[0], { type: 'reaction_added', conversation_id: chat, seq: 3, message_id: one, user_id: alice, reaction: '👍', reactions: {} },
    'replayed events carry the message\'s reactions as they are now')
  t.match(frames[6], { type: 'message_unpinned', seq: 9, message: { id: two, body: null, deleted_at: ISO, pinned_at: null, pinned_by: null } })
  t.same(back.frames.at(-1), { type: 'joined', conversation_id: chat, last_seq: 9, ref: 'j' })
  t.same((await app.inject(`/api/v1/chat/${chat}/pins`)).json().messages, [], 'a deleted pinned message is unpinned')

  // The client library: typed events, the resume position moves past reactions and pins (no gap).
  const client = await chatClient(t, other.url, bob)
  const events: Array<ReactionEventFrame | MessagePinnedFrame> = []
  const gaps: unknown[] = []
  client.on('reaction', (frame) => events.push(frame))
  client.on('pin', (frame) => events.push(frame))
  client.on('gap', (gap) => gaps.push(gap))
  await client.join(chat, { sinceSeq: 9 })
  const rest = createRestClient({ baseUrl: url })
  const [three] = (await app.inject(`/api/v1/chat/${chat}/messages?limit=1`)).json().messages
  t.same((await rest.react(chat, three.id, ':ok:', { userId: alice })).seq, 10)
  t.same((await rest.pin(chat, three.id, { userId: alice })).seq, 11)
  t.same((await client.react(chat, three.id, ':ok:')).reactions, { ':ok:': 2 })
  t.same((await client.unpin(chat, three.id)).seq, 13)
  t.same((await rest.listPins(chat)).length, 0)
  t.same((await rest.listReactions(chat, three.id)).reactions.map((r) => r.user_id), [alice, bob])
  await waitFor(() => events.length === 4)
  t.same(events.map((frame) => [frame.type, frame.seq]), [['reaction_added', 10], ['message_pinned', 11], ['reaction_added', 12], ['message_unpinned', 13]])
  await client.send(chat, { body: 'four' })
  await waitFor(() => client.received.length > 0)
  t.same(client.received.map((m) => m.seq), [14], 'the next message follows with no gap')
  t.same(gaps, [])
})

t.test('search over REST: the caller\'s current conversations, user_id in none mode, refusals', async (t) => {
  const { app } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const other = await createChat(app, [alice, eve])
  const [first] = await storeMessages(app, chat, bob, ['the secret plan'])
  const [second] = await storeMessages(app, other, alice, ['another secret'])
  const search = (query: string) => app.inject(`/api/v1/search?${query}`)

  const found = await search(`q=secret&user_id=${alice}`)
  t.equal(found.statusCode, 200)
  t.same(found.json().results.map((r: Frame) => r.message.id), [second, first])
  t.same(found.json().next_cursor, null)
  t.same(Object.keys(found.json().results[0].message), ['id', 'conversation_id', 'sender_id', 'seq', 'created_at', 'body', 'msg_type', 'attachment_url', 'attachment_meta',
    'dedupe_key', 'edited_at', 'deleted_at', 'parent_id', 'reply_count', 'last_reply_at', 'mentioned_user_ids', 'reactions', 'pinned_at', 'pinned_by'], 'whole message objects, nulls present')
  const paged = await search(`q=secret&user_id=${alice}&limit=1`)
  t.same(paged.json().results.map((r: Frame) => r.message.id), [second])
  const next = await search(`q=secret&user_id=${alice}&limit=1&cursor=${paged.json().next_cursor}`)
  t.same([next.json().results.map((r: Frame) => r.message.id), next.json().next_cursor], [[first], null])
  t.same((await search(`q=secret&userId=${alice}&conversationId=${chat}`)).json().results.map((r: Frame) => r.message.id), [first], 'camelCase aliases, one conversation')
  t.same((await search(`q=${encodeURIComponent('"secret plan"')}&user_id=${bob}`)).json().results.length, 1)

  await app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat}/participants/${bob}?actor_id=${bob}` })
  t.same((await search(`q=secret&user_id=${bob}`)).json().results, [], 'a removed member no longer finds the conversation\'s messages')

  const cases: Array<[string, string, number, string]> = [
    ['no user_id', 'q=secret', 400, 'bad_request'],
    ['no q', `user_id=${alice}`, 400, 'bad_request'],
    ['an empty q', `q=&user_id=${alice}`, 400, 'bad_request'],
    ['a blank q', `q=%20%20&user_id=${alice}`, 400, 'bad_request'],
    ['q over 200 characters', `q=${'x'.repeat(201)}&user_id=${alice}`, 400, 'bad_request'],
    ['a bad cursor', `q=secret&user_id=${alice}&cursor=nope`, 400, 'bad_request'],
    ['limit 0', `q=secret&user_id=${alice}&limit=0`, 400, 'bad_request'],
    ['a conversation the user is not in', `q=secret&user_id=${bob}&conversation_id=${other}`, 403, 'forbidden'],
    ['an unknown conversation', `q=secret&user_id=${bob}&conversation_id=${UNKNOWN}`, 404, 'not_found']
  ]
  for (const [name, query, status, code] of cases) {
    const res = await search(query)
    t.same([res.statusCode, res.json().code], [status, code], name)
  }
})

t.test('with a token: the token\'s user acts and searches; a differing user_id is 403', async (t) => {
  const SECRET = 'test-secret-test-secret-test-secret!'
  const { app } = await buildTestApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET })
  const token = async (sub: string) => `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))}`
  const as = async (sub: string) => ({ authorization: await token(sub) })
  const created = await app.inject({ method: 'POST', url: '/api/v1/chat', headers: await as(alice), payload: { participant_ids: [bob] } })
  const chat: string = created.json().id
  const [hello] = await storeMessages(app, chat, alice, ['hello token'])
  const put = await app.inject({ method: 'PUT', url: reactionUrl(chat, hello!, '👍'), headers: await as(bob) })
  t.same([put.statusCode, put.json().user_id], [200, bob], 'the token\'s user reacts')
  const forged = await app.inject({ method: 'PUT', url: reactionUrl(chat, hello!, '👍', alice), headers: await as(bob) })
  t.same([forged.statusCode, forged.json().code], [403, 'forbidden'], 'a differing user_id is 403')
  const pinned = await app.inject({ method: 'PUT', url: `/api/v1/chat/${chat}/pins/${hello}?user_id=${bob}`, headers: await as(bob) })
  t.same([pinned.statusCode, pinned.json().message.pinned_by], [200, bob], 'the same user_id is fine')
  t.equal((await app.inject({ method: 'GET', url: `/api/v1/chat/${chat}/pins`, headers: await as(eve) })).statusCode, 403, 'an outsider cannot list the pins')
  t.equal((await app.inject({ method: 'GET', url: `/api/v1/chat/${chat}/messages/${hello}/reactions`, headers: await as(eve) })).statusCode, 403)
  const found = await app.inject({ url: '/api/v1/search?q=hello', headers: await as(bob) })
  t.same(found.json().results.map((r: Frame) => r.message.id), [hello])
  t.same((await app.inject({ url: '/api/v1/search?q=hello', headers: await as(eve) })).json().results, [], 'an outsider finds nothing')
  const other = await app.inject({ url: `/api/v1/search?q=hello&user_id=${bob}`, headers: await as(eve) })
  t.same([other.statusCode, other.json().code], [403, 'forbidden'], 'searching as someone else is 403')
  t.equal((await app.inject({ url: '/api/v1/search?q=hello' })).statusCode, 401, 'no token')
})

t.test('go-chatty clients that know none of this get exactly the frames they knew, plus fields they ignore', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  // snake_case, as go-chatty's first protocol: no ref, no since_seq.
  const snake = await openSocket(t, url, alice)
  snake.send({ type: 'join', conversation_id: chat })
  snake.send({ type: 'message', conversation_id: chat, body: 'hi', msg_type: 0 })
  await snake.until((frame) => frame.type === 'message')
  const camel = rawSocket(t, url, { userId: bob })
  t.same(await camel.next(), { type: 'connected' })
  camel.send({ type: 'join', conversationId: chat })
  t.same(await camel.next(), { type: 'joined', conversationId: chat, lastSeq: 1 })
  camel.send({ type: 'message', conversationId: chat, body: 'yo', msgType: 0 })
  const echo = await camel.next()
  t.same(Object.keys(echo.message), ['id', 'conversationId', 'senderId', 'seq', 'createdAt', 'body', 'msgType'], 'camelCase: exactly go-chatty\'s fields (nulls, and chatty\'s additions while empty, left out)')
  await snake.until((frame) => frame.type === 'message' && frame.message.body === 'yo')
  t.same(snake.frames.map((frame) => frame.type), ['connected', 'joined', 'message', 'message'], 'snake_case: exactly go-chatty\'s frames for its own actions')
  t.same(camel.frames.map((frame) => frame.type), ['connected', 'joined', 'message'])

  // Someone else's reaction reaches them as a frame of a type they ignore; its keys are data, not renamed.
  await react(app, chat, echo.message.id, ':thumbs_up:', alice)
  t.same(await camel.next(), { type: 'reaction_added', conversationId: chat, seq: 3, messageId: echo.message.id, userId: alice, reaction: ':thumbs_up:', reactions: { ':thumbs_up:': 1 } })
  t.same((await snake.until((frame) => frame.type === 'reaction_added')).reactions, { ':thumbs_up:': 1 })
})
