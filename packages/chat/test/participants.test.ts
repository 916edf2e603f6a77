import t from 'tap'
import { createDb } from '@chatty/db'
import { testDatabase, users } from '@chatty/db/testing'
import { addParticipants, blockUser, createConversation, removeParticipant, requireParticipant, requireCanSend, useMembershipCache, BlockedError, NotParticipantError } from '../src/index.ts'

const { alice, bob, dave } = users


t.test('a cached member list that lacks a user is checked again: a member added through another process acts at once', async (t) => {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 4 })
  t.teardown(destroy)
  // Another process: its changes never invalidate this one's cache.
  const other = createDb(url, { max: 2 })
  t.teardown(other.destroy)
  const store = new Map<string, unknown>()
  const stopCache = useMembershipCache(db, {
    async getOrLoad<T> (key: string, load: () => Promise<T>) {
      if (!store.has(key)) store.set(key, await load())
      return store.get(key) as T
    },
    async delete (key: string) { store.delete(key) }
  })
  t.teardown(stopCache)
  const chat = await createConversation(other.db, { participantIds: [bob], creatorId: alice })
  await t.rejects(requireParticipant(db, chat.id, dave), NotParticipantError, 'not a member yet; the list is now cached')
  await addParticipants(other.db, { conversationId: chat.id, actorId: alice, userIds: [dave] })
  await requireParticipant(db, chat.id, dave)
  await requireCanSend(db, chat.id, dave)
  t.pass('the added member is let in although the cached list predates them')
})

t.test('a cached member list that missed its invalidation is not used: a member removed (or blocked) through another process is refused at once', async (t) => {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 4 })
  t.teardown(destroy)
  // Another process whose invalidations never arrive here (as when Redis was unreachable).
  const other = createDb(url, { max: 2 })
  t.teardown(other.destroy)
  const store = new Map<string, unknown>()
  const stopCache = useMembershipCache(db, {
    async getOrLoad<T> (key: string, load: () => Promise<T>) {
      if (!store.has(key)) store.set(key, await load())
      return store.get(key) as T
    },
    async delete () { throw new Error('the cache is unreachable') }
  })
  t.teardown(stopCache)
  const group = await createConversation(other.db, { participantIds: [bob, dave], creatorId: alice })
  const direct = await createConversation(other.db, { participantIds: [bob], creatorId: alice })
  await requireParticipant(db, group.id, bob)
  await requireCanSend(db, group.id, bob)
  await requireCanSend(db, direct.id, bob)
  t.ok(store.size >= 2, 'both member lists are cached')

  await removeParticipant(other.db, { conversationId: group.id, actorId: alice, userId: bob })
  await t.rejects(requireParticipant(db, group.id, bob), NotParticipantError, 'the removed member cannot read')
  await t.rejects(requireCanSend(db, group.id, bob), NotParticipantError, 'nor send')
  await requireCanSend(db, group.id, dave)
  await blockUser(other.db, alice, bob)
  await t.rejects(requireCanSend(db, direct.id, bob), BlockedError, 'the blocked user cannot send to the blocker')
  await requireCanSend(db, direct.id, alice)
  t.pass('the others still can')
})
