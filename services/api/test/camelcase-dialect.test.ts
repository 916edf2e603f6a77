// go-chatty's later camelCase dialect (its commit "standardize JSON field naming to camelCase"),
// driven the way its clients drive it: raw ws frames and fetch bodies exactly as go-chatty's
// ChatSocketController and REST controllers read and write them, next to snake_case clients of the
// same conversations, which keep their own dialect.
import t from 'tap'
import { users, waitFor } from '@chatty/db/testing'
import type { RoomMember } from '../src/plugins/app/rooms.ts'
import { startJobs, storeMessages, UNTOUCHED } from './helper.ts'
import { createChat, listen, openSocket, rawSocket, type RawSocket } from './ws-helper.ts'

const { alice, bob, eve } = users
const unknownChat = '99999999-9999-4999-8999-999999999999'
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

/** A raw socket opened as go-chatty's camelCase clients open it (`?userId=`), past `connected`. */
async function camelSocket (t: Parameters<typeof rawSocket>[0], url: string, userId: string): Promise<RawSocket> {
  const socket = rawSocket(t, url, { userId })
  t.equal(await socket.next().then(() => socket.texts[0]), '{"type":"connected"}', 'the greeting is go-chatty\'s')
  return socket
}

t.test('a socket opened with ?userId= speaks go-chatty\'s camelCase frames, nulls left out', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await camelSocket(t, url, alice)
  const b = await camelSocket(t, url, bob)

  a.send({ type: 'join', conversationId: chat })
  t.same(await a.next(), { type: 'joined', conversationId: chat, lastSeq: 0 })
  b.send({ type: 'join', conversationId: chat })
  t.same(await b.next(), { type: 'joined', conversationId: chat, lastSeq: 0 })

  // go-chatty's inboundFrame: pointer fields are left out when unset.
  a.send({ type: 'message', conversationId: chat, body: 'hello', msgType: 0 })
  const toAlice = await a.next()
  const toBob = await b.next()
  t.same(toAlice, {
    type: 'message',
    conversationId: chat,
    message: { id: toAlice.message.id, conversationId: chat, senderId: alice, seq: 1, createdAt: toAlice.message.createdAt, body: 'hello', msgType: 0 }
  }, 'go-chatty\'s outboundMessage, with seq')
  t.same(Object.keys(toAlice), ['type', 'conversationId', 'message'])
  t.same(Object.keys(toAlice.message), ['id', 'conversationId', 'senderId', 'seq', 'createdAt', 'body', 'msgType'], 'null fields, and chatty\'s additions while empty, are left out, as go-chatty\'s omitempty does')
  t.match(toAlice.message.createdAt, ISO)
  t.equal(a.texts.at(-1), b.texts.at(-1), 'every camelCase receiver gets the same bytes')
  t.same(toBob, toAlice)

  // An image without a body: body left out; attachmentMeta is the client's JSON, passed as stored.
  b.send({ type: 'message', conversationId: chat, msgType: 1, attachmentUrl: 'https://files.example/cat.png', attachmentMeta: { width: 640, alt_text: null }, dedupeKey: 'img-1' })
  const image = (await a.next()).message
  t.same(image, {
    id: image.id,
    conversationId: chat,
    senderId: bob,
    seq: 2,
    createdAt: image.createdAt,
    msgType: 1,
    attachmentUrl: 'https://files.example/cat.png',
    attachmentMeta: { width: 640, alt_text: null },
    dedupeKey: 'img-1'
  })
  t.same(Object.keys(image), ['id', 'conversationId', 'senderId', 'seq', 'createdAt', 'msgType', 'attachmentUrl', 'attachmentMeta', 'dedupeKey'])
  t.same((await b.next()).message, image)

  a.send({ type: 'leave', conversationId: chat })
  t.same(await a.next(), { type: 'left', conversationId: chat })
  t.same(Object.keys(a.frames.at(-1)!), ['type', 'conversationId'])
})

t.test('camelCase sockets get go-chatty\'s error codes, unsupported_type for an unknown type, and stay open', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const a = await camelSocket(t, url, alice)
  const errorOf = async (frame: unknown) => {
    a.send(frame)
    const reply = await a.next()
    t.equal(reply.type, 'error', JSON.stringify(frame))
    return reply
  }

  for (const frame of [{ type: 'subscribe', conversationId: chat }, { conversationId: chat }, { type: null }]) {
    const error = await errorOf(frame)
    t.equal(error.code, 'unsupported_type', `${JSON.stringify(frame)}: go-chatty's code`)
    t.same(Object.keys(error), ['type', 'code', 'error'])
  }
  t.match(await errorOf('not json'), { code: 'bad_request' }, 'bad JSON is bad_request, as in go-chatty')
  t.same(await errorOf({ type: 'join' }), { type: 'error', code: 'bad_request', error: 'frame must have required properties conversationId' }, 'the error names the field as the client spells it')
  t.same(await errorOf({ type: 'join', conversationId: 'nope' }), { type: 'error', code: 'bad_request', error: 'conversationId must match format "uuid"' })
  t.same(await errorOf({ type: 'message', conversationId: chat, body: 'x', msgType: 'text' }), { type: 'error', code: 'bad_request', error: 'msgType must be integer' })
  t.match(await errorOf({ type: 'join', conversationId: chat, conversation_id: unknownChat }), { code: 'bad_request', error: 'conversationId is given twice with different values' })
  t.match(await errorOf({ type: 'join', conversationId: unknownChat }), { code: 'forbidden' })
  t.match(await errorOf({ type: 'message', conversationId: chat }), { code: 'bad_request' }, 'empty content')
  t.same(await errorOf({ type: 'subscribe', ref: 'r1' }), { type: 'error', code: 'unsupported_type', error: 'unknown frame type "subscribe"; expected one of join, leave, message, read, delivered, typing, edit, delete, react, unreact, pin, unpin', ref: 'r1' })

  a.send({ type: 'join', conversationId: chat, ref: 7 })
  t.same(await a.next(), { type: 'joined', conversationId: chat, lastSeq: 0, ref: 7 }, 'the socket is still open and joins')

  // The dialect is the socket's: a snake_case socket of the same user keeps its own codes and names.
  const snake = await openSocket(t, url, alice)
  snake.send({ type: 'subscribe', conversation_id: chat })
  t.match(await snake.next(), { type: 'error', code: 'bad_request' })
  snake.send({ type: 'join', conversationId: chat })
  t.same(await snake.next(), { type: 'error', code: 'bad_request', error: 'frame must have required properties conversation_id' })
})

t.test('a camelCase REST create and send: go-chatty\'s 202, then the message on a camelCase and a snake_case socket', async (t) => {
  const { url, dbUrl } = await listen(t)
  await startJobs(t, dbUrl)
  const post = (path: string, body: unknown) => fetch(`${url}/api/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

  // go-chatty's chat.http, as its camelCase commit wrote it.
  const created = await post('/chat', { participantIds: [alice, bob] })
  t.equal(created.status, 201)
  const chat: any = await created.json()
  t.same(chat, { id: chat.id, created_at: chat.created_at, participant_ids: [alice, bob] }, 'the answer stays snake_case')

  const a = await camelSocket(t, url, alice)
  const b = await openSocket(t, url, bob)
  a.send({ type: 'join', conversationId: chat.id })
  t.same(await a.next(), { type: 'joined', conversationId: chat.id, lastSeq: 0 })
  b.send({ type: 'join', conversation_id: chat.id })
  t.same(await b.next(), { type: 'joined', conversation_id: chat.id, last_seq: 0 })

  const sent = await post(`/chat/${chat.id}`, { senderId: bob, body: 'last test I think v2', msgType: 0, dedupeKey: 'optional-dedupe-key', attachmentMeta: { via: 'http' } })
  t.equal(sent.status, 202)
  const accepted: any = await sent.json()
  t.same(accepted, {
    status: 'queued',
    task_id: accepted.task_id,
    chat_id: chat.id,
    sender_id: bob,
    taskId: accepted.task_id,
    chatId: chat.id,
    senderId: bob,
    message_id: accepted.message_id
  }, 'go-chatty\'s answer in both of its spellings, and ours')
  t.match(accepted.task_id, /\S/)

  const camel = await a.next()
  t.same(camel, {
    type: 'message',
    conversationId: chat.id,
    message: { id: accepted.message_id, conversationId: chat.id, senderId: bob, seq: 1, createdAt: camel.message.createdAt, body: 'last test I think v2', msgType: 0, attachmentMeta: { via: 'http' }, dedupeKey: 'optional-dedupe-key' }
  }, 'the camelCase socket gets it in camelCase')
  const snake = await b.next()
  t.same(snake, {
    type: 'message',
    conversation_id: chat.id,
    message: {
      id: accepted.message_id,
      conversation_id: chat.id,
      sender_id: bob,
      seq: 1,
      created_at: camel.message.createdAt,
      body: 'last test I think v2',
      msg_type: 0,
      attachment_url: null,
      attachment_meta: { via: 'http' },
      dedupe_key: 'optional-dedupe-key',
      ...UNTOUCHED
    }
  }, 'the snake_case socket gets the same message in snake_case, nulls present')

  // Both spellings of one field: the same value is fine, different values are refused.
  const conflicting = await post(`/chat/${chat.id}`, { senderId: bob, sender_id: alice, body: 'who?' })
  t.equal(conflicting.status, 400)
  t.same(await conflicting.json(), { error: 'body has sender_id and senderId with different values; send one of them', code: 'bad_request' })
  t.equal((await post('/chat', { participantIds: [alice], participant_ids: [bob] })).status, 400)
  const same = await post(`/chat/${chat.id}`, { senderId: alice, sender_id: alice, body: 'marker' })
  t.equal(same.status, 202)
  t.equal((await a.next()).message.body, 'marker', 'nothing was stored between the message and the marker')

  // Query aliases, on the routes that take a query.
  const page: any = await (await fetch(`${url}/api/v1/chat/${chat.id}/messages?afterSeq=1`)).json()
  t.same(page.messages.map((message: { body: string }) => message.body), ['marker'], 'afterSeq is after_seq')
})

t.test('camelCase sockets get the extensions in camelCase too: resume, read, edits, and the upgrade refusals', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const b = await camelSocket(t, url, bob)
  b.send({ type: 'message', conversationId: chat, body: 'one', ref: 'm1' })
  const echoed = await b.next()
  t.same(Object.keys(echoed.message), ['id', 'conversationId', 'senderId', 'seq', 'createdAt', 'body', 'msgType'], 'a socket outside the room gets its message back')
  t.same(await b.next(), { type: 'sent', conversationId: chat, message: echoed.message, ref: 'm1' })

  const a = await camelSocket(t, url, alice)
  a.send({ type: 'join', conversationId: chat, sinceSeq: 0 })
  t.same((await a.next()).message, echoed.message, 'sinceSeq replays in camelCase')
  t.same(await a.next(), { type: 'joined', conversationId: chat, lastSeq: 1 })

  a.send({ type: 'read', conversationId: chat, messageId: echoed.message.id, ref: 'r1' })
  t.same(await a.until((frame) => frame.ref === 'r1'), { type: 'read', conversationId: chat, userId: alice, messageId: echoed.message.id, seq: 1, unreadCount: 0, ref: 'r1' })

  b.send({ type: 'edit', conversationId: chat, messageId: echoed.message.id, body: 'one, edited' })
  const updated = await a.until((frame) => frame.type === 'message_updated')
  t.same(updated, { type: 'message_updated', conversationId: chat, seq: 2, message: { ...echoed.message, body: 'one, edited', editedAt: updated.message.editedAt } })
  t.match(updated.message.editedAt, ISO)

  for (const [query, error] of [
    [{ userId: 'not-a-uuid' }, 'querystring/userId must match format "uuid"'],
    [{ userId: alice, user_id: bob }, 'querystring has user_id and userId with different values; send one of them']
  ] as const) {
    const refused = rawSocket(t, url, query)
    t.same(await refused.refused, { status: 400, body: { error, code: 'bad_request' } }, JSON.stringify(query))
  }
  const both = rawSocket(t, url, { userId: eve, user_id: eve })
  await both.next()
  both.send({ type: 'nope' })
  t.match(await both.next(), { code: 'unsupported_type' }, 'both spellings of one user: userId chooses camelCase')
})

t.test('a camelCase socket over its frame rate gets rate_limited with retryAfterMs', async (t) => {
  // 0.2 frames a second: no token comes back while the test sends, however slow the machine.
  const { url } = await listen(t, { WS_RATE_LIMIT_PER_SEC: 0.2, WS_RATE_LIMIT_BURST: 1 })
  const a = await camelSocket(t, url, alice)
  a.send({ type: 'nope', ref: 1 })
  a.send({ type: 'nope', ref: 2 })
  t.match(await a.next(), { code: 'unsupported_type', ref: 1 })
  const limited = await a.next()
  t.same(Object.keys(limited), ['type', 'code', 'error', 'retryAfterMs', 'ref'])
  t.match(limited, { type: 'error', code: 'rate_limited', retryAfterMs: Number, ref: 2 })
})

t.test('a room converts each frame once for all its camelCase members and hands snake_case members the bytes it got', async (t) => {
  const { app } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const received: Buffer[][] = [[], [], []]
  const members: RoomMember[] = [
    { dialect: 'camelCase', deliver: (_seq, frame) => { received[0]!.push(frame) } },
    { dialect: 'camelCase', deliver: (_seq, frame) => { received[1]!.push(frame) } },
    { deliver: (_seq, frame) => { received[2]!.push(frame) } }
  ]
  for (const member of members) await app.rooms.join(chat, member)
  t.teardown(() => { for (const member of members) app.rooms.leave(chat, member) })
  const [id] = await storeMessages(app, chat, alice, ['hi'])
  await waitFor(async () => received.every((frames) => frames.length === 1) ? true : undefined)
  t.equal(received[0]![0], received[1]![0], 'one Buffer, made once, for both camelCase members')
  const camel = JSON.parse(received[0]![0]!.toString())
  t.same(camel, { type: 'message', conversationId: chat, message: { id, conversationId: chat, senderId: alice, seq: 1, createdAt: camel.message.createdAt, body: 'hi', msgType: 0 } })
  const snake = JSON.parse(received[2]![0]!.toString())
  t.same(Object.keys(snake.message), ['id', 'conversation_id', 'sender_id', 'seq', 'created_at', 'body', 'msg_type', 'attachment_url', 'attachment_meta', 'dedupe_key', 'edited_at', 'deleted_at',
    'parent_id', 'reply_count', 'last_reply_at', 'mentioned_user_ids', 'reactions', 'pinned_at', 'pinned_by'])
})

t.test('the OpenAPI document shows the camelCase aliases and go-chatty\'s 202', async (t) => {
  const { app } = await listen(t)
  const doc = (await app.inject('/docs/json')).json()
  const create = doc.paths['/api/v1/chat'].post.requestBody.content['application/json'].schema
  t.match(create.properties.participantIds, { type: 'array', 'x-alias-of': 'participant_ids' })
  t.match(create.properties.tenantId, { 'x-alias-of': 'tenant_id' })
  const send = doc.paths['/api/v1/chat/{chat_id}'].post
  const sendBody = send.requestBody.content['application/json'].schema.properties
  for (const [alias, name] of [['senderId', 'sender_id'], ['msgType', 'msg_type'], ['attachmentUrl', 'attachment_url'], ['attachmentMeta', 'attachment_meta'], ['dedupeKey', 'dedupe_key']] as const) {
    t.equal(sendBody[alias]?.['x-alias-of'], name, alias)
  }
  const accepted = send.responses['202'].content['application/json'].schema
  t.same(Object.keys(accepted.properties).sort(), ['chatId', 'chat_id', 'message_id', 'senderId', 'sender_id', 'status', 'taskId', 'task_id'])
  const history = doc.paths['/api/v1/chat/{chat_id}/messages'].get.parameters.map((parameter: { name: string }) => parameter.name)
  t.ok(['beforeSeq', 'afterSeq', 'aroundSeq'].every((name) => history.includes(name)), 'history cursors in camelCase')
  t.match(doc.paths['/api/v1/chat/ws'].get.description, /\?userId=/)
})
