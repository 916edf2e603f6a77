import t, { type Test } from 'tap'
import { sql, type Kysely } from 'kysely'
import { createDb, type Database, type Db } from '@chatty/db'
import { testDatabase, users } from '@chatty/db/testing'
import { createChat, createConversation, sendMessage, storeMessage, listMessages, messagesSince, toMessage, checkMessageInput, addReaction, pinMessage, editMessage, deleteMessage, InvalidInputError, NotParticipantError, ConversationNotFoundError, type Chat, type ListMessagesInput, type NamedStatements } from '../src/index.ts'
import { isoTimestamp } from '../src/messages.ts'

const { alice, bob, eve } = users

async function setup (t: Test) {
  const { url } = await testDatabase(t)
  const { db, pool, destroy } = createDb(url, { max: 20 })
  t.teardown(destroy)
  const chat = createChat({ db })
  const conversation = await createConversation(db, { participantIds: [alice, bob, alice] })
  return { db, pool, chat, conversation }
}

t.test('concurrent sends to one conversation get seq 1..N with no gap or repeat', async (t) => {
  const { db, chat, conversation } = await setup(t)
  const sends = Array.from({ length: 60 }, (_, i) => sendMessage(chat, { conversationId: conversation.id, senderId: i % 2 ? alice : bob, body: `m${i}` }))
  const stored = await Promise.all(sends)
  t.same(stored.map((s) => s.message.seq).sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i + 1))
  t.ok(stored.every((s) => s.created))
})

t.test('a dedupe key sent many times at once is stored once and every sender gets that message', async (t) => {
  const { db, chat, conversation } = await setup(t)
  await sendMessage(chat, { conversationId: conversation.id, senderId: alice, body: 'before' })
  const stored = await Promise.all(Array.from({ length: 20 }, () => sendMessage(chat, { conversationId: conversation.id, senderId: alice, body: 'hi', dedupe_key: 'k-1' })))
  t.equal(new Set(stored.map((s) => s.message.id)).size, 1)
  t.equal(stored.filter((s) => s.created).length, 1)
  const page = await listMessages(chat, { conversationId: conversation.id, limit: 50, offset: 0 })
  t.same(page.map((m) => m.seq), [2, 1], 'no seq was spent on the duplicates')
  // The same key from another sender is another message.
  const other = await sendMessage(chat, { conversationId: conversation.id, senderId: bob, body: 'hi', dedupe_key: 'k-1' })
  t.ok(other.created)
  t.equal(other.message.seq, 3)
})

t.test('a send retried with the same message id stores nothing new', async (t) => {
  const { db, chat, conversation } = await setup(t)
  const id = '44444444-4444-4444-8444-444444444444'
  const content = checkMessageInput({ body: 'once' })
  const first = await storeMessage(chat, { id, conversationId: conversation.id, senderId: alice, content })
  const again = await storeMessage(chat, { id, conversationId: conversation.id, senderId: alice, content })
  t.same(again, { message: first.message, created: false })
})

t.test('membership and conversation existence are enforced', async (t) => {
  const { db, chat, conversation } = await setup(t)
  await t.rejects(sendMessage(chat, { conversationId: conversation.id, senderId: eve, body: 'x' }), NotParticipantError)
  await t.rejects(sendMessage(chat, { conversationId: '55555555-5555-4555-8555-555555555555', senderId: eve, body: 'x' }), ConversationNotFoundError)
  t.equal((await listMessages(chat, { conversationId: conversation.id, limit: 10, offset: 0 })).length, 0)
  // A reader, when named, must be a member; a missing conversation is still told apart.
  t.equal((await listMessages(chat, { conversationId: conversation.id, readerId: bob.toUpperCase(), limit: 10, offset: 0 })).length, 0)
  await t.rejects(listMessages(chat, { conversationId: conversation.id, readerId: eve, limit: 10, offset: 0 }), NotParticipantError)
  await t.rejects(listMessages(chat, { conversationId: '55555555-5555-4555-8555-555555555555', readerId: eve, limit: 10, offset: 0 }), ConversationNotFoundError)
})

t.test('content rules', async (t) => {
  t.throws(() => checkMessageInput({ body: '   ' }), InvalidInputError, 'blank body')
  t.throws(() => checkMessageInput({}), InvalidInputError, 'nothing at all')
  t.throws(() => checkMessageInput({ body: 'x'.repeat(4001) }), InvalidInputError, 'over-long body')
  t.throws(() => checkMessageInput({ body: 'x', msg_type: 3 }), InvalidInputError, 'system from a client')
  t.throws(() => checkMessageInput({ msg_type: 1 }), InvalidInputError, 'image without url')
  t.throws(() => checkMessageInput({ body: 'x', attachment_url: 'javascript:alert(1)' }), InvalidInputError)
  t.throws(() => checkMessageInput({ body: 'x', attachment_meta: { big: 'y'.repeat(5000) } }), InvalidInputError)
  t.throws(() => checkMessageInput({ body: 'x', dedupe_key: 'k'.repeat(65) }), InvalidInputError)
  t.same(checkMessageInput({ body: '  hi  ', attachment_meta: { w: 1 } }), { body: 'hi', msg_type: 0, attachment_url: null, attachment_meta: '{"w":1}', dedupe_key: null, parent_id: null, mentioned_user_ids: [] })
  t.same(checkMessageInput({ body: 'é'.repeat(4000) }).body?.length, 4000, '4000 characters is allowed')
  t.same(checkMessageInput({ msg_type: 1, attachment_url: 'https://cdn.example/a.png' }).body, null)
})

t.test('listing pages newest first, with before_seq and after_seq cursors', async (t) => {
  const { db, chat, conversation } = await setup(t)
  for (let i = 1; i <= 10; i++) await sendMessage(chat, { conversationId: conversation.id, senderId: alice, body: `m${i}` })
  const seqs = async (input: object) => (await listMessages(chat, { conversationId: conversation.id, limit: 3, offset: 0, ...input })).map((m) => m.seq)
  t.same(await seqs({}), [10, 9, 8])
  t.same(await seqs({ offset: 3 }), [7, 6, 5])
  t.same(await seqs({ beforeSeq: 5 }), [4, 3, 2])
  t.same(await seqs({ afterSeq: 5 }), [8, 7, 6])
  t.same(await seqs({ afterSeq: 2, beforeSeq: 9 }), [8, 7, 6])
  t.same(await seqs({ afterSeq: 10 }), [])
})

t.test('history pages write each timestamp exactly as a Date would (Postgres text mapped by slicing)', async (t) => {
  const { db, chat, conversation } = await setup(t)
  const times = ['2026-12-04 08:06:35', '2026-12-04 08:06:35.1', '2026-12-04 08:06:35.12', '2026-12-04 08:06:35.123',
    '2026-12-04 08:06:35.1239', '2026-12-04 08:06:35.999999', '0001-01-01 00:00:00.000001', '9999-12-31 23:59:59.5']
  for (const [i, time] of times.entries()) {
    const { message } = await sendMessage(chat, { conversationId: conversation.id, senderId: alice, body: `m${i}` })
    await sql`UPDATE chat.message SET created_at = ${time}::timestamp, edited_at = ${time}::timestamp, deleted_at = ${time}::timestamp,
      last_reply_at = ${time}::timestamp, pinned_at = ${time}::timestamp WHERE id = ${message.id}`.execute(db)
  }
  const viaDates = (await db.selectFrom('chat.message').selectAll().where('conversation_id', '=', conversation.id).orderBy('seq', 'desc').execute()).map(toMessage)
  t.same(await listMessages(chat, { conversationId: conversation.id, limit: 50, offset: 0 }), viaDates)
  t.same(await listMessages(chat, { conversationId: conversation.id, limit: 50, offset: 0, aroundSeq: 4 }), viaDates)
  t.same(await messagesSince(db, conversation.id, 0, 50), [...viaDates].reverse())
  t.same(viaDates.map((m) => m.created_at), ['9999-12-31T23:59:59.500Z', '0001-01-01T00:00:00.000Z', '2026-12-04T08:06:35.999Z', '2026-12-04T08:06:35.123Z',
    '2026-12-04T08:06:35.123Z', '2026-12-04T08:06:35.120Z', '2026-12-04T08:06:35.100Z', '2026-12-04T08:06:35.000Z'])
  t.ok(viaDates.every((m) => m.edited_at === m.created_at && m.pinned_at === m.created_at && m.last_reply_at === m.created_at))
  // Text outside the fast path's shape goes through a Date, as the pool's parser takes it, and
  // fails as it did (no ISO string for these).
  t.throws(() => isoTimestamp('10000-01-01 00:00:00'), RangeError)
  t.throws(() => isoTimestamp('infinity'), RangeError)
})

/** Messages of every kind a page can hold; returns the parent's id. */
async function fillHistory (chat: Chat, id: string): Promise<string> {
  const send = async (input: Record<string, unknown>) => (await sendMessage(chat, { conversationId: id, senderId: alice, ...input })).message.id
  for (let i = 1; i <= 4; i++) await send({ body: `plain ${i}` })
  const parent = await send({ body: 'quotes " backslash \\ slash / newline \n tab \t cr \r bs \b ff \f control \u0001\u001f del \u007f emoji 😀 é \u2028' })
  await send({ body: 'a reply', parent_id: parent, mentioned_user_ids: [bob] })
  await send({ msg_type: 1, attachment_url: 'https://example.com/a.png', attachment_meta: { w: 1, '10': 'ten', nested: { list: [1.5, 'two', null, true, 1e21], 'odd "key"': '</script>' } } })
  const edited = await send({ body: 'before the edit' })
  const deleted = await send({ body: 'to be deleted' })
  await addReaction(chat, { conversationId: id, messageId: parent, userId: bob, reaction: '👍' })
  await addReaction(chat, { conversationId: id, messageId: parent, userId: alice, reaction: '1' })
  await pinMessage(chat, { conversationId: id, messageId: parent, userId: bob })
  await editMessage(chat, { conversationId: id, messageId: edited, senderId: alice, body: 'after the edit' })
  await deleteMessage(chat, { conversationId: id, messageId: deleted, senderId: alice })
  for (let i = 1; i <= 3; i++) await send({ body: `later ${i}` })
  return parent
}

const pageShapes = (parent: string): Array<Partial<ListMessagesInput>> => [{}, { limit: 3 }, { limit: 3, offset: 2 }, { beforeSeq: 6 }, { beforeSeq: 4, limit: 2 },
  { afterSeq: 5 }, { afterSeq: 10, limit: 2 }, { afterSeq: 2, beforeSeq: 9 }, { afterSeq: 1000 }, { parentId: parent }, { topLevel: true },
  { topLevel: true, beforeSeq: 8 }, { aroundSeq: 6, limit: 3 }, { readerId: bob }]

/** A chat core whose page queries go to the pool by name, and the names it used. */
function preparedChat (db: Kysely<Database>, pool: Db['pool']) {
  const named: string[] = []
  const statements: NamedStatements = { query: async (config) => { named.push(config.name); return pool.query(config) } }
  return { prepared: createChat({ db, statements }), named }
}

t.test('history pages read by named prepared statements are the pages Kysely reads', async (t) => {
  const { db, pool, chat, conversation } = await setup(t)
  const parent = await fillHistory(chat, conversation.id)
  const { prepared, named } = preparedChat(db, pool)
  for (const shape of pageShapes(parent)) {
    for (let i = 0; i < 2; i++) {
      const input = { conversationId: conversation.id, limit: 50, offset: 0, ...shape }
      t.same(await listMessages(prepared, input), await listMessages(chat, input), `${JSON.stringify(shape)}, read ${i + 1}`)
    }
  }
  t.ok(['chatty_history_all__v1', 'chatty_history_all_b_v1', 'chatty_history_all_a_v1', 'chatty_history_all_ba_v1', 'chatty_history_thread__v1', 'chatty_history_top_b_v1'].every((name) => named.includes(name)), 'one statement per shape')
})
