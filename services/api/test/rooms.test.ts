// The rooms' sequencer on its own (src/plugins/app/rooms.ts), against a real Postgres and the
// Postgres bus, without the api around it: whatever order, repeats or losses the bus brings, a
// member is handed every entry after its starting point once, in seq order.
import t, { type Test } from 'tap'
import { conversationTopic, createBus } from '@chatty/bus'
import { checkMessageInput, createChat, createConversation, createFeed, editMessage, entryFrame, messageFrame, storeMessage, type Message } from '@chatty/chat'
import { createDb } from '@chatty/db'
import { testDatabase, users, waitFor } from '@chatty/db/testing'
import { createRooms, type RoomMember } from '../src/plugins/app/rooms.ts'

const { alice, bob } = users
const quiet = { warn () {}, error () {} }

async function setup (t: Test) {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 5 })
  const bus = createBus({ dbUrl: url })
  t.teardown(async () => {
    await bus.close()
    await destroy()
  })
  const chat = createChat({ db })
  const rooms = createRooms({ db, bus, log: quiet })
  const { id: conversationId } = await createConversation(db, { participantIds: [alice, bob] })
  // Stored without being published: each test publishes (or leaves out) the frames itself.
  const store = async (body: string): Promise<Message> =>
    (await storeMessage(chat, { conversationId, senderId: alice, content: checkMessageInput({ body }) })).message
  return { db, bus, chat, rooms, conversationId, store, feed: createFeed(bus, quiet) }
}

/** A member that records what it is handed: seqs, and each frame's type and body. */
function recorder () {
  const got: Array<{ seq: number, type: string, body: string | null }> = []
  const member: RoomMember = {
    deliver (seq, frame) {
      const parsed = JSON.parse(frame.toString()) as { type: string, message: Message }
      got.push({ seq, type: parsed.type, body: parsed.message.body })
    }
  }
  return { member, got }
}

t.test('frames that arrive out of order are handed out in seq order, each once', async (t) => {
  const { rooms, conversationId, store, bus, feed } = await setup(t)
  const { member, got } = recorder()
  await rooms.join(conversationId, member)
  t.equal(rooms.position(conversationId), 0, 'starts at the conversation\'s seq when it joined')
  const [one, two, three] = [await store('one'), await store('two'), await store('three')]
  const topic = conversationTopic(conversationId)
  // 3 first: held back until 1 and 2 arrive; 2 twice.
  await bus.publish(topic, messageFrame(three!))
  await bus.publish(topic, messageFrame(two!))
  await bus.publish(topic, messageFrame(two!))
  await bus.publish(topic, messageFrame(one!))
  // The marker: a later message, published last; everything before it has been handed out when it is.
  await feed.message(await store('four'))
  await waitFor(() => got.some((entry) => entry.body === 'four'), 'the marker arrives')
  t.same(got.map((entry) => [entry.seq, entry.body]), [[1, 'one'], [2, 'two'], [3, 'three'], [4, 'four']])
  t.equal(rooms.position(conversationId), 4)
})

t.test('a gap that does not close by itself is filled from the database, edits included', async (t) => {
  const { chat, rooms, conversationId, store, feed } = await setup(t)
  const { member, got } = recorder()
  await rooms.join(conversationId, member)
  const lost = await store('lost on the bus')
  const edit = await editMessage(chat, { conversationId, messageId: lost.id, senderId: alice, body: 'edited, also lost' })
  t.equal(edit.seq, 2)
  // Only seq 3 is published: 1 and 2 never arrive on the bus.
  await feed.message(await store('three'))
  await waitFor(() => got.length >= 3, 'the gap is filled')
  t.same(got.map((entry) => [entry.seq, entry.type, entry.body]), [
    [1, 'message', 'edited, also lost'],
    [2, 'message_updated', 'edited, also lost'],
    [3, 'message', 'three']
  ], 'read from the database as history shows it now, then the frame that arrived')
})

t.test('a member that joins later starts at the room\'s position: nothing from before, nothing twice', async (t) => {
  const { rooms, conversationId, store, feed } = await setup(t)
  const first = recorder()
  await rooms.join(conversationId, first.member)
  await feed.message(await store('before'))
  await waitFor(() => first.got.length === 1, 'the first member has it')
  const second = recorder()
  await rooms.join(conversationId, second.member)
  const after = await store('after')
  await feed.message(after)
  // A repeat of an entry already handed out (a retried job publishes again) is dropped.
  await feed.message(after)
  await feed.message(await store('marker'))
  await waitFor(() => second.got.some((entry) => entry.body === 'marker'), 'the marker arrives')
  t.same(second.got.map((entry) => entry.body), ['after', 'marker'])
  await waitFor(() => first.got.some((entry) => entry.body === 'marker'), 'the first member has the marker')
  t.same(first.got.map((entry) => entry.body), ['before', 'after', 'marker'])
  t.same(rooms.stats(), { rooms: 1, members: 2 })
  rooms.leave(conversationId, first.member)
  rooms.leave(conversationId, second.member)
  t.same(rooms.stats(), { rooms: 0, members: 0 }, 'the last one out lets go of the room')
})

t.test('entries of another conversation never reach the room', async (t) => {
  const { db, rooms, conversationId, feed, store } = await setup(t)
  const { member, got } = recorder()
  await rooms.join(conversationId, member)
  const { id: otherId } = await createConversation(db, { participantIds: [alice, bob] })
  const chat = createChat({ db })
  const other = (await storeMessage(chat, { conversationId: otherId, senderId: bob, content: checkMessageInput({ body: 'elsewhere' }) })).message
  await feed.message(other)
  // Published on this conversation's topic by mistake: its conversation_id does not match.
  await feed.event(conversationId, entryFrame({ type: 'message', seq: 1, message: other }), 'a stray frame')
  await feed.message(await store('marker'))
  await waitFor(() => got.some((entry) => entry.body === 'marker'), 'the marker arrives')
  t.same(got.map((entry) => entry.body), ['marker'])
})
