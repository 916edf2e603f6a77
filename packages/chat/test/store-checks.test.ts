// The sender checked again where a message is stored (storeMessage, on the group commit and the
// one-message path alike): a removal or block that came after the send was accepted refuses it,
// even one that commits while the store waits for the conversation's lock. And the ids of
// dedupe-keyed sends: derived from (conversation, sender, dedupe_key), so every repeat names the
// message that is stored.
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import { createDb, type Database } from '@chatty/db'
import { someSessionWaitsForALock, testDatabase, users } from '@chatty/db/testing'
import {
  acceptedMessageId, blockUser, BlockedError, checkMessageInput, createConversation, dedupedMessageId, NotParticipantError,
  removeParticipant, storeMessage, createChat, createGroupCommit, type Stored
} from '../src/index.ts'

const { alice, bob, carol } = users


const content = (body: string, dedupeKey: string | null = null) => checkMessageInput({ body, dedupe_key: dedupeKey })

async function setup (t: Test, grouped: boolean) {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 10 })
  const group = grouped ? createGroupCommit(db) : undefined
  const core = createChat({ db, writer: group })
  t.teardown(async () => {
    await group?.close()
    await destroy()
  })
  /** On the group commit path, the batch statement itself decided (no batch fell back to the one-message path). */
  const batched = () => {
    if (group !== undefined) t.equal(group.stats().fallbacks, 0, 'decided by the batch statement, no fallback')
  }
  return { db, core, url, batched }
}

async function storedRows (db: Kysely<Database>, conversationId: string) {
  return await db.selectFrom('chat.message').select(['id', 'seq', 'sender_id', 'body', 'msg_type'])
    .where('conversation_id', '=', conversationId).orderBy('seq').execute()
}

async function settle (send: Promise<Stored>) {
  try {
    return { stored: await send, error: undefined }
  } catch (error) {
    return { stored: undefined, error: error as Error }
  }
}

for (const [path, grouped] of [['group commit', true], ['one-message path', false]] as const) {
  t.test(`${path}: a member removed before the store is refused, and nothing is stored`, async (t) => {
    const { db, core, batched } = await setup(t, grouped)
    const chat = await createConversation(db, { participantIds: [alice, bob, carol], creatorId: alice })
    await removeParticipant(core, { conversationId: chat.id, actorId: alice, userId: bob })
    const { stored, error } = await settle(storeMessage(core, { conversationId: chat.id, senderId: bob, content: content('too late') }))
    t.type(error, NotParticipantError, 'refused: not a participant')
    t.notOk(stored)
    const after = await storeMessage(core, { conversationId: chat.id, senderId: carol, content: content('marker') })
    t.same((await storedRows(db, chat.id)).map((row) => [row.seq, row.sender_id, row.msg_type]), [[1, alice, 3], [2, carol, 0]],
      'only the removal\'s system message and the later marker, seq gap-free')
    t.equal(after.message.seq, 2)
    batched()
  })

  t.test(`${path}: a removal that commits while the store waits for the conversation's lock refuses it`, async (t) => {
    const { db, core, url, batched } = await setup(t, grouped)
    const chat = await createConversation(db, { participantIds: [alice, bob, carol], creatorId: alice })
    // Another session plays a removal: it takes the conversation's row, as every membership change
    // does, deletes the member, and commits only once the store is waiting for that row.
    const remover = createDb(url, { max: 1 })
    t.teardown(() => remover.destroy())
    const removal = remover.db.transaction().execute(async (trx) => {
      await sql`SELECT id FROM chat.conversation WHERE id = ${chat.id} FOR UPDATE`.execute(trx)
      await sql`DELETE FROM chat.participant WHERE conversation_id = ${chat.id} AND user_id = ${bob}`.execute(trx)
      const sends = [
        settle(storeMessage(core, { conversationId: chat.id, senderId: bob, content: content('accepted before the removal') })),
        settle(storeMessage(core, { conversationId: chat.id, senderId: carol, content: content('from a member') }))
      ]
      t.ok(await someSessionWaitsForALock(trx), 'the store was waiting for the conversation when the removal committed')
      // Wrapped: the transaction must not wait for the sends, which wait for it.
      return { sends: Promise.all(sends) }
    })
    const [removed, member] = await (await removal).sends
    t.type(removed!.error, NotParticipantError, 'the removed member\'s message is refused')
    t.notOk(member!.error, 'a member\'s message is stored')
    t.same((await storedRows(db, chat.id)).map((row) => [row.seq, row.body]), [[1, 'from a member']], 'nothing of the removed member is stored')
    batched()
  })

  t.test(`${path}: a removal amid a stream of sends: nothing of the removed member after it, no deadlock, seq gap-free`, async (t) => {
    const { db, core, batched } = await setup(t, grouped)
    const chat = await createConversation(db, { participantIds: [alice, bob, carol], creatorId: alice })
    const sends: Array<Promise<{ sender: string, stored?: Stored, error?: Error }>> = []
    const wave = (n: number) => {
      for (let i = 0; i < n; i++) {
        for (const sender of [bob, carol]) {
          sends.push(settle(storeMessage(core, { conversationId: chat.id, senderId: sender, content: content(`${sender} ${sends.length}`) })).then((outcome) => ({ sender, ...outcome })))
        }
      }
    }
    wave(40)
    const removal = removeParticipant(core, { conversationId: chat.id, actorId: alice, userId: bob })
    wave(40)
    const removedAt = (await removal).message!.seq
    wave(10)
    const outcomes = await Promise.all(sends)
    const unexpected = outcomes.filter((o) => o.error !== undefined && !(o.sender === bob && o.error instanceof NotParticipantError))
    t.same(unexpected.map((o) => o.error!.message), [], 'no error but the removed member\'s refusals')
    t.ok(outcomes.some((o) => o.sender === bob && o.error !== undefined), 'some of bob\'s sends came after the removal and were refused')
    const rows = await storedRows(db, chat.id)
    t.same(rows.map((row) => row.seq), rows.map((_, i) => i + 1), 'seq 1..N without a gap')
    t.same(rows.filter((row) => row.sender_id === bob && row.seq > removedAt), [], 'nothing of bob after the removal\'s seq')
    t.equal(rows.filter((row) => row.sender_id === carol).length, 90, 'every send of the member stored')
    batched()
  })

  t.test(`${path}: a sender blocked in a direct conversation before the store is refused; in a group it is not`, async (t) => {
    const { db, core, batched } = await setup(t, grouped)
    const direct = await createConversation(db, { participantIds: [alice, bob] })
    const group = await createConversation(db, { participantIds: [alice, bob, carol] })
    await blockUser(core, alice, bob)
    const { error } = await settle(storeMessage(core, { conversationId: direct.id, senderId: bob, content: content('blocked') }))
    t.type(error, BlockedError, 'refused: blocked by the other member')
    t.same(await storedRows(db, direct.id), [], 'nothing stored')
    const inGroup = await storeMessage(core, { conversationId: group.id, senderId: bob, content: content('in a group') })
    t.equal(inGroup.message.body, 'in a group', 'a block does not apply to a group conversation')
    const reply = await storeMessage(core, { conversationId: direct.id, senderId: alice, content: content('the blocker may still write') })
    t.equal(reply.message.seq, 1)
    batched()
  })

  t.test(`${path}: a repeat of a message stored before the removal still finds it`, async (t) => {
    const { db, core, batched } = await setup(t, grouped)
    const chat = await createConversation(db, { participantIds: [alice, bob], creatorId: alice })
    const id = randomUUID()
    const first = await storeMessage(core, { id, conversationId: chat.id, senderId: bob, content: content('stored in time', 'k-1') })
    await removeParticipant(core, { conversationId: chat.id, actorId: alice, userId: bob })
    const again = await storeMessage(core, { id, conversationId: chat.id, senderId: bob, content: content('stored in time', 'k-1') })
    t.same({ id: again.message.id, created: again.created }, { id: first.message.id, created: false }, 'a retried job finds its row')
    batched()
  })

  t.test(`${path}: a dedupe-keyed message is stored under the id derived from its key`, async (t) => {
    const { db, core, batched } = await setup(t, grouped)
    const chat = await createConversation(db, { participantIds: [alice, bob] })
    const expected = dedupedMessageId(chat.id, alice, 'k-7')
    t.equal(await acceptedMessageId(db, chat.id, alice, 'k-7'), expected, 'before it is stored, the derived id')
    const stored = await Promise.all(Array.from({ length: 5 }, () => storeMessage(core, { conversationId: chat.id, senderId: alice, content: content('once', 'k-7') })))
    t.same(new Set(stored.map((s) => s.message.id)), new Set([expected]), 'every repeat names the derived id')
    t.equal(dedupedMessageId(chat.id.toUpperCase(), alice.toUpperCase(), 'k-7'), expected, 'whatever the case of the uuids')
    t.not(dedupedMessageId(chat.id, bob, 'k-7'), expected, 'another sender\'s key is another message')
    t.equal(await acceptedMessageId(db, chat.id, alice, 'k-7'), expected)
    // A message stored under another id (before ids were derived) is found by its key.
    const legacy = randomUUID()
    await storeMessage(core, { id: legacy, conversationId: chat.id, senderId: bob, content: content('old', 'k-8') })
    t.equal(await acceptedMessageId(db, chat.id, bob, 'k-8'), legacy, 'an earlier message with the key keeps its own id')
    batched()
  })
}
