// Conversations and their members.
import { sql, type Kysely, type Transaction } from 'kysely'
import type { Database } from '@chatty/db'
import { BlockedError, ConversationNotFoundError, InvalidInputError, NotParticipantError } from './errors.ts'
import { LIMITS } from './rules.ts'
import type { Chat } from './context.ts'
import type { MembershipCache, MembershipFacts, MembershipLoaders, MembershipView } from './membership-cache.ts'

export type Executor = Kysely<Database> | Transaction<Database>

export const Role = { member: 0, owner: 1 } as const

export interface CreateConversationInput {
  participantIds: string[]
  tenantId?: string | null
  /** The caller, when known (jwt mode): always a member, and the owner. */
  creatorId?: string | null
}

export interface ConversationCreated {
  id: string
  created_at: Date
  participant_ids: string[]
}

export async function createConversation (db: Kysely<Database>, input: CreateConversationInput): Promise<ConversationCreated> {
  // Ids are compared as Postgres compares uuids: "ABC..." and "abc..." are one member, not a duplicate key.
  const creatorId = input.creatorId?.toLowerCase() ?? null
  const ids = [...new Set([...(creatorId ? [creatorId] : []), ...input.participantIds].map((id) => id.toLowerCase()))]
  if (ids.length === 0) throw new InvalidInputError('participant_ids must include at least one user id')
  if (ids.length > LIMITS.participants) throw new InvalidInputError(`a conversation has at most ${LIMITS.participants} participants`)
  return db.transaction().execute(async (trx) => {
    // A direct conversation is a channel between two people: not between a user and someone
    // who blocked them (whichever of the two asks).
    if (ids.length === 2) {
      const [one, two] = ids as [string, string]
      const block = await trx.selectFrom('chat.block').select('blocker_id')
        .where((eb) => eb.or([
          eb.and([eb('blocker_id', '=', one), eb('blocked_id', '=', two)]),
          eb.and([eb('blocker_id', '=', two), eb('blocked_id', '=', one)])
        ]))
        .executeTakeFirst()
      if (block !== undefined) throw new BlockedError('one of the two users has blocked the other: no direct conversation between them')
    }
    const conversation = await trx.insertInto('chat.conversation')
      .values({ tenant_id: input.tenantId ?? null })
      .returning(['id', 'created_at'])
      .executeTakeFirstOrThrow()
    await trx.insertInto('chat.participant')
      .values(ids.map((userId) => ({
        conversation_id: conversation.id,
        user_id: userId,
        role: userId === creatorId ? Role.owner : Role.member,
        last_read_msg: null,
        muted_until: null
      })))
      .execute()
    return { id: conversation.id, created_at: conversation.created_at, participant_ids: ids }
  })
}

/** The conversation's membership version, or undefined when it does not exist (one primary-key row). */
async function loadVersion (db: Executor, conversationId: string): Promise<number | undefined> {
  const row = await db.selectFrom('chat.conversation').select('member_version').where('id', '=', conversationId).executeTakeFirst()
  return row?.member_version
}

/**
 * Members (lower case) with the version they were read at, and in a direct conversation who
 * blocked whom; null when the conversation does not exist. The blocks are read after the
 * version, so they are never older than it.
 */
async function loadFacts (db: Executor, conversationId: string): Promise<MembershipFacts | null> {
  const rows = await db.selectFrom('chat.conversation as c')
    .leftJoin('chat.participant as p', 'p.conversation_id', 'c.id')
    .select(['c.member_version', 'p.user_id'])
    .where('c.id', '=', conversationId)
    .execute()
  if (rows.length === 0) return null
  const members = rows.flatMap((row) => row.user_id === null ? [] : [row.user_id.toLowerCase()])
  let blockers: string[] = []
  if (members.length === 2) {
    const blocks = await db.selectFrom('chat.block').select('blocker_id')
      .where('blocker_id', '=', sql<string>`any(${members}::uuid[])`)
      .where('blocked_id', '=', sql<string>`any(${members}::uuid[])`)
      .whereRef('blocker_id', '!=', 'blocked_id')
      .execute()
    blockers = blocks.map((row) => row.blocker_id.toLowerCase())
  }
  return { version: rows[0]!.member_version, members, blockers }
}

const loaders = (db: Executor, conversationId: string): MembershipLoaders => ({
  version: () => loadVersion(db, conversationId),
  facts: () => loadFacts(db, conversationId)
})

/**
 * The membership from the cache, read again from the database when it lacks the user and came
 * from the cache: a member added a moment ago on another process can act at once, before the
 * change's notification arrives here.
 */
async function cachedMembership (cache: MembershipCache, db: Executor, conversationId: string, userId: string): Promise<MembershipView | null> {
  const membership = await cache.membership(conversationId, loaders(db, conversationId))
  if (membership === null || membership.members.has(userId) || !membership.cached) return membership
  const fresh = await loadFacts(db, conversationId)
  if (fresh === null) return null
  if (fresh.members.includes(userId)) await cache.forget(conversationId).catch(() => {})
  return { members: new Set(fresh.members), blockers: fresh.blockers, cached: false }
}

/** Throws ConversationNotFoundError or NotParticipantError unless the user is a member. */
export async function requireParticipant (chat: Chat, conversationId: string, userId: string): Promise<void> {
  if (chat.membership === null) return await requireParticipantNow(chat.db, conversationId, userId)
  const membership = await cachedMembership(chat.membership, chat.db, conversationId, userId.toLowerCase())
  if (membership === null) throw new ConversationNotFoundError()
  if (!membership.members.has(userId.toLowerCase())) throw new NotParticipantError()
}

/**
 * requireParticipant read from the database, never from a cache: the check made inside a
 * transaction that changes the conversation, so a removal that committed before it counts.
 */
export async function requireParticipantNow (db: Executor, conversationId: string, userId: string): Promise<void> {
  const row = await db.selectFrom('chat.conversation as c')
    .leftJoin('chat.participant as p', (join) => join.onRef('p.conversation_id', '=', 'c.id').on('p.user_id', '=', userId))
    .select(['c.id', 'p.user_id'])
    .where('c.id', '=', conversationId)
    .executeTakeFirst()
  if (row === undefined) throw new ConversationNotFoundError()
  if (row.user_id === null) throw new NotParticipantError()
}

/**
 * The send check: the sender is a member, and in a direct conversation (two members) the other
 * member has not blocked them.
 */
export async function requireCanSend (chat: Chat, conversationId: string, senderId: string): Promise<void> {
  if (chat.membership === null) return await requireCanSendNow(chat.db, conversationId, senderId)
  const sender = senderId.toLowerCase()
  const membership = await cachedMembership(chat.membership, chat.db, conversationId, sender)
  if (membership === null) throw new ConversationNotFoundError()
  if (!membership.members.has(sender)) throw new NotParticipantError()
  // blockers is filled for direct conversations only; the sender blocking the other is no bar.
  if (membership.members.size === 2 && membership.blockers.some((id) => id !== sender)) throw new BlockedError()
}

/**
 * requireCanSend read from the database, never from a cache: the check made where a message is
 * stored, inside the storing transaction, so a removal or block that committed before it counts.
 */
export async function requireCanSendNow (db: Executor, conversationId: string, senderId: string): Promise<void> {
  const row = await db.selectFrom('chat.conversation as c')
    .leftJoin('chat.participant as p', (join) => join.onRef('p.conversation_id', '=', 'c.id').on('p.user_id', '=', senderId))
    .select((eb) => [
      'p.user_id',
      eb.selectFrom('chat.participant as m').select(eb.fn.countAll<string>().as('n')).whereRef('m.conversation_id', '=', 'c.id').as('members'),
      eb.exists(
        eb.selectFrom('chat.participant as o')
          .innerJoin('chat.block as b', 'b.blocker_id', 'o.user_id')
          .whereRef('o.conversation_id', '=', 'c.id')
          .where('b.blocked_id', '=', senderId)
          .where('o.user_id', '!=', senderId)
      ).as('blocked')
    ])
    .where('c.id', '=', conversationId)
    .executeTakeFirst()
  if (row === undefined) throw new ConversationNotFoundError()
  if (row.user_id === null) throw new NotParticipantError()
  if (row.blocked && Number(row.members) === 2) throw new BlockedError()
}

export async function requireConversation (chat: Chat, conversationId: string): Promise<void> {
  const { db, membership } = chat
  if (membership !== null) {
    if (await membership.membership(conversationId, loaders(db, conversationId)) === null) throw new ConversationNotFoundError()
    return
  }
  const row = await db.selectFrom('chat.conversation').select('id').where('id', '=', conversationId).executeTakeFirst()
  if (row === undefined) throw new ConversationNotFoundError()
}

/** The seq of a conversation's latest entry (0 when it has none or does not exist). */
export async function lastSeq (db: Executor, conversationId: string): Promise<number> {
  const row = await db.selectFrom('chat.conversation').select('last_seq').where('id', '=', conversationId).executeTakeFirst()
  return row?.last_seq ?? 0
}

export async function listParticipants (chat: Chat, conversationId: string): Promise<string[]> {
  await requireConversation(chat, conversationId)
  const rows = await chat.db.selectFrom('chat.participant')
    .select('user_id')
    .where('conversation_id', '=', conversationId)
    .orderBy('user_id')
    .execute()
  return rows.map((row) => row.user_id)
}
