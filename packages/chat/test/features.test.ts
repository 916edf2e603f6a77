// Reactions, pins and search against a real Postgres: every rule and limit, the seq each change
// takes (gap-free with the messages, replayed by entriesSince), idempotent repeats, deleting a
// pinned message, and search's reach (current conversations only, deleted excluded, edits
// reflected, paged) and plan (the GIN index).
import t, { type Test } from 'tap'
import { sql } from 'kysely'
import { createDb } from '@chatty/db'
import { testDatabase, users } from '@chatty/db/testing'
import {
  addReaction, createChat, createConversation, deleteMessage, editMessage, entriesSince, InvalidInputError, listPins, listReactions, MessageDeletedError,
  MessageNotFoundError, NotParticipantError, PIN_LIMIT, pinMessage, PinLimitError, REACTION_LIMITS, removeParticipant, removeReaction, searchMessages,
  searchQuery, sendMessage, unpinMessage, listMessages, listConversations
} from '../src/index.ts'

const { alice, bob, eve } = users
const UNKNOWN = '99999999-9999-4999-8999-999999999999'

async function setup (t: Test) {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 10 })
  t.teardown(destroy)
  const core = createChat({ db })
  const conversation = await createConversation(db, { participantIds: [alice, bob], creatorId: alice })
  const send = async (body: string, senderId = alice, conversationId = conversation.id) => (await sendMessage(core, { conversationId, senderId, body })).message
  return { db, core, chat: conversation.id, send }
}

t.test('reactions: counts on the message, idempotent repeats, seqs of their own, replayed in order', async (t) => {
  const { db, core, chat, send } = await setup(t)
  const m = await send('hello')
  const input = { conversationId: chat, messageId: m.id }
  const first = await addReaction(core, { ...input, userId: bob, reaction: '👍' })
  t.match(first, { type: 'reaction_added', seq: 2, user_id: bob, reaction: '👍', message: { id: m.id, seq: 1, reactions: { '👍': 1 } } })
  const second = await addReaction(core, { ...input, userId: alice, reaction: '👍' })
  t.same([second.seq, second.message.reactions], [3, { '👍': 2 }])
  const third = await addReaction(core, { ...input, userId: alice, reaction: ':tada:' })
  t.same([third.seq, third.message.reactions], [4, { '👍': 2, ':tada:': 1 }])

  const repeat = await addReaction(core, { ...input, userId: alice, reaction: ':tada:' })
  t.same([repeat.seq, repeat.message.reactions], [null, { '👍': 2, ':tada:': 1 }], 'a repeat changes nothing and takes no seq')
  const absent = await removeReaction(core, { ...input, userId: bob, reaction: ':tada:' })
  t.same([absent.seq, absent.message.reactions], [null, { '👍': 2, ':tada:': 1 }], 'removing a reaction that is not there changes nothing')

  const removed = await removeReaction(core, { ...input, userId: alice, reaction: ':tada:' })
  t.match(removed, { type: 'reaction_removed', seq: 5, user_id: alice, reaction: ':tada:', message: { reactions: { '👍': 2 } } })
  t.same(removed.message.reactions, { '👍': 2 }, 'a reaction whose count falls to 0 leaves the aggregate')
  const next = await send('after')
  t.equal(next.seq, 6, 'the next message follows the reaction events with no gap: the repeats gave their seqs back')

  const [history] = await listMessages(core, { conversationId: chat, limit: 10, offset: 0, beforeSeq: 6 })
  t.same([history!.id, history!.reactions, history!.pinned_at, history!.pinned_by], [m.id, { '👍': 2 }, null, null], 'history carries the reactions')
  t.same(next.reactions, {}, 'a message without reactions has {}')

  const entries = await entriesSince(db, chat, 0, 100)
  t.same(entries.map((e) => [e.seq, e.type, e.reaction ?? null]), [
    [1, 'message', null], [2, 'reaction_added', { user_id: bob, reaction: '👍' }], [3, 'reaction_added', { user_id: alice, reaction: '👍' }],
    [4, 'reaction_added', { user_id: alice, reaction: ':tada:' }], [5, 'reaction_removed', { user_id: alice, reaction: ':tada:' }], [6, 'message', null]
  ], 'entriesSince replays the reactions in seq order with the messages')

  const page1 = await listReactions(db, { ...input, limit: 1 })
  t.same(page1.reactions.map((r) => [r.user_id, r.reaction]), [[bob, '👍']])
  t.type(page1.next_cursor, 'string')
  const page2 = await listReactions(db, { ...input, limit: 1, cursor: page1.next_cursor! })
  t.same([page2.reactions.map((r) => [r.user_id, r.reaction]), page2.next_cursor], [[[alice, '👍']], null], 'who reacted with what, paged in the order they reacted')
  t.same((await listReactions(db, { ...input, limit: 10, reaction: ':tada:' })).reactions, [], 'filtered by reaction')
  await t.rejects(listReactions(db, { ...input, limit: 10, cursor: 'bm9wZQ' }), InvalidInputError)
})

t.test('reactions: the rules and limits', async (t) => {
  const { db, core, chat, send } = await setup(t)
  const m = await send('hello')
  const react = (reaction: unknown, userId = alice, messageId = m.id) => addReaction(core, { conversationId: chat, messageId, userId, reaction })
  for (const bad of ['', 'a b', 'tab\there', 'new\nline', '\u00a0nbsp', 'x'.repeat(33), 'nul\u0000', 7, null]) {
    await t.rejects(react(bad), InvalidInputError, `refused: ${JSON.stringify(bad)}`)
  }
  t.equal((await react('😀'.repeat(32))).seq, 2, '32 characters (emoji, 4 bytes each) are allowed')
  await t.rejects(react('👍', eve), NotParticipantError, 'a non-member cannot react')
  await t.rejects(react('👍', alice, UNKNOWN), MessageNotFoundError)
  const other = await createConversation(db, { participantIds: [alice, eve] })
  const elsewhere = await send('elsewhere', alice, other.id)
  await t.rejects(react('👍', alice, elsewhere.id), MessageNotFoundError, 'a message of another conversation is not found')

  const doomed = await send('doomed')
  await addReaction(core, { conversationId: chat, messageId: doomed.id, userId: bob, reaction: '👍' })
  await deleteMessage(core, { conversationId: chat, messageId: doomed.id, senderId: alice })
  await t.rejects(react('👍', alice, doomed.id), MessageDeletedError, 'a deleted message takes no reactions (409)')
  await t.rejects(removeReaction(core, { conversationId: chat, messageId: doomed.id, userId: bob, reaction: '👍' }), MessageDeletedError)

  // Per user: 20 different reactions on one message.
  const target = await send('popular')
  for (let i = 1; i < REACTION_LIMITS.perUser; i++) await react(`:u${i}:`, alice, target.id)
  t.equal((await react(':u20:', alice, target.id)).message.reactions[':u20:'], 1, 'the 20th is allowed')
  await t.rejects(react(':u21:', alice, target.id), /at most 20 different reactions per user/)
  t.equal((await react(':u1:', bob, target.id)).seq !== null, true, 'another user may still use the same ones')

  // Per message: 100 distinct reactions (five members with 20 each), then only existing ones.
  const crowd = ['11111111-1111-4111-8111-000000000001', '11111111-1111-4111-8111-000000000002', '11111111-1111-4111-8111-000000000003',
    '11111111-1111-4111-8111-000000000004', '11111111-1111-4111-8111-000000000005', '11111111-1111-4111-8111-000000000006']
  const room = await createConversation(db, { participantIds: crowd })
  const busy = (await sendMessage(core, { conversationId: room.id, senderId: crowd[0]!, body: 'busy' })).message
  for (let u = 0; u < 5; u++) {
    for (let i = 0; i < 20; i++) await addReaction(core, { conversationId: room.id, messageId: busy.id, userId: crowd[u]!, reaction: `:r${u * 20 + i}:` })
  }
  await t.rejects(addReaction(core, { conversationId: room.id, messageId: busy.id, userId: crowd[5]!, reaction: ':r100:' }), /at most 100 different reactions on one message/)
  const joined = await addReaction(core, { conversationId: room.id, messageId: busy.id, userId: crowd[5]!, reaction: ':r0:' })
  t.same([Object.keys(joined.message.reactions).length, joined.message.reactions[':r0:']], [100, 2], 'an existing reaction is still allowed at the limit')
})

t.test('pins: any member, repeats change nothing, the limit, and deleting a pinned message unpins it with an event', async (t) => {
  const { db, core, chat, send } = await setup(t)
  const m = await send('pin me')
  const pinned = await pinMessage(core, { conversationId: chat, messageId: m.id, userId: bob })
  t.match(pinned, { type: 'message_pinned', seq: 2, message: { id: m.id, seq: 1, pinned_by: bob } })
  t.match(pinned.message.pinned_at, /^\d{4}-\d\d-\d\dT/)
  t.equal((await pinMessage(core, { conversationId: chat, messageId: m.id, userId: alice })).seq, null, 'pinning again changes nothing')
  await t.rejects(pinMessage(core, { conversationId: chat, messageId: m.id, userId: eve }), NotParticipantError)
  await t.rejects(pinMessage(core, { conversationId: chat, messageId: UNKNOWN, userId: alice }), MessageNotFoundError)
  const unpinned = await unpinMessage(core, { conversationId: chat, messageId: m.id, userId: alice })
  t.match(unpinned, { type: 'message_unpinned', seq: 3, message: { id: m.id, pinned_at: null, pinned_by: null } })
  t.equal((await unpinMessage(core, { conversationId: chat, messageId: m.id, userId: alice })).seq, null, 'unpinning again changes nothing')

  const doomed = await send('pinned, then deleted')
  await pinMessage(core, { conversationId: chat, messageId: doomed.id, userId: alice })
  await pinMessage(core, { conversationId: chat, messageId: m.id, userId: alice })
  t.same((await listPins(db, chat)).map((p) => p.id), [m.id, doomed.id], 'most recently pinned first')
  const deleted = await deleteMessage(core, { conversationId: chat, messageId: doomed.id, senderId: alice })
  t.same([deleted.seq, deleted.unpinnedSeq, deleted.message.pinned_at, deleted.message.pinned_by], [7, 8, null, null], 'the delete unpins it, at the next seq')
  t.same((await listPins(db, chat)).map((p) => p.id), [m.id])
  const entries = await entriesSince(db, chat, 5, 100)
  t.same(entries.map((e) => [e.seq, e.type, e.message.id]), [[6, 'message_pinned', m.id], [7, 'message_deleted', doomed.id], [8, 'message_unpinned', doomed.id]])
  await t.rejects(pinMessage(core, { conversationId: chat, messageId: doomed.id, userId: alice }), MessageDeletedError, 'a deleted message cannot be pinned (409)')
  t.equal((await deleteMessage(core, { conversationId: chat, messageId: doomed.id, senderId: alice })).unpinnedSeq, undefined, 'deleting again unpins nothing')

  for (let i = 1; i < PIN_LIMIT; i++) await pinMessage(core, { conversationId: chat, messageId: (await send(`p${i}`)).id, userId: bob })
  t.equal((await listPins(db, chat)).length, PIN_LIMIT)
  const over = await send('one too many')
  await t.rejects(pinMessage(core, { conversationId: chat, messageId: over.id, userId: bob }), PinLimitError, 'the 51st pin is refused (409)')
  await unpinMessage(core, { conversationId: chat, messageId: m.id, userId: bob })
  t.type((await pinMessage(core, { conversationId: chat, messageId: over.id, userId: bob })).seq, 'number', 'after an unpin there is room again')
})

t.test('search: web-search syntax, current conversations only, deleted excluded, edits reflected, paged newest first', async (t) => {
  const { db, core, chat, send } = await setup(t)
  const other = await createConversation(db, { participantIds: [alice, eve], creatorId: alice })
  const old = await send('the quick brown fox')
  const jumps = await send('the fox jumps over the lazy dog')
  const elsewhere = await send('a fox in another conversation', alice, other.id)
  const gone = await send('fox to be deleted')
  await deleteMessage(core, { conversationId: chat, messageId: gone.id, senderId: alice })
  const edited = await send('nothing to see')
  await editMessage(core, { conversationId: chat, messageId: edited.id, senderId: alice, body: 'now a Fox appears' })
  const search = async (q: string, userId = alice, extra: object = {}) =>
    (await searchMessages(core, { userId, q, limit: 20, ...extra })).results.map((r) => r.message.id)

  t.same(await search('fox'), [edited.id, elsewhere.id, jumps.id, old.id], 'newest first, across the user\'s conversations, edits matched, deleted not')
  t.same(await search('fox', bob), [edited.id, jumps.id, old.id], 'only the conversations the user is in')
  t.same(await search('fox', eve), [elsewhere.id])
  t.same(await search('"quick brown"'), [old.id], 'a phrase')
  t.same(await search('"brown quick"'), [], 'a phrase in order')
  t.same(await search('fox -dog -conversation -appears'), [old.id], '-word')
  t.same(await search('lazy or quick'), [jumps.id, old.id], 'or')
  t.same(await search('FOX JUMPS'), [jumps.id], 'case does not matter; words are and-ed')
  t.same(await search('fox', alice, { conversationId: other.id }), [elsewhere.id], 'one conversation')
  await t.rejects(searchMessages(core, { userId: bob, q: 'fox', limit: 5, conversationId: other.id }), NotParticipantError, 'not a member of the conversation asked for')
  t.same(await search('-'), [], 'a query with no words matches nothing')
  const result = (await searchMessages(core, { userId: alice, q: 'jumps', limit: 5 })).results[0]!.message
  t.same(result, (await listMessages(core, { conversationId: chat, limit: 1, offset: 0, aroundSeq: jumps.seq })).find((m) => m.id === jumps.id), 'results are whole message objects')

  const first = await searchMessages(core, { userId: alice, q: 'fox', limit: 3 })
  t.same(first.results.map((r) => r.message.id), [edited.id, elsewhere.id, jumps.id])
  const rest = await searchMessages(core, { userId: alice, q: 'fox', limit: 3, cursor: first.next_cursor! })
  t.same([rest.results.map((r) => r.message.id), rest.next_cursor], [[old.id], null], 'the cursor goes on to older matches')

  for (const bad of ['', '   ', 'x'.repeat(201), 12]) await t.rejects(searchMessages(core, { userId: alice, q: bad, limit: 5 }), InvalidInputError, `q ${JSON.stringify(bad)}`)
  t.same(await search('é'.repeat(200)), [], '200 characters are allowed')
  await t.rejects(searchMessages(core, { userId: alice, q: 'fox', limit: 5, cursor: 'garbage' }), InvalidInputError)

  await removeParticipant(core, { conversationId: chat, actorId: bob, userId: bob })
  t.same(await search('fox', bob), [], 'a removed member no longer finds the conversation\'s messages')

  // The last message is now the system message of bob's leaving.
  const before = (await listConversations(db, alice, { limit: 5 })).conversations.find((c) => c.id === chat)!.last_message!
  await addReaction(core, { conversationId: chat, messageId: before.id, userId: alice, reaction: '🦊' })
  await pinMessage(core, { conversationId: chat, messageId: before.id, userId: alice })
  const last = (await listConversations(db, alice, { limit: 5 })).conversations.find((c) => c.id === chat)!.last_message!
  t.same([before.reactions, last.id, last.reactions, last.pinned_by], [{}, before.id, { '🦊': 1 }, alice],
    'the conversation list\'s last message carries reactions and the pin')
})

t.test('search uses the GIN index: the plan over 20,000 messages of the user\'s conversations', async (t) => {
  const { db, core, chat } = await setup(t)
  await sql`INSERT INTO chat.message (conversation_id, sender_id, seq, body)
    SELECT ${chat}, ${alice}, n, 'filler message number ' || n || CASE WHEN n % 5000 = 0 THEN ' needle' ELSE '' END FROM generate_series(1, 20000) n`.execute(db)
  await sql`UPDATE chat.conversation SET last_seq = 20000 WHERE id = ${chat}`.execute(db)
  await sql`ANALYZE chat.message`.execute(db)
  const plan = (await searchQuery(db, { userId: alice, q: 'needle', limit: 20 }).explain()).map((row) => String(row['QUERY PLAN'])).join('\n')
  t.comment(plan)
  t.match(plan, /Bitmap Index Scan on message_search_idx/, 'the tsquery is answered by the GIN index')
  t.notMatch(plan, /Seq Scan on message/, 'the messages are not scanned')
  t.equal((await searchMessages(core, { userId: alice, q: 'needle', limit: 20 })).results.length, 4)
})
