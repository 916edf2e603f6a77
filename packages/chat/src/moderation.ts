// Blocks (chat.block) and mutes (participant.muted_until).
import { sql, type Kysely, type Transaction } from 'kysely'
import type { Database } from '@chatty/db'
import type { Executor } from './conversations.ts'
import { requireParticipant } from './conversations.ts'
import { InvalidInputError } from './errors.ts'
import { bumpMemberVersion } from './membership-cache.ts'
import type { Chat } from './context.ts'

export async function blockUser (chat: Chat, blockerId: string, blockedId: string): Promise<void> {
  if (blockerId.toLowerCase() === blockedId.toLowerCase()) throw new InvalidInputError('a user cannot block themselves')
  await changeBlock(chat, blockerId, blockedId, (trx) => trx.insertInto('chat.block')
    .values({ blocker_id: blockerId, blocked_id: blockedId, at: sql<Date>`timezone('utc', now())` })
    .onConflict((oc) => oc.columns(['blocker_id', 'blocked_id']).doNothing())
    .executeTakeFirst())
}

export async function unblockUser (chat: Chat, blockerId: string, blockedId: string): Promise<void> {
  await changeBlock(chat, blockerId, blockedId, (trx) => trx.deleteFrom('chat.block')
    .where('blocker_id', '=', blockerId).where('blocked_id', '=', blockedId)
    .executeTakeFirst())
}

/**
 * A block or unblock, and in the same transaction a new membership version for the
 * conversations the two users share (cached send checks there read the blocks again); their
 * cached facts are dropped after the commit.
 */
async function changeBlock (chat: Chat, blockerId: string, blockedId: string,
  write: (trx: Transaction<Database>) => Promise<{ numInsertedOrUpdatedRows?: bigint, numDeletedRows?: bigint }>): Promise<void> {
  const bumped = await chat.db.transaction().execute(async (trx) => {
    const result = await write(trx)
    if ((result.numInsertedOrUpdatedRows ?? result.numDeletedRows ?? 0n) === 0n) return []
    const shared = await trx.selectFrom('chat.participant as a')
      .innerJoin('chat.participant as b', 'b.conversation_id', 'a.conversation_id')
      .select('a.conversation_id')
      .where('a.user_id', '=', blockerId)
      .where('b.user_id', '=', blockedId)
      .execute()
    return await bumpMemberVersion(trx, shared.map((row) => row.conversation_id))
  })
  if (bumped.length > 0) await chat.membership?.forget(bumped).catch(() => {})
}

export async function listBlocked (db: Executor, blockerId: string): Promise<string[]> {
  const rows = await db.selectFrom('chat.block').select('blocked_id').where('blocker_id', '=', blockerId).orderBy('blocked_id').execute()
  return rows.map((row) => row.blocked_id)
}

/** Mutes a member's notifications until an instant (null unmutes). */
export async function setMute (chat: Chat, conversationId: string, userId: string, until: Date | null): Promise<Date | null> {
  await requireParticipant(chat, conversationId, userId)
  await chat.db.updateTable('chat.participant')
    .set({ muted_until: until })
    .where('conversation_id', '=', conversationId)
    .where('user_id', '=', userId)
    .execute()
  return until
}
