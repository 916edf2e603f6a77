// Read state and receipts: a member's read position (participant.last_read_msg, compared by the
// seq of the message it names, so it never moves backwards), read and delivered receipts
// (chat.receipt), and unread counts.
import { sql, type Expression, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '@chatty/db'
import type { Executor } from './conversations.ts'
import { requireParticipant } from './conversations.ts'
import type { Chat } from './context.ts'
import { MessageNotFoundError, NotParticipantError } from './errors.ts'

export const ReceiptStatus = { delivered: 0, read: 1 } as const

/**
 * Unread counts stop here: counting is a scan of the unread messages, and a badge does not need
 * more ("1000" reads as "1000 or more").
 */
export const UNREAD_COUNT_CAP = 1000

export interface ReadPosition {
  conversation_id: string
  /** The reader, as stored (lower case). */
  user_id: string
  /** The last message read after the call: the newer of the old position and the message named. */
  message_id: string
  seq: number
  /** False when the member had already read as far or further: nothing changed. */
  moved: boolean
  /** Messages of others after the position, at most UNREAD_COUNT_CAP. */
  unread_count: number
}

async function findMessage (db: Executor, conversationId: string, messageId: string): Promise<{ id: string, seq: number }> {
  const row = await db.selectFrom('chat.message').select(['id', 'seq'])
    .where('id', '=', messageId).where('conversation_id', '=', conversationId)
    .executeTakeFirst()
  if (row === undefined) throw new MessageNotFoundError()
  return { id: row.id, seq: Number(row.seq) }
}

/**
 * Marks a message (and so everything before it) read by a member. The position moves only
 * forwards; a read receipt (status 1) is written for the message named either way. Concurrent
 * calls for one member serialise on their participant row.
 */
export async function markRead (chat: Chat, conversationId: string, userId: string, messageId: string): Promise<ReadPosition> {
  await requireParticipant(chat, conversationId, userId)
  return chat.db.transaction().execute(async (trx) => {
    const target = await findMessage(trx, conversationId, messageId)
    const member = await trx.selectFrom('chat.participant')
      .select(['user_id', 'last_read_msg'])
      .where('conversation_id', '=', conversationId).where('user_id', '=', userId)
      .forUpdate()
      .executeTakeFirst()
    // Removed since the check above.
    if (member === undefined) throw new NotParticipantError()
    const current = member.last_read_msg === null
      ? undefined
      : await trx.selectFrom('chat.message').select(['id', 'seq']).where('id', '=', member.last_read_msg).executeTakeFirst()
    // A position naming a message that is gone counts as no position.
    const moved = current === undefined || Number(current.seq) < target.seq
    if (moved) {
      await trx.updateTable('chat.participant')
        .set({ last_read_msg: target.id })
        .where('conversation_id', '=', conversationId).where('user_id', '=', member.user_id)
        .execute()
    }
    await writeReceipt(trx, target.id, member.user_id, ReceiptStatus.read)
    const position = moved ? target : { id: current!.id, seq: Number(current!.seq) }
    const { unread } = await trx.selectNoFrom(unreadCount(sql.val(conversationId), sql.val(member.user_id), sql.val(position.seq)).as('unread')).executeTakeFirstOrThrow()
    return {
      conversation_id: conversationId.toLowerCase(),
      user_id: member.user_id,
      message_id: position.id,
      seq: position.seq,
      moved,
      unread_count: Number(unread)
    }
  })
}

/**
 * Records that a member's device received a message (status 0). Returns false when it was
 * already recorded.
 */
export async function markDelivered (chat: Chat, conversationId: string, userId: string, messageId: string): Promise<{ message_id: string, seq: number, recorded: boolean }> {
  await requireParticipant(chat, conversationId, userId)
  const { db } = chat
  const target = await findMessage(db, conversationId, messageId)
  const recorded = await writeReceipt(db, target.id, userId.toLowerCase(), ReceiptStatus.delivered)
  return { message_id: target.id, seq: target.seq, recorded }
}

async function writeReceipt (db: Executor, messageId: string, userId: string, status: number): Promise<boolean> {
  const inserted = await db.insertInto('chat.receipt')
    .values({ message_id: messageId, user_id: userId, status, at: sql<Date>`timezone('utc', now())` })
    .onConflict((oc) => oc.columns(['message_id', 'user_id', 'status']).doNothing())
    .returning('message_id')
    .executeTakeFirst()
  return inserted !== undefined
}

/**
 * An unread count as a SQL expression: a range scan of the (conversation_id, seq) index after the
 * read seq, stopped at UNREAD_COUNT_CAP. Counts message rows only (edits and deletes are events,
 * not messages), and not deleted ones: there is nothing left to read in a tombstone.
 */
export function unreadCount (conversationId: Expression<string>, userId: Expression<string>, afterSeq: Expression<number>): RawBuilder<string> {
  return sql<string>`(
    SELECT count(*) FROM (
      SELECT 1 FROM chat.message m
       WHERE m.conversation_id = ${conversationId} AND m.seq > ${afterSeq} AND m.sender_id <> ${userId}
         AND m.deleted_at IS NULL
       LIMIT ${sql.lit(UNREAD_COUNT_CAP)}
    ) AS unread
  )`
}
