// Adding and removing members. Only an owner may add or remove others; any member may remove
// themselves (leave). Every change is stored together with a system message (msg_type 3) that
// records it, in one transaction under the conversation's row lock, so the message's seq orders
// the change among the conversation's messages: live delivery uses it to drop a removed member's
// sockets at exactly that point (services/api rooms).
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '@chatty/db'
import { ConversationNotFoundError, InvalidInputError, NotParticipantError, ChatError } from './errors.ts'
import { bumpMemberVersion } from './membership-cache.ts'
import type { Chat } from './context.ts'
import { Role } from './conversations.ts'
import { insertNextMessage, type Message } from './messages.ts'
import { LIMITS, MsgType } from './rules.ts'

/** attachment_meta.event of the system messages written here. */
export const MemberEvent = { added: 'participants_added', removed: 'participants_removed' } as const

/** attachment_meta of a membership system message. */
export interface MemberEventMeta {
  event: typeof MemberEvent[keyof typeof MemberEvent]
  /** Who made the change (the member themselves when they left). */
  actor_id: string
  user_ids: string[]
  /** When the last owner left: the member who became owner. */
  promoted_id?: string
}

export interface MembershipChange {
  /** The system message that records the change; null when nothing changed. */
  message: Message | null
  /** Every member after the change. */
  participant_ids: string[]
}

export type RoleName = 'member' | 'owner'

export function roleName (role: number): RoleName {
  return role === Role.owner ? 'owner' : 'member'
}

/**
 * The users a system message removes from its conversation, when it records a removal: live
 * delivery stops for them right after it.
 */
export function removedBy (message: Pick<Message, 'msg_type' | 'attachment_meta'>): string[] {
  if (message.msg_type !== MsgType.system) return []
  const meta = message.attachment_meta as Partial<MemberEventMeta> | null
  if (meta === null || typeof meta !== 'object' || meta.event !== MemberEvent.removed || !Array.isArray(meta.user_ids)) return []
  return meta.user_ids.filter((id): id is string => typeof id === 'string').map((id) => id.toLowerCase())
}

class NoChange extends Error {}

/** Locks the conversation and reads its members with their roles (lower-case ids). */
async function lockMembers (trx: Transaction<Database>, conversationId: string): Promise<Map<string, number>> {
  const conversation = await trx.selectFrom('chat.conversation').select('id').where('id', '=', conversationId).forUpdate().executeTakeFirst()
  if (conversation === undefined) throw new ConversationNotFoundError()
  const rows = await trx.selectFrom('chat.participant').select(['user_id', 'role']).where('conversation_id', '=', conversationId).execute()
  return new Map(rows.map((row) => [row.user_id.toLowerCase(), row.role]))
}

async function change (
  chat: Chat,
  conversationId: string,
  apply: (trx: Transaction<Database>, members: Map<string, number>) => Promise<{ actorId: string, meta: MemberEventMeta, body: string }>
): Promise<MembershipChange> {
  let members: Map<string, number> | undefined
  let message: Message | null = null
  try {
    message = await chat.db.transaction().execute(async (trx) => {
      members = await lockMembers(trx, conversationId)
      const { actorId, meta, body } = await apply(trx, members)
      await bumpMemberVersion(trx, [conversationId])
      return await insertNextMessage(trx, {
        conversationId,
        senderId: actorId,
        content: { body, msg_type: MsgType.system, attachment_url: null, attachment_meta: JSON.stringify(meta), dedupe_key: null }
      })
    })
  } catch (error) {
    if (!(error instanceof NoChange)) throw error
  }
  if (message !== null) {
    // After the commit. Should the delete fail, the bumped version still keeps a cached list
    // from before the change from letting a removed member back in.
    await chat.membership?.forget(conversationId).catch(() => {})
  }
  return { message, participant_ids: [...members!.keys()].sort() }
}

function requireMember (members: Map<string, number>, userId: string): number {
  const role = members.get(userId)
  if (role === undefined) throw new NotParticipantError()
  return role
}

export interface AddParticipantsInput {
  conversationId: string
  actorId: string
  userIds: string[]
}

/** Adds members (role member). Only an owner may; users already in are left as they are. */
export async function addParticipants (chat: Chat, input: AddParticipantsInput): Promise<MembershipChange> {
  const actorId = input.actorId.toLowerCase()
  const wanted = [...new Set(input.userIds.map((id) => id.toLowerCase()))]
  if (wanted.length === 0) throw new InvalidInputError('user_ids must name at least one user')
  return change(chat, input.conversationId, async (trx, members) => {
    if (requireMember(members, actorId) !== Role.owner) throw new ChatError('forbidden', 'only an owner may add members')
    const fresh = wanted.filter((id) => !members.has(id))
    if (fresh.length === 0) throw new NoChange()
    if (members.size + fresh.length > LIMITS.participants) {
      throw new InvalidInputError(`a conversation has at most ${LIMITS.participants} participants`)
    }
    await trx.insertInto('chat.participant')
      .values(fresh.map((userId) => ({ conversation_id: input.conversationId, user_id: userId, role: Role.member, last_read_msg: null, muted_until: null })))
      .execute()
    for (const id of fresh) members.set(id, Role.member)
    return {
      actorId,
      meta: { event: MemberEvent.added, actor_id: actorId, user_ids: fresh },
      body: `${actorId} added ${fresh.join(', ')}`
    }
  })
}

export interface RemoveParticipantInput {
  conversationId: string
  actorId: string
  userId: string
}

/**
 * Removes a member. An owner may remove anyone; a member may remove only themselves (leave).
 * When the last owner leaves, the remaining member with the smallest id becomes owner, so the
 * conversation stays manageable.
 */
export async function removeParticipant (chat: Chat, input: RemoveParticipantInput): Promise<MembershipChange> {
  const actorId = input.actorId.toLowerCase()
  const userId = input.userId.toLowerCase()
  return change(chat, input.conversationId, async (trx, members) => {
    const actorRole = requireMember(members, actorId)
    if (userId !== actorId && actorRole !== Role.owner) throw new ChatError('forbidden', 'only an owner may remove other members')
    if (!members.has(userId)) throw new ChatError('not_found', 'that user is not a participant in this conversation')
    await trx.deleteFrom('chat.participant').where('conversation_id', '=', input.conversationId).where('user_id', '=', userId).execute()
    const removedRole = members.get(userId)
    members.delete(userId)
    const meta: MemberEventMeta = { event: MemberEvent.removed, actor_id: actorId, user_ids: [userId] }
    if (removedRole === Role.owner && members.size > 0 && ![...members.values()].includes(Role.owner)) {
      const promoted = [...members.keys()].sort()[0]!
      await trx.updateTable('chat.participant').set({ role: Role.owner })
        .where('conversation_id', '=', input.conversationId).where('user_id', '=', promoted).execute()
      members.set(promoted, Role.owner)
      meta.promoted_id = promoted
    }
    const body = userId === actorId ? `${userId} left` : `${actorId} removed ${userId}`
    return { actorId, meta, body: meta.promoted_id === undefined ? body : `${body}; ${meta.promoted_id} is now an owner` }
  })
}

/** Members with their roles, ordered by id. */
export async function listMembers (db: Kysely<Database> | Transaction<Database>, conversationId: string): Promise<Array<{ user_id: string, role: RoleName }>> {
  const conversation = await db.selectFrom('chat.conversation').select('id').where('id', '=', conversationId).executeTakeFirst()
  if (conversation === undefined) throw new ConversationNotFoundError()
  const rows = await db.selectFrom('chat.participant').select(['user_id', 'role']).where('conversation_id', '=', conversationId).orderBy('user_id').execute()
  return rows.map((row) => ({ user_id: row.user_id, role: roleName(row.role) }))
}
