// Editing and deleting one's own messages: REST and websocket frames, live delivery to members
// on another api process (a real child process), history with edited bodies and tombstones, and
// resume with since_seq that also delivers the edits and deletes a client missed, in seq order.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { sendMessage } from '@chatty/chat'
import { createRestClient, type MessageDeletedFrame, type MessageUpdatedFrame } from '@chatty/client'
import { users, waitFor } from '@chatty/db/testing'
import { query, storeMessages } from './helper.ts'
import { startService } from './process-helper.ts'
import { ack, chatClient, createChat, listen, openSocket, range, type Frame, type RawSocket } from './ws-helper.ts'

const { alice, bob, eve } = users
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const UNKNOWN = '99999999-9999-4999-8999-999999999999'

function edit (app: FastifyInstance, chat: string, messageId: string, payload: unknown) {
  return app.inject({ method: 'PATCH', url: `/api/v1/chat/${chat}/messages/${messageId}`, payload: payload as object })
}

function remove (app: FastifyInstance, chat: string, messageId: string, senderId?: string) {
  const search = senderId === undefined ? '' : `?sender_id=${senderId}`
  return app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat}/messages/${messageId}${search}` })
}

async function history (app: FastifyInstance, chat: string): Promise<Frame[]> {
  const page = await app.inject(`/api/v1/chat/${chat}/messages?limit=100`)
  return page.json().messages
}

/** The seq of a frame in the conversation's order. */
const orderSeq = (frame: Frame): number => frame.type === 'message' ? frame.message.seq : frame.seq

async function joined (socket: RawSocket, chat: string, sinceSeq?: number): Promise<Frame[]> {
  socket.send({ type: 'join', conversation_id: chat, ...(sinceSeq === undefined ? {} : { since_seq: sinceSeq }), ref: 'j' })
  const frames: Frame[] = []
  for (let frame = await socket.next(); frame.type !== 'joined'; frame = await socket.next()) frames.push(frame)
  return frames
}

t.test('an edit and a delete over REST reach members on another api process live, and history shows them', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const other = await startService(t, 'services/api/src/server.ts', { DB_URL: dbUrl })
  const sql = await query(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const [first, second] = await storeMessages(app, chat, alice, ['first', 'second'])
  const b = await openSocket(t, other.url, bob)
  await joined(b, chat)
  const a = await openSocket(t, url, alice)
  await joined(a, chat)

  const edited = await edit(app, chat, first!, { sender_id: alice, body: '  first, edited  ' })
  t.equal(edited.statusCode, 200)
  const change = edited.json()
  t.match(change, { conversation_id: chat, seq: 3, message: { id: first, seq: 1, sender_id: alice, body: 'first, edited', edited_at: ISO, deleted_at: null } })
  t.same(await b.next(), { type: 'message_updated', conversation_id: chat, seq: 3, message: change.message }, 'a member on the other process gets message_updated')
  t.same(await a.next(), { type: 'message_updated', conversation_id: chat, seq: 3, message: change.message }, 'and so does the editor\'s own joined socket')

  const deleted = await remove(app, chat, second!, alice)
  t.equal(deleted.statusCode, 200)
  const tombstone = deleted.json()
  t.match(tombstone, { conversation_id: chat, seq: 4, message: { id: second, seq: 2, body: null, attachment_url: null, attachment_meta: null, edited_at: null, deleted_at: ISO } })
  t.same(await b.next(), { type: 'message_deleted', conversation_id: chat, seq: 4, message: tombstone.message })

  // Repeats change nothing: no seq, no frame.
  const again = await edit(app, chat, first!, { sender_id: alice, body: 'first, edited' })
  t.same([again.statusCode, again.json().seq, again.json().message], [200, null, change.message], 'the same body again is a no-op')
  const twice = await remove(app, chat, second!, alice)
  t.same([twice.statusCode, twice.json().seq, twice.json().message], [200, null, tombstone.message], 'a second delete answers the tombstone')

  a.send({ type: 'message', conversation_id: chat, body: 'third' })
  const next = await b.next()
  t.same([next.type, next.message.seq, next.message.body], ['message', 5, 'third'], 'the next message follows the events with nothing in between')

  const messages = await history(app, chat)
  t.same(messages.map((m) => [m.seq, m.body, m.edited_at !== null, m.deleted_at !== null]),
    [[5, 'third', false, false], [2, null, false, true], [1, 'first, edited', true, false]], 'history: the edited body and the tombstone, in their places')
  t.same(messages[1], tombstone.message)
  t.same(messages[2], change.message)
  t.same(await sql('SELECT seq::int, message_id, kind FROM chat.message_event WHERE conversation_id = $1 ORDER BY seq', [chat]),
    [{ seq: 3, message_id: first, kind: 1 }, { seq: 4, message_id: second, kind: 2 }])

  const list = (await app.inject(`/api/v1/users/${bob}/conversations`)).json().conversations[0]
  t.match(list, { last_seq: 5, unread_count: 2, last_message: { seq: 5 } }, 'last_seq counts the events; a deleted message is not unread')
  const read = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/read`, payload: { user_id: bob, message_id: first } })
  t.equal(read.json().unread_count, 1, 'after the first message: only "third" (the deleted one and the events do not count)')
})

t.test('edit and delete frames: acks with ref, broadcast to joined sockets, errors keep the socket open and change nothing', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const sql = await query(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const [mine, theirs] = await storeMessages(app, chat, alice, ['mine'])
    .then(async (ids) => [...ids, ...await storeMessages(app, chat, bob, ['theirs'])])
  const b = await openSocket(t, url, bob)
  await joined(b, chat)
  // Alice's socket is not joined: it gets the change itself, as a sender does with messages.
  const a = await openSocket(t, url, alice)

  a.send({ type: 'edit', conversation_id: chat, message_id: mine, body: 'mine, edited', ref: 'e1' })
  const updated = await a.next()
  t.match(updated, { type: 'message_updated', conversation_id: chat, seq: 3, message: { id: mine, body: 'mine, edited', edited_at: ISO } })
  t.same(await a.next(), { type: 'edited', conversation_id: chat, seq: 3, message: updated.message, ref: 'e1' })
  t.same(await b.next(), updated, 'the joined member gets the broadcast')

  a.send({ type: 'delete', conversation_id: chat, message_id: mine, ref: 'd1' })
  const deleted = await a.next()
  t.match(deleted, { type: 'message_deleted', conversation_id: chat, seq: 4, message: { id: mine, body: null, deleted_at: ISO, edited_at: ISO } })
  t.same(await a.next(), { type: 'deleted', conversation_id: chat, seq: 4, message: deleted.message, ref: 'd1' })
  t.same(await b.next(), deleted)
  a.send({ type: 'delete', conversation_id: chat, message_id: mine, ref: 'd2' })
  t.same(await a.next(), { type: 'deleted', conversation_id: chat, seq: null, message: deleted.message, ref: 'd2' }, 'a repeat is acknowledged with seq null')

  const errors: Array<[string, unknown, string, string]> = [
    ['another member\'s message', { type: 'edit', conversation_id: chat, message_id: theirs, body: 'hijack' }, 'forbidden', 'only the sender may edit or delete a message'],
    ['delete another member\'s message', { type: 'delete', conversation_id: chat, message_id: theirs }, 'forbidden', 'only the sender may edit or delete a message'],
    ['edit a deleted message', { type: 'edit', conversation_id: chat, message_id: mine, body: 'back' }, 'bad_request', 'the message was deleted; it cannot be edited'],
    ['an unknown message', { type: 'edit', conversation_id: chat, message_id: UNKNOWN, body: 'x' }, 'bad_request', 'message not found in this conversation'],
    ['no body', { type: 'edit', conversation_id: chat, message_id: mine }, 'bad_request', 'frame must have required properties body'],
    ['message_id not a uuid', { type: 'delete', conversation_id: chat, message_id: 'm1' }, 'bad_request', 'message_id must match format "uuid"'],
    ['a body that is not a string', { type: 'edit', conversation_id: chat, message_id: mine, body: 5 }, 'bad_request', 'body must be string']
  ]
  for (const [name, frame, code, error] of errors) {
    a.send({ ...(frame as object), ref: name })
    const reply = await a.next()
    t.same([reply.type, reply.code, reply.ref], ['error', code, name], name)
    t.match(reply.error, error, name)
  }
  const [fresh] = await storeMessages(app, chat, bob, ['bob again'])
  const bobEdits = await openSocket(t, url, bob)
  const refusals: Array<[string, string, string]> = [
    ['empty', '  ', 'a message needs a body or an attachment; delete it instead'],
    ['too long', 'x'.repeat(4001), 'body is longer than 4000 characters']
  ]
  for (const [name, body, error] of refusals) {
    bobEdits.send({ type: 'edit', conversation_id: chat, message_id: fresh, body, ref: name })
    t.same(await bobEdits.next(), { type: 'error', code: 'bad_request', error, ref: name }, name)
  }
  const e = await openSocket(t, url, eve)
  e.send({ type: 'delete', conversation_id: chat, message_id: mine, ref: 'e' })
  t.same(await e.next(), { type: 'error', code: 'forbidden', error: 'user is not a participant in this conversation', ref: 'e' }, 'an outsider')

  t.same(await sql('SELECT seq::int FROM chat.message_event WHERE conversation_id = $1 ORDER BY seq', [chat]), [{ seq: 3 }, { seq: 4 }], 'no event for a refused change')
  t.same(await sql('SELECT last_seq::int FROM chat.conversation WHERE id = $1', [chat]), [{ last_seq: 5 }], 'and no seq taken')
  t.same((await history(app, chat)).find((m) => m.id === theirs)?.body, 'theirs')
  // The marker: a later change through the same broadcast; whatever a refusal sent came before it.
  bobEdits.send({ type: 'edit', conversation_id: chat, message_id: fresh, body: 'marker' })
  await b.until((frame) => frame.type === 'message_updated' && frame.message.body === 'marker')
  t.same(b.frames.filter((frame) => frame.type !== 'message').map((frame) => frame.type), ['connected', 'joined', 'message_updated', 'message_deleted', 'message_updated'], 'the joined member saw only the two changes, then the marker')
})

t.test('REST: only the sender edits or deletes, system messages stay, bad input is 400, and nothing changes on refusal', async (t) => {
  const { app, dbUrl } = await listen(t)
  const sql = await query(t, dbUrl)
  const created = await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob], creator_id: alice } })
  const chat: string = created.json().id
  const added = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/participants`, payload: { actor_id: alice, user_ids: [users.eve] } })
  const systemId: string = added.json().message.id
  await app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat}/participants/${eve}?actor_id=${alice}` })
  const [mine, theirs] = [...await storeMessages(app, chat, alice, ['mine']), ...await storeMessages(app, chat, bob, ['theirs'])]
  const image = (await sendMessage(app.chat, { conversationId: chat, senderId: alice, msg_type: 1, attachment_url: 'https://example.com/a.png', body: 'caption' })).message.id
  const [deleted] = await storeMessages(app, chat, alice, ['gone'])
  await remove(app, chat, deleted!, alice)
  const before = await sql('SELECT last_seq::int FROM chat.conversation WHERE id = $1', [chat])
  const other = await createChat(app, [alice])
  const [elsewhere] = await storeMessages(app, other, alice, ['elsewhere'])

  const cases: Array<[string, Awaited<ReturnType<typeof edit>>, number, string]> = [
    ['edit someone else\'s message', await edit(app, chat, theirs!, { sender_id: alice, body: 'x' }), 403, 'forbidden'],
    ['delete someone else\'s message', await remove(app, chat, theirs!, alice), 403, 'forbidden'],
    ['edit a system message', await edit(app, chat, systemId, { sender_id: alice, body: 'x' }), 403, 'forbidden'],
    ['delete a system message', await remove(app, chat, systemId, alice), 403, 'forbidden'],
    ['an outsider (removed member) edits', await edit(app, chat, mine!, { sender_id: eve, body: 'x' }), 403, 'forbidden'],
    ['an outsider deletes', await remove(app, chat, mine!, eve), 403, 'forbidden'],
    ['edit a deleted message', await edit(app, chat, deleted!, { sender_id: alice, body: 'x' }), 409, 'conflict'],
    ['an empty body on a text message', await edit(app, chat, mine!, { sender_id: alice, body: '  ' }), 400, 'bad_request'],
    ['a null body on a text message', await edit(app, chat, mine!, { sender_id: alice, body: null }), 400, 'bad_request'],
    ['a body over 4000 characters', await edit(app, chat, mine!, { sender_id: alice, body: 'é'.repeat(4001) }), 400, 'bad_request'],
    ['a NUL in the body', await edit(app, chat, mine!, { sender_id: alice, body: 'a\u0000b' }), 400, 'bad_request'],
    ['no body', await edit(app, chat, mine!, { sender_id: alice }), 400, 'bad_request'],
    ['no sender_id', await edit(app, chat, mine!, { body: 'x' }), 400, 'bad_request'],
    ['delete without sender_id', await remove(app, chat, mine!), 400, 'bad_request'],
    ['message_id not a uuid', await edit(app, chat, 'nope', { sender_id: alice, body: 'x' }), 400, 'bad_request'],
    ['sender_id not a uuid', await remove(app, chat, mine!, 'nope'), 400, 'bad_request'],
    ['an unknown message', await edit(app, chat, UNKNOWN, { sender_id: alice, body: 'x' }), 404, 'not_found'],
    ['a message of another conversation', await remove(app, chat, elsewhere!, alice), 404, 'not_found'],
    ['an unknown conversation', await remove(app, UNKNOWN, mine!, alice), 404, 'not_found']
  ]
  for (const [name, res, status, code] of cases) {
    t.equal(res.statusCode, status, name)
    t.equal(res.json().code, code, name)
  }
  t.same(await sql('SELECT last_seq::int FROM chat.conversation WHERE id = $1', [chat]), before, 'no seq taken by a refused change')
  t.same((await history(app, chat)).filter((m) => [mine, theirs, systemId].includes(m.id)).map((m) => [m.body, m.edited_at, m.deleted_at]),
    [['theirs', null, null], ['mine', null, null], [`${alice} added ${eve}`, null, null]], 'nothing changed')

  const caption = await edit(app, chat, image, { sender_id: alice, body: '' })
  t.match(caption.json(), { message: { body: null, msg_type: 1, attachment_url: 'https://example.com/a.png', edited_at: ISO } }, 'a message with an attachment may lose its caption')
  const gone = await remove(app, chat, image, alice)
  t.match(gone.json(), { message: { body: null, msg_type: 1, attachment_url: null, attachment_meta: null, deleted_at: ISO } }, 'a delete clears the attachment too')
  const upper = await edit(app, chat, mine!.toUpperCase(), { sender_id: alice.toUpperCase(), body: 'upper' })
  t.match(upper.json(), { message: { id: mine, body: 'upper' } }, 'ids are case-insensitive')
})

t.test('a client away during an edit and a delete resumes with since_seq and gets them in seq order, no gap, no duplicate', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const other = await startService(t, 'services/api/src/server.ts', { DB_URL: dbUrl })
  const chat = await createChat(app, [alice, bob])
  const ids = await storeMessages(app, chat, alice, ['one', 'two', 'three'])
  const first = await openSocket(t, other.url, bob)
  const replayed = await joined(first, chat, 0)
  t.same(replayed.map(orderSeq), [1, 2, 3])
  first.ws.close()
  await first.closed

  // Away: an edit, a new message, a delete, an edit of the new message, a message.
  const a = await openSocket(t, url, alice)
  await ack(a, { type: 'edit', conversation_id: chat, message_id: ids[0], body: 'one, edited' })
  const fourth = (await ack(a, { type: 'message', conversation_id: chat, body: 'four' })).message.id
  await ack(a, { type: 'delete', conversation_id: chat, message_id: ids[1] })
  await ack(a, { type: 'edit', conversation_id: chat, message_id: fourth, body: 'four, edited' })
  await ack(a, { type: 'message', conversation_id: chat, body: 'five' })

  const back = await openSocket(t, url, bob)
  back.send({ type: 'join', conversation_id: chat, since_seq: 3, ref: 'resume' })
  const frames: Frame[] = []
  for (let frame = await back.next(); frame.type !== 'joined'; frame = await back.next()) frames.push(frame)
  t.same(frames.map((frame) => [frame.type, orderSeq(frame), frame.message.id]), [
    ['message_updated', 4, ids[0]],
    ['message', 5, fourth],
    ['message_deleted', 6, ids[1]],
    ['message_updated', 7, fourth],
    ['message', 8, frames[4]?.message.id]
  ], 'every missed entry once, in seq order')
  t.same(frames.map((frame) => frame.message.body), ['one, edited', 'four, edited', null, 'four, edited', 'five'], 'events carry the message as it is now')
  t.same(back.frames.at(-1), { type: 'joined', conversation_id: chat, last_seq: 8, ref: 'resume' })

  await ack(a, { type: 'delete', conversation_id: chat, message_id: ids[2] })
  const live = await back.next()
  t.same([live.type, live.seq, live.message.id], ['message_deleted', 9, ids[2]], 'then live, from the next seq')
})

t.test('edits interleaved with sends from two api processes: every joined socket sees each seq once, in order', async (t) => {
  const { app, url, dbUrl } = await listen(t, { WS_RATE_LIMIT_PER_SEC: 0 })
  const other = await startService(t, 'services/api/src/server.ts', { DB_URL: dbUrl, WS_RATE_LIMIT_PER_SEC: '0' })
  const chat = await createChat(app, [alice, bob])
  const [target] = await storeMessages(app, chat, alice, ['target'])
  const watchers = [await openSocket(t, url, bob), await openSocket(t, other.url, bob)]
  for (const watcher of watchers) await joined(watcher, chat)
  const sender = await openSocket(t, other.url, bob)
  const editor = await openSocket(t, url, alice)
  const rounds = 60
  for (let i = 0; i < rounds; i++) {
    sender.send({ type: 'message', conversation_id: chat, body: `m${i}` })
    editor.send({ type: 'edit', conversation_id: chat, message_id: target, body: `edit ${i}` })
  }
  const total = 1 + rounds * 2
  for (const watcher of watchers) {
    await waitFor(() => watcher.frames.filter((frame) => frame.type === 'message' || frame.type === 'message_updated').length >= total - 1, 'every entry', 20_000)
  }
  // The marker: one more message through the same fan-out; anything extra arrives before it.
  sender.send({ type: 'message', conversation_id: chat, body: 'marker' })
  for (const watcher of watchers) await watcher.until((frame) => frame.type === 'message' && frame.message.body === 'marker', 20_000)
  for (const [i, watcher] of watchers.entries()) {
    const entries = watcher.frames.filter((frame) => frame.type === 'message' || frame.type === 'message_updated')
    t.same(entries.map(orderSeq), range(2, total + 1), `socket ${i + 1}: seqs 2..${total}, each once, in order, then the marker`)
    t.equal(entries.filter((frame) => frame.type === 'message_updated').length, rounds)
  }
  const messages = await history(app, chat)
  t.equal(messages.length, rounds + 2, 'edits are not messages (the sends, the target and the marker)')
  t.equal(messages.at(-1)?.body, `edit ${rounds - 1}`, 'the last edit wins')
})

t.test('the client library: edit and delete over REST and the socket, typed events, and resume past missed changes', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  // Bob on a second api app on the same database, so his connection can be cut alone.
  const second = await listen(t, {}, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const rest = createRestClient({ baseUrl: url })
  const a = await chatClient(t, url, alice)
  const b = await chatClient(t, second.url, bob)
  await a.join(chat)
  await b.join(chat)
  const updates: MessageUpdatedFrame[] = []
  const deletes: MessageDeletedFrame[] = []
  const gaps: unknown[] = []
  b.on('messageUpdated', (frame) => updates.push(frame))
  b.on('messageDeleted', (frame) => deletes.push(frame))
  b.on('gap', (gap) => gaps.push(gap))

  const one = await a.send(chat, { body: 'one' })
  const two = await a.send(chat, { body: 'two' })
  const edited = await a.edit(chat, one.id, 'one, edited')
  t.match(edited, { type: 'edited', conversation_id: chat, seq: 3, message: { id: one.id, body: 'one, edited', edited_at: ISO } })
  const viaRest = await rest.deleteMessage(chat, two.id, { senderId: alice })
  t.match(viaRest, { conversation_id: chat, seq: 4, message: { id: two.id, body: null, deleted_at: ISO } })
  await waitFor(() => deletes.length === 1, 'the delete event', 5000)
  t.same(updates.map((frame) => [frame.seq, frame.message.body]), [[3, 'one, edited']])
  t.equal(b.lastSeq(chat), 4, 'the resume position moves past edits and deletes')
  t.same((await a.delete(chat, two.id)).seq, null, 'a repeat delete over the socket')
  await t.rejects(rest.editMessage(chat, two.id, { sender_id: alice, body: 'x' }), { status: 409, code: 'conflict' })
  await t.rejects(b.edit(chat, one.id, 'not mine'), { code: 'forbidden' })

  // Bob's connection drops; meanwhile Alice edits and sends. The reconnect resumes after seq 4.
  // Listened for before the cut: the client may reconnect before a poll would see it down.
  const disconnected = new Promise((resolve) => b.once('disconnected', () => resolve(undefined)))
  const reconnected = new Promise((resolve) => b.once('connected', () => resolve(undefined)))
  for (const client of second.app.websocketServer.clients) client.terminate()
  await disconnected
  await rest.editMessage(chat, one.id, { sender_id: alice, body: 'one, twice' })
  const three = await a.send(chat, { body: 'three' })
  await reconnected
  await waitFor(() => b.received.some((message) => message.id === three.id), 'the message sent while away', 5000)
  t.same(updates.map((frame) => [frame.seq, frame.message.body]), [[3, 'one, edited'], [5, 'one, twice']], 'the missed edit, once')
  t.same(b.received.map((message) => message.seq), [1, 2, 6])
  t.same(gaps, [], 'no gap')
  t.equal(b.lastSeq(chat), 6)
})
