// Replies and mentions on a send (docs/design.md section 8): the checks a send with a parent_id
// or mentioned_user_ids passes before it is accepted, and the writes that go with storing it on
// the one-message path (group-commit.ts does the same in its batch statement).
import { sql, type Transaction } from 'kysely'
import type { Database, MessageRow } from '@chatty/db'
import type { Executor } from './conversations.ts'
import { InvalidInputError } from './errors.ts'
import type { MessageContent } from './rules.ts'

/** Why a parent_id is refused: the same words on every path. */
export const BAD_PARENT = 'parent_id must name a message of this conversation that is not itself a reply'

/**
 * A send's parent is a top-level message of its conversation, and everyone it mentions is a
 * member now: InvalidInputError otherwise. Costs nothing for a send with neither.
 */
export async function requireReplyAndMentions (db: Executor, conversationId: string, content: MessageContent): Promise<void> {
  const parentId = content.parent_id ?? null
  if (parentId !== null) {
    const parent = await db.selectFrom('chat.message').select('parent_id')
      .where('id', '=', parentId).where('conversation_id', '=', conversationId)
      .executeTakeFirst()
    if (parent === undefined || parent.parent_id !== null) throw new InvalidInputError(BAD_PARENT)
  }
  const mentioned = content.mentioned_user_ids ?? []
  if (mentioned.length > 0) {
    const members = await db.selectFrom('chat.participant').select('user_id')
      .where('conversation_id', '=', conversationId).where('user_id', 'in', mentioned)
      .execute()
    const found = new Set(members.map((row) => row.user_id.toLowerCase()))
    const missing = mentioned.find((id) => !found.has(id))
    if (missing !== undefined) throw new InvalidInputError(`mentioned_user_ids: ${missing} is not a member of this conversation`)
  }
}

/**
 * In the transaction that stores a reply, under the conversation's row lock and before the
 * reply's insert (which its foreign key would refuse with a less helpful error): counts it on its
 * parent. last_reply_at is the transaction's start in UTC, which is the reply's created_at (the
 * column's default). A parent that is not a top-level message of the conversation throws
 * InvalidInputError; a reply found already stored rolls the count back with it.
 */
export async function countReply (trx: Transaction<Database>, conversationId: string, parentId: string | null | undefined): Promise<void> {
  if (parentId === null || parentId === undefined) return
  const parent = await trx.updateTable('chat.message')
    .set((eb) => ({ reply_count: eb('reply_count', '+', 1), last_reply_at: sql<Date>`greatest(last_reply_at, timezone('utc', now()))` }))
    .where('id', '=', parentId).where('conversation_id', '=', conversationId).where('parent_id', 'is', null)
    .returning('id')
    .executeTakeFirst()
  if (parent === undefined) throw new InvalidInputError(BAD_PARENT)
}

/** In the transaction that stored `message`: its mentions by user (the sender's own left out). */
export async function recordMentions (trx: Transaction<Database>, message: MessageRow): Promise<void> {
  const users = message.mentioned_user_ids.filter((id) => id.toLowerCase() !== message.sender_id.toLowerCase())
  if (users.length === 0) return
  await trx.insertInto('chat.message_mention')
    .values(users.map((userId) => ({ user_id: userId, conversation_id: message.conversation_id, seq: message.seq, message_id: message.id, created_at: message.created_at })))
    .execute()
}
