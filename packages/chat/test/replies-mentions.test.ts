// Replies and mentions (src/replies.ts, src/mentions.ts) on both store paths: the group commit's
// batch statement and the one-message transaction, against a real Postgres.
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { Kysely, PostgresDialect, sql } from 'kysely'
import { createDb, createPool, type Database } from '@chatty/db'
import { testDatabase, users } from '@chatty/db/testing'
import {
  checkMessageInput, createConversation, InvalidInputError, LIMITS, listConversations, listMentions, listMessages, removeParticipant,
  sendMessage, storeMessage, createChat, createGroupCommit
} from '../src/index.ts'

const { alice, bob, carol } = users

async function setup (t: Test, grouped: boolean) {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 10 })
  const group = grouped ? createGroupCommit(db) : undefined
  const chat = createChat({ db, writer: group })
  t.teardown(async () => {
    await group?.close()
    await destroy()
  })
  const conversation = await createConversation(db, { participantIds: [alice, bob, carol] })
  return { db, chat, conversationId: conversation.id }
}

async function messageRow (db: Kysely<Database>, id: string) {
  return await db.selectFrom('chat.message').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}

for (const grouped of [true, false]) {
  const path = grouped ? 'group commit' : 'one-message path'

  t.test(`${path}: a reply counts on its parent once, and a repeat with its dedupe_key does not count again`, async (t) => {
    const { db, chat, conversationId } = await setup(t, grouped)
    const parent = (await sendMessage(chat, { conversationId, senderId: alice, body: 'question' })).message
    t.same([parent.parent_id, parent.reply_count, parent.last_reply_at, parent.mentioned_user_ids], [null, 0, null, []])
    t.same([parent.reactions, parent.pinned_at, parent.pinned_by], [{}, null, null], 'the object has its full shape')

    const replies = await Promise.all([1, 2, 3].map((n) => sendMessage(chat, { conversationId, senderId: bob, body: `answer ${n}`, parent_id: parent.id, dedupe_key: `r${n}` })))
    for (const { message, created } of replies) {
      t.ok(created)
      t.equal(message.parent_id, parent.id)
      t.equal(message.reply_count, 0)
    }
    const again = await sendMessage(chat, { conversationId, senderId: bob, body: 'answer 1', parent_id: parent.id, dedupe_key: 'r1' })
    t.equal(again.created, false)
    t.equal(again.message.id, replies[0]!.message.id)

    const row = await messageRow(db, parent.id)
    t.equal(row.reply_count, 3, 'three replies, the repeat not counted')
    const newest = Math.max(...replies.map((r) => Date.parse(r.message.created_at)))
    t.equal(row.last_reply_at?.getTime(), newest, 'last_reply_at is the latest reply\'s created_at')
  })

  t.test(`${path}: a parent must be a top-level message of the same conversation`, async (t) => {
    const { db, chat, conversationId } = await setup(t, grouped)
    const other = await createConversation(db, { participantIds: [alice, bob] })
    const parent = (await sendMessage(chat, { conversationId, senderId: alice, body: 'top' })).message
    const reply = (await sendMessage(chat, { conversationId, senderId: bob, body: 'reply', parent_id: parent.id })).message
    const elsewhere = (await sendMessage(chat, { conversationId: other.id, senderId: alice, body: 'elsewhere' })).message
    for (const [parentId, why] of [[reply.id, 'a reply'], [elsewhere.id, 'another conversation\'s'], [randomUUID(), 'unknown'], ['nope', 'not a uuid']] as const) {
      await t.rejects(sendMessage(chat, { conversationId, senderId: bob, body: 'x', parent_id: parentId }), InvalidInputError, why)
      // Straight to the store (the jobs service's path), past the send's checks.
      if (parentId !== 'nope') {
        await t.rejects(storeMessage(chat, { conversationId, senderId: bob, content: { ...checkMessageInput({ body: 'x' }), parent_id: parentId } }), InvalidInputError, `${why}, at store time`)
      }
    }
    const rows = await db.selectFrom('chat.message').select('body').where('conversation_id', '=', conversationId).orderBy('seq').execute()
    t.same(rows.map((r) => r.body), ['top', 'reply'], 'nothing refused was stored')
    t.equal((await messageRow(db, parent.id)).reply_count, 1)
    const { last_seq: lastSeq } = await db.selectFrom('chat.conversation').select('last_seq').where('id', '=', conversationId).executeTakeFirstOrThrow()
    t.equal(lastSeq, 2, 'no seq was used by the refused sends: seqs stay gap-free')
  })

  t.test(`${path}: mentions are members, at most ${LIMITS.mentions}, each once`, async (t) => {
    const { db, chat, conversationId } = await setup(t, grouped)
    const stranger = randomUUID()
    await t.rejects(sendMessage(chat, { conversationId, senderId: alice, body: 'x', mentioned_user_ids: [bob, stranger] }), { name: 'InvalidInputError', message: new RegExp(stranger) })
    await t.rejects(sendMessage(chat, { conversationId, senderId: alice, body: 'x', mentioned_user_ids: [bob, bob.toUpperCase()] }), { name: 'InvalidInputError', message: /twice/ })
    await t.rejects(sendMessage(chat, { conversationId, senderId: alice, body: 'x', mentioned_user_ids: Array.from({ length: LIMITS.mentions + 1 }, () => randomUUID()) }), { name: 'InvalidInputError', message: /more than 50/ })
    await t.rejects(sendMessage(chat, { conversationId, senderId: alice, body: 'x', mentioned_user_ids: 'bob' as never }), InvalidInputError)
    const { message } = await sendMessage(chat, { conversationId, senderId: alice, body: 'hi @bob @carol', mentioned_user_ids: [bob, carol, alice] })
    t.same(message.mentioned_user_ids, [bob, carol, alice])
    const byUser = await db.selectFrom('chat.message_mention').select('user_id').where('message_id', '=', message.id).orderBy('user_id').execute()
    t.same(byUser.map((r) => r.user_id), [bob, carol].sort(), 'recorded by user, the sender\'s own mention left out')
  })
}

t.test('a reply to a parent stored in the same batch is stored after it, through the one-message path', async (t) => {
  const { db, chat, conversationId } = await setup(t, true)
  const parentId = randomUUID()
  const [parent, reply] = await Promise.all([
    storeMessage(chat, { id: parentId, conversationId, senderId: alice, content: checkMessageInput({ body: 'parent' }) }),
    storeMessage(chat, { conversationId, senderId: bob, content: checkMessageInput({ body: 'reply', parent_id: parentId }) })
  ])
  t.equal(reply.message.parent_id, parentId)
  t.ok(reply.message.seq > parent.message.seq)
  t.equal((await messageRow(db, parentId)).reply_count, 1)
})

t.test('threads, top-level history, unread mention counts and a user\'s mentions', async (t) => {
  const { db, chat, conversationId } = await setup(t, true)
  const parent = (await sendMessage(chat, { conversationId, senderId: alice, body: 'p' })).message
  const r1 = (await sendMessage(chat, { conversationId, senderId: bob, body: 'r1', parent_id: parent.id })).message
  const top = (await sendMessage(chat, { conversationId, senderId: alice, body: 'top @bob', mentioned_user_ids: [bob] })).message
  const r2 = (await sendMessage(chat, { conversationId, senderId: carol, body: 'r2 @bob', parent_id: parent.id, mentioned_user_ids: [bob] })).message

  const thread = await listMessages(chat, { conversationId, limit: 10, offset: 0, parentId: parent.id })
  t.same(thread.map((m) => m.id), [r2.id, r1.id], 'the replies only, newest first')
  const older = await listMessages(chat, { conversationId, limit: 10, offset: 0, parentId: parent.id, beforeSeq: r2.seq })
  t.same(older.map((m) => m.id), [r1.id], 'with the same cursors as history')
  const topLevel = await listMessages(chat, { conversationId, limit: 10, offset: 0, topLevel: true })
  t.same(topLevel.map((m) => m.id), [top.id, parent.id])
  t.equal(topLevel[1]!.reply_count, 2)
  await t.rejects(listMessages(chat, { conversationId, limit: 10, offset: 0, parentId: randomUUID() }), { name: 'MessageNotFoundError' })

  const inbox = async (user: string) => (await listConversations(db, user, { limit: 10 })).conversations[0]!.unread_mention_count
  t.equal(await inbox(bob), 2)
  t.equal(await inbox(carol), 0)
  const mentions = await listMentions(db, bob, { limit: 1 })
  t.same(mentions.messages.map((m) => m.id), [r2.id], 'newest first')
  t.not(mentions.next_cursor, null)
  const next = await listMentions(db, bob, { limit: 1, cursor: mentions.next_cursor! })
  t.same(next.messages.map((m) => m.id), [top.id])
  t.equal(next.next_cursor, null)
  await t.rejects(listMentions(db, bob, { limit: 1, cursor: 'garbage' }), InvalidInputError)

  await removeParticipant(chat, { conversationId, userId: bob, actorId: bob })
  t.same((await listMentions(db, bob, { limit: 10 })).messages, [], 'a removed member no longer finds the conversation\'s mentions')
})

t.test('a user\'s mentions and unread mention counts are read through message_mention\'s indexes, not by scanning messages', async (t) => {
  const { url } = await testDatabase(t)
  const pool = createPool(url, { max: 2 })
  // The statements the use cases send, captured as compiled, to be explained with their own parameters.
  const statements: Array<{ sql: string, parameters: readonly unknown[] }> = []
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: (event) => { statements.push(event.query) } })
  t.teardown(() => db.destroy())
  // Many users and conversations, so the planner has a choice to make.
  const conversations = await Promise.all(Array.from({ length: 40 }, (_, i) => createConversation(db, { participantIds: [alice, bob, carol, randomUUID(), `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`] })))
  let last = ''
  for (const [i, conversation] of conversations.entries()) {
    for (let n = 0; n < 5; n++) {
      last = (await sendMessage(createChat({ db }), { conversationId: conversation.id, senderId: alice, body: `m${n}`, mentioned_user_ids: n % 2 === 0 ? [bob] : [`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`] })).message.id
    }
  }
  t.ok(last)
  // 50,000 more messages, each mentioning someone else: bob's mentions are a small part of both
  // tables, as in production, where a plan that scans either would show.
  await sql`INSERT INTO chat.message (conversation_id, sender_id, seq, body)
            SELECT ${conversations[0]!.id}, ${alice}, 100 + s, 'filler' FROM generate_series(1, 50000) s`.execute(db)
  await sql`INSERT INTO chat.message_mention (user_id, conversation_id, seq, message_id, created_at)
            SELECT gen_random_uuid(), conversation_id, seq, id, created_at FROM chat.message WHERE body = 'filler'`.execute(db)
  await sql`ANALYZE chat.message_mention`.execute(db)
  await sql`ANALYZE chat.message`.execute(db)
  const plan = async (run: () => Promise<unknown>, marker: string) => {
    statements.length = 0
    await run()
    const statement = statements.find((s) => s.sql.includes(marker))
    if (statement === undefined) throw new Error(`no statement with ${marker}`)
    const { rows } = await pool.query(`EXPLAIN ${statement.sql}`, [...statement.parameters])
    return rows.map((row: Record<string, string>) => row['QUERY PLAN']).join('\n')
  }
  const first = await listMentions(db, bob, { limit: 5 })
  const mentions = await plan(() => listMentions(db, bob, { limit: 5, cursor: first.next_cursor! }), 'message_mention')
  t.match(mentions, /Index Scan( Backward)? using message_mention_user_recent_idx/, 'the mentions page walks (user_id, created_at, message_id) from the cursor')
  t.notMatch(mentions, /Seq Scan on message/, 'and scans neither table')
  const inbox = await plan(() => listConversations(db, bob, { limit: 20 }), 'message_mention')
  t.match(inbox, /Scan using message_mention_(pkey|user_recent_idx) on message_mention/, 'unread_mention_count reads the user\'s mentions by index')
  t.notMatch(inbox, /Seq Scan on message/, 'and scans neither table')
})
