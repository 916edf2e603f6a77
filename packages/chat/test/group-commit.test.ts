// Group commit (src/group-commit.ts) against a real Postgres: seq order under concurrency, dedupe
// inside a batch, across batches and across processes, and batches that fail, in part or whole.
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import { createDb, type Database } from '@chatty/db'
import { someSessionWaitsForALock, testDatabase, users } from '@chatty/db/testing'
import {
  checkMessageInput, ConversationNotFoundError, createConversation, listMessages, sendMessage, storeMessage, createChat, createGroupCommit, editMessage,
  type GroupCommit, type GroupCommitOptions, type Stored
} from '../src/index.ts'

const { alice, bob } = users

async function setup (t: Test, options: GroupCommitOptions = {}) {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 10 })
  const group = createGroupCommit(db, options)
  const chat = createChat({ db, writer: group })
  t.teardown(async () => {
    await group.close()
    await destroy()
  })
  return { db, chat, group, url }
}

const content = (body: string, dedupeKey: string | null = null) => checkMessageInput({ body, dedupe_key: dedupeKey })

/** Every stored row of a conversation, in seq order. */
async function storedRows (db: Kysely<Database>, conversationId: string) {
  return await db.selectFrom('chat.message').selectAll().where('conversation_id', '=', conversationId).orderBy('seq').execute()
}

async function lastSeq (db: Kysely<Database>, conversationId: string): Promise<number> {
  const row = await db.selectFrom('chat.conversation').select('last_seq').where('id', '=', conversationId).executeTakeFirstOrThrow()
  return row.last_seq
}

/** Settles every promise and splits the outcomes, keeping each caller's index. */
async function outcomes (sends: Array<Promise<Stored>>) {
  const settled = await Promise.allSettled(sends)
  return settled.map((s, i) => ({ i, stored: s.status === 'fulfilled' ? s.value : undefined, error: s.status === 'rejected' ? s.reason as Error : undefined }))
}

t.test('concurrent sends across conversations get seq 1..N per conversation, gap-free, in each sender\'s order', async (t) => {
  const { db, chat, group } = await setup(t, { maxBatch: 64, maxInFlight: 3 })
  const conversations = await Promise.all(Array.from({ length: 6 }, () => createConversation(db, { participantIds: [alice, bob] })))
  const perSender = 40
  // 12 senders (two per conversation), each sending its messages one after another, all at once.
  const sent = new Map<string, Array<{ body: string, seq: number }>>()
  await Promise.all(conversations.flatMap((conversation) => [alice, bob].map(async (sender) => {
    const mine: Array<{ body: string, seq: number }> = []
    sent.set(`${conversation.id} ${sender}`, mine)
    for (let n = 0; n < perSender; n++) {
      const body = `${sender.slice(0, 4)}-${n}`
      const { message, created } = await storeMessage(chat, { conversationId: conversation.id, senderId: sender, content: content(body) })
      if (!created || message.body !== body || message.sender_id !== sender) t.fail(`caller ${body} got ${JSON.stringify(message)}`)
      mine.push({ body, seq: message.seq })
    }
  })))
  for (const conversation of conversations) {
    const rows = await storedRows(db, conversation.id)
    t.same(rows.map((row) => row.seq), Array.from({ length: 2 * perSender }, (_, i) => i + 1), 'seq 1..N, no gap, no repeat')
    t.equal(await lastSeq(db, conversation.id), 2 * perSender)
    for (const sender of [alice, bob]) {
      const mine = sent.get(`${conversation.id} ${sender}`)!
      t.same(mine.map((m) => m.seq), [...mine.map((m) => m.seq)].sort((a, b) => a - b), 'a sender\'s messages keep its order')
      const bySeq = new Map(rows.map((row) => [row.seq, row.body]))
      t.ok(mine.every((m) => bySeq.get(m.seq) === m.body), 'what each caller was told is what is stored')
    }
  }
  const stats = group.stats()
  t.equal(stats.messages, conversations.length * 2 * perSender)
  t.ok(stats.batches < stats.messages, `messages shared batches (${stats.messages} in ${stats.batches})`)
  t.equal(stats.fallbacks, 0)
})

t.test('a burst of concurrent sends to one conversation is one batch with consecutive seqs', async (t) => {
  const { db, chat, group } = await setup(t)
  const conversation = await createConversation(db, { participantIds: [alice, bob] })
  const before = group.stats().batches
  const stored = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    storeMessage(chat, { conversationId: conversation.id, senderId: i % 2 === 0 ? alice : bob, content: content(`m${i}`) })))
  t.equal(group.stats().batches - before, 1, 'one statement for all 50')
  t.same(stored.map((s) => s.message.seq), Array.from({ length: 50 }, (_, i) => i + 1), 'seqs follow arrival order')
  t.same(stored.map((s) => s.message.body), Array.from({ length: 50 }, (_, i) => `m${i}`))
  // The wire shape is the one-message path's: ISO timestamps, nulls present.
  t.match(stored[0]!.message, { conversation_id: conversation.id, sender_id: alice, msg_type: 0, attachment_url: null, attachment_meta: null, dedupe_key: null, edited_at: null, deleted_at: null })
  t.match(stored[0]!.message.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
})

t.test('one dedupe key sent many times in one batch is stored once; every sender gets that message', async (t) => {
  const { db, chat, group } = await setup(t)
  const conversation = await createConversation(db, { participantIds: [alice, bob] })
  const before = group.stats().batches
  const sends = [
    ...Array.from({ length: 20 }, () => storeMessage(chat, { conversationId: conversation.id, senderId: alice, content: content('hi', 'k-1') })),
    storeMessage(chat, { conversationId: conversation.id, senderId: bob, content: content('hi', 'k-1') }),
    storeMessage(chat, { conversationId: conversation.id, senderId: alice, content: content('other') })
  ]
  const stored = await Promise.all(sends)
  t.equal(group.stats().batches - before, 1)
  const aliceCopies = stored.slice(0, 20)
  t.equal(new Set(aliceCopies.map((s) => s.message.id)).size, 1, 'one message for alice\'s key')
  t.equal(aliceCopies.filter((s) => s.created).length, 1, 'exactly one caller created it')
  t.ok(stored[20]!.created, 'the same key from another sender is another message')
  const rows = await storedRows(db, conversation.id)
  t.same(rows.map((row) => row.seq), [1, 2, 3], 'no seq spent on repeats')
  t.same(rows.map((row) => row.body), ['hi', 'hi', 'other'])
})

t.test('a dedupe key or message id already stored returns the stored message, across batches', async (t) => {
  const { db, chat } = await setup(t)
  const conversation = await createConversation(db, { participantIds: [alice, bob] })
  const first = await storeMessage(chat, { conversationId: conversation.id, senderId: alice, content: content('first', 'k-9') })
  const id = randomUUID()
  const withId = await storeMessage(chat, { id, conversationId: conversation.id, senderId: bob, content: content('with id') })
  // Later batches mix repeats of both with new messages.
  const stored = await Promise.all([
    ...Array.from({ length: 10 }, () => storeMessage(chat, { conversationId: conversation.id, senderId: alice, content: content('retry', 'k-9') })),
    ...Array.from({ length: 10 }, () => storeMessage(chat, { id, conversationId: conversation.id, senderId: bob, content: content('with id') })),
    storeMessage(chat, { conversationId: conversation.id, senderId: bob, content: content('new') })
  ])
  for (const s of stored.slice(0, 10)) t.same(s, { message: first.message, created: false })
  for (const s of stored.slice(10, 20)) t.same(s, { message: withId.message, created: false })
  t.ok(stored[20]!.created)
  t.equal(stored[20]!.message.seq, 3)
  t.same((await storedRows(db, conversation.id)).map((row) => row.body), ['first', 'with id', 'new'])
})

t.test('two processes racing the same dedupe keys store each key once', async (t) => {
  const { db, chat, url } = await setup(t)
  // A second "process": its own pool and group commit on the same database.
  const other = createDb(url, { max: 10 })
  const otherGroup = createGroupCommit(other.db)
  const otherChat = createChat({ db: other.db, writer: otherGroup })
  t.teardown(async () => {
    await otherGroup.close()
    await other.destroy()
  })
  const conversation = await createConversation(db, { participantIds: [alice, bob] })
  const keys = Array.from({ length: 30 }, (_, i) => `race-${i}`)
  const sends = keys.flatMap((key) => [chat, otherChat, chat, otherChat].map((instance) =>
    storeMessage(instance, { conversationId: conversation.id, senderId: alice, content: content(key, key) })))
  const stored = await Promise.all(sends)
  const rows = await storedRows(db, conversation.id)
  t.equal(rows.length, keys.length, 'one row per key')
  t.same(rows.map((row) => row.seq), Array.from({ length: keys.length }, (_, i) => i + 1))
  const idByKey = new Map(rows.map((row) => [row.dedupe_key, row.id]))
  t.ok(stored.every((s) => s.message.id === idByKey.get(s.message.dedupe_key)), 'every caller got the stored row of its key')
  t.equal(stored.filter((s) => s.created).length, keys.length, 'one creator per key')
})

t.test('a row that violates a constraint fails only its own sender; the rest of its batch is stored', async (t) => {
  const { db, chat, group } = await setup(t)
  await sql`ALTER TABLE chat.message ADD CONSTRAINT test_no_poison CHECK (body IS DISTINCT FROM 'poison')`.execute(db)
  const conversation = await createConversation(db, { participantIds: [alice, bob] })
  await storeMessage(chat, { conversationId: conversation.id, senderId: alice, content: content('before') })
  const bodies = ['a', 'b', 'poison', 'c', 'poison', 'd']
  const before = group.stats()
  const results = await outcomes(bodies.map((body) => storeMessage(chat, { conversationId: conversation.id, senderId: bob, content: content(body) })))
  t.equal(group.stats().batches - before.batches, 1, 'they were one batch')
  t.equal(group.stats().fallbacks - before.fallbacks, 1, 'which failed and was retried one by one')
  for (const { i, stored, error } of results) {
    if (bodies[i] === 'poison') {
      t.ok(error, `poisoned send ${i} is refused`)
      t.notOk(stored)
    } else {
      t.notOk(error, `send ${i} is stored`)
      t.equal(stored?.message.body, bodies[i])
    }
  }
  const rows = await storedRows(db, conversation.id)
  t.same(rows.map((row) => row.body), ['before', 'a', 'b', 'c', 'd'], 'exactly what was acknowledged, in arrival order')
  t.same(rows.map((row) => row.seq), [1, 2, 3, 4, 5], 'no gap where the refused rows were')
  const acked = results.filter((r) => r.stored !== undefined).map((r) => r.stored!.message)
  t.same(acked.map((m) => m.seq), [2, 3, 4, 5], 'each ack names the seq that was stored')
  t.same(acked.map((m) => m.id), rows.slice(1).map((row) => row.id))
})

t.test('a batch that cannot be stored at all answers every sender with an error and stores nothing', async (t) => {
  const { db, chat } = await setup(t)
  const doomed = await createConversation(db, { participantIds: [alice, bob] })
  const fine = await createConversation(db, { participantIds: [alice, bob] })
  await sql`ALTER TABLE chat.message ADD CONSTRAINT test_doomed CHECK (conversation_id <> ${sql.lit(doomed.id)}::uuid)`.execute(db)
  const results = await outcomes(Array.from({ length: 12 }, (_, i) =>
    storeMessage(chat, { conversationId: doomed.id, senderId: i % 2 ? alice : bob, content: content(`m${i}`, i % 3 === 0 ? `k${i}` : null) })))
  t.ok(results.every((r) => r.error !== undefined && r.stored === undefined), 'every sender got an error, none an ack')
  t.equal((await storedRows(db, doomed.id)).length, 0)
  t.equal(await lastSeq(db, doomed.id), 0, 'no seq was spent')
  // The conversation next door is unaffected, and so is the doomed one's numbering later.
  const ok = await storeMessage(chat, { conversationId: fine.id, senderId: alice, content: content('fine') })
  t.equal(ok.message.seq, 1)
})

t.test('a conversation deleted while its batch waits for the lock: its senders get not_found, the rest are stored', async (t) => {
  const { db, chat, url } = await setup(t)
  const gone = await createConversation(db, { participantIds: [alice, bob] })
  const kept = await createConversation(db, { participantIds: [alice, bob] })
  // Another session holds the conversation's row, so the batch blocks on it mid-statement.
  const holder = createDb(url, { max: 1 })
  t.teardown(() => holder.destroy())
  const deleted = holder.db.transaction().execute(async (trx) => {
    await sql`SELECT id FROM chat.conversation WHERE id = ${gone.id} FOR UPDATE`.execute(trx)
    const sends = outcomes([
      ...Array.from({ length: 5 }, (_, i) => storeMessage(chat, { conversationId: gone.id, senderId: alice, content: content(`gone ${i}`) })),
      ...Array.from({ length: 5 }, (_, i) => storeMessage(chat, { conversationId: kept.id, senderId: bob, content: content(`kept ${i}`) }))
    ])
    // Wait until the batch is waiting for our lock, then delete the conversation under it.
    t.ok(await someSessionWaitsForALock(trx), 'the batch was blocked on the conversation when it was deleted')
    await sql`DELETE FROM chat.conversation WHERE id = ${gone.id}`.execute(trx)
    // Wrapped: returning the promise itself would make the transaction wait for the sends,
    // which wait for the transaction.
    return { sends }
  })
  const results = await (await deleted).sends
  for (const { i, stored, error } of results) {
    if (i < 5) {
      t.type(error, ConversationNotFoundError, `send ${i} to the deleted conversation is not_found`)
      t.notOk(stored)
    } else {
      t.notOk(error)
      t.equal(stored?.message.conversation_id, kept.id)
    }
  }
  t.same((await storedRows(db, kept.id)).map((row) => [row.seq, row.body]), [[1, 'kept 0'], [2, 'kept 1'], [3, 'kept 2'], [4, 'kept 3'], [5, 'kept 4']])
  t.equal((await db.selectFrom('chat.message').select('id').where('conversation_id', '=', gone.id).execute()).length, 0)
})

t.test('a sender\'s message waits while its earlier one to the conversation is in a batch in flight; other senders\' do not', async (t) => {
  // One message per batch and four batches at once: without the wait, a sender's second message
  // would be a batch of its own beside the first, and take the row lock in whichever order
  // Postgres serves the two.
  const { db, chat, group, url } = await setup(t, { maxBatch: 1, maxInFlight: 4 })
  const locked = await createConversation(db, { participantIds: [alice, bob] })
  const free = await createConversation(db, { participantIds: [alice, bob] })
  const holder = createDb(url, { max: 1 })
  t.teardown(() => holder.destroy())
  const store = (conversationId: string, senderId: string, body: string) => storeMessage(chat, { conversationId, senderId, content: content(body) })
  const held = holder.db.transaction().execute(async (trx) => {
    await sql`SELECT id FROM chat.conversation WHERE id = ${locked.id} FOR UPDATE`.execute(trx)
    const before = group.stats().batches
    const first = store(locked.id, alice, 'alice 1')
    t.ok(await someSessionWaitsForALock(trx), 'alice\'s first message waits for the conversation')
    const second = store(locked.id, alice, 'alice 2')
    const other = store(locked.id, bob, 'bob 1')
    // A third conversation's message is stored meanwhile: batches still go beside the one held.
    t.equal((await store(free.id, alice, 'elsewhere')).message.seq, 1)
    t.equal(group.stats().batches - before, 3, 'alice 1, bob 1 and elsewhere were written; alice 2 was not')
    t.equal(group.stats().waiting, 1, 'alice 2 waits for alice 1')
    return { sends: Promise.all([first, second, other]) }
  })
  const [first, second] = await (await held).sends
  t.ok(second.message.seq > first.message.seq, 'alice\'s messages are numbered in the order she sent them')
  t.same((await storedRows(db, locked.id)).map((row) => row.seq), [1, 2, 3])
})

t.test('senders that hand over many messages at once get them all stored, each sender\'s in the order given', async (t) => {
  // Small batches, four at once: every sender's messages span many batches, most of them written
  // while another of the same conversation is in flight.
  const { db, chat, group } = await setup(t, { maxBatch: 16, maxInFlight: 4 })
  const conversations = await Promise.all(Array.from({ length: 3 }, () => createConversation(db, { participantIds: [alice, bob] })))
  const perSender = 60
  const sends = conversations.flatMap((conversation) => [alice, bob].map((sender) =>
    Array.from({ length: perSender }, (_, n) => storeMessage(chat, { conversationId: conversation.id, senderId: sender, content: content(`${n}`) }))))
  for (const mine of sends) {
    const seqs = (await Promise.all(mine)).map((stored) => stored.message.seq)
    t.same(seqs, [...seqs].sort((a, b) => a - b), 'stored in the order handed over')
  }
  for (const conversation of conversations) t.same((await storedRows(db, conversation.id)).map((row) => row.seq), Array.from({ length: 2 * perSender }, (_, i) => i + 1))
  t.equal(group.stats().waiting, 0)
  t.ok(group.stats().batches >= (6 * perSender) / 16, 'in many batches')
})

t.test('sendMessage and the one-message path agree with the batch path on what is stored', async (t) => {
  const { db, chat, group } = await setup(t)
  const conversation = await createConversation(db, { participantIds: [alice, bob] })
  const meta = { width: 640, name: 'a "quoted", {braced} \\ value' }
  const stored = await Promise.all([
    sendMessage(chat, { conversationId: conversation.id, senderId: alice, body: '  trimmed  ', dedupe_key: 'x' }),
    sendMessage(chat, { conversationId: conversation.id, senderId: bob, msg_type: 1, attachment_url: 'https://example.com/a.png', attachment_meta: meta }),
    sendMessage(chat, { conversationId: conversation.id, senderId: alice, body: 'emoji 😀, quote " and backslash \\' })
  ])
  const page = await listMessages(chat, { conversationId: conversation.id, limit: 10, offset: 0 })
  // The three checks (membership) finish in any order, so the stores may too: compare by seq.
  t.same([...page].reverse(), stored.map((s) => s.message).sort((a, b) => a.seq - b.seq), 'what callers were told is what a reader sees')
  t.same(stored[1]!.message.attachment_meta, meta)
  t.equal(stored[0]!.message.body, 'trimmed')
  t.ok(group.stats().batches >= 1)
})

t.test('a repeat answered by the batch carries the stored timestamps, as a reader sees them', async (t) => {
  const { db, chat } = await setup(t)
  const conversation = await createConversation(db, { participantIds: [alice, bob] })
  const edited = await storeMessage(chat, { conversationId: conversation.id, senderId: alice, content: content('before', 'k-edit') })
  await editMessage(chat, { conversationId: conversation.id, messageId: edited.message.id, senderId: alice, body: 'after' })
  const exact = await storeMessage(chat, { conversationId: conversation.id, senderId: bob, content: content('on the second', 'k-exact') })
  const tenth = await storeMessage(chat, { conversationId: conversation.id, senderId: bob, content: content('a tenth', 'k-tenth') })
  // Timestamps with no fraction and with one digit of it, which Postgres writes shorter.
  await db.updateTable('chat.message').set({ created_at: sql`'2026-01-02 03:04:05'`, edited_at: sql`'2026-01-02 03:04:06.1'` }).where('id', '=', exact.message.id).execute()
  await db.updateTable('chat.message').set({ created_at: sql`'2026-01-02 03:04:05.1'` }).where('id', '=', tenth.message.id).execute()
  const repeats = await Promise.all([
    storeMessage(chat, { conversationId: conversation.id, senderId: alice, content: content('before', 'k-edit') }),
    storeMessage(chat, { conversationId: conversation.id, senderId: bob, content: content('on the second', 'k-exact') }),
    storeMessage(chat, { conversationId: conversation.id, senderId: bob, content: content('a tenth', 'k-tenth') })
  ])
  const page = [...await listMessages(chat, { conversationId: conversation.id, limit: 10, offset: 0 })].reverse()
  t.same(repeats.map((r) => r.message), page)
  t.ok(repeats.every((r) => !r.created))
  t.equal(repeats[1]!.message.created_at, '2026-01-02T03:04:05.000Z')
  t.equal(repeats[1]!.message.edited_at, '2026-01-02T03:04:06.100Z')
  t.equal(repeats[2]!.message.created_at, '2026-01-02T03:04:05.100Z')
  t.match(repeats[0]!.message.edited_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
})

t.test('close() writes what is waiting; later sends still work, one at a time', async (t) => {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 5 })
  t.teardown(destroy)
  const group: GroupCommit = createGroupCommit(db, { windowMs: 50 })
  const chat = createChat({ db, writer: group })
  const conversation = await createConversation(db, { participantIds: [alice, bob] })
  const pending = Promise.all(Array.from({ length: 5 }, (_, i) => storeMessage(chat, { conversationId: conversation.id, senderId: alice, content: content(`m${i}`) })))
  await group.close()
  t.same((await pending).map((s) => s.message.seq), [1, 2, 3, 4, 5])
  const after = await storeMessage(chat, { conversationId: conversation.id, senderId: alice, content: content('after') })
  t.equal(after.message.seq, 6)
})
