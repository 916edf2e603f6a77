// Blocks (chat.block) and mutes (participant.muted_until).
import { sql } from 'kysely'
import type { Executor } from './conversations.ts'
import { requireParticipant } from './conversations.ts'
import { InvalidInputError } from './errors.ts'
import { membershipCacheOf } from './membership-cache.ts'

export async function blockUser (db: Executor, blockerId: string, blockedId: string): Promise<void> {
  if (blockerId.toLowerCase() === blockedId.toLowerCase()) throw new InvalidInputError('a user cannot block themselves')
  await db.insertInto('chat.block')
    .values({ blocker_id: blockerId, blocked_id: blockedId, at: sql<Date>`timezone('utc', now())` })
    .onConflict((oc) => oc.columns(['blocker_id', 'blocked_id']).doNothing())
    .execute()
  await membershipCacheOf(db)?.forgetBlock(blockerId, blockedId)
}

export async function unblockUser (db: Executor, blockerId: string, blockedId: string): Promise<void> {
  await db.deleteFrom('chat.block').where('blocker_id', '=', blockerId).where('blocked_id', '=', blockedId).execute()
  await membershipCacheOf(db)?.forgetBlock(blockerId, blockedId)
}

export async function listBlocked (db: Executor, blockerId: string): Promise<string[]> {
  const rows = await db.selectFrom('chat.block').select('blocked_id').where('blocker_id', '=', blockerId).orderBy('blocked_id').execute()
  return rows.map((row) => row.blocked_id)
}

/** Mutes a member's notifications until an instant (null unmutes). */
export async function setMute (db: Executor, conversationId: string, userId: string, until: Date | null): Promise<Date | null> {
  await requireParticipant(db, conversationId, userId)
  await db.updateTable('chat.participant')
    .set({ muted_until: until })
    .where('conversation_id', '=', conversationId)
    .where('user_id', '=', userId)
    .execute()
  return until
}
