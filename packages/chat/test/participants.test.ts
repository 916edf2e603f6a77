import t, { type Test } from 'tap'
import { createDb } from '@chatty/db'
import { testDatabase, users } from '@chatty/db/testing'
import { addParticipants, blockUser, createConversation, removeParticipant, requireParticipant, requireCanSend, createChat, createMembershipCache, BlockedError, NotParticipantError } from '../src/index.ts'

const { alice, bob, dave } = users

/**
 * This process's chat core with a membership cache kept in a Map, and another process's on the
 * same database, whose changes never invalidate this one's cache. `deletes` says whether this
 * cache's own deletes work (false: as when Redis is unreachable).
 */
async function twoProcesses (t: Test, deletes: boolean) {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 4 })
  t.teardown(destroy)
  const other = createDb(url, { max: 2 })
  t.teardown(other.destroy)
  const store = new Map<string, unknown>()
  const core = createChat({ db, membership: createMembershipCache({
    async getOrLoad<T> (key: string, load: () => Promise<T>) {
      if (!store.has(key)) store.set(key, await load())
      return store.get(key) as T
    },
    async delete (key: string) {
      if (!deletes) throw new Error('the cache is unreachable')
      store.delete(key)
    }
  }) })
  return { core, other: createChat({ db: other.db }), store }
}

t.test('a cached member list that lacks a user is checked again: a member added through another process acts at once', async (t) => {
  const { core, other } = await twoProcesses(t, true)
  const chat = await createConversation(other.db, { participantIds: [bob], creatorId: alice })
  await t.rejects(requireParticipant(core, chat.id, dave), NotParticipantError, 'not a member yet; the list is now cached')
  await addParticipants(other, { conversationId: chat.id, actorId: alice, userIds: [dave] })
  await requireParticipant(core, chat.id, dave)
  await requireCanSend(core, chat.id, dave)
  t.pass('the added member is let in although the cached list predates them')
})

t.test('a cached member list that missed its invalidation is not used: a member removed (or blocked) through another process is refused at once', async (t) => {
  const { core, other, store } = await twoProcesses(t, false)
  const group = await createConversation(other.db, { participantIds: [bob, dave], creatorId: alice })
  const direct = await createConversation(other.db, { participantIds: [bob], creatorId: alice })
  await requireParticipant(core, group.id, bob)
  await requireCanSend(core, group.id, bob)
  await requireCanSend(core, direct.id, bob)
  t.ok(store.size >= 2, 'both member lists are cached')

  await removeParticipant(other, { conversationId: group.id, actorId: alice, userId: bob })
  await t.rejects(requireParticipant(core, group.id, bob), NotParticipantError, 'the removed member cannot read')
  await t.rejects(requireCanSend(core, group.id, bob), NotParticipantError, 'nor send')
  await requireCanSend(core, group.id, dave)
  await blockUser(other, alice, bob)
  await t.rejects(requireCanSend(core, direct.id, bob), BlockedError, 'the blocked user cannot send to the blocker')
  await requireCanSend(core, direct.id, alice)
  t.pass('the others still can')
})
