// Who may be notified of a message outside the live stream: its conversation's members other
// than the sender whose mute (participant.muted_until) is not in force, and the members the
// message mentions, muted or not (section 8). Whether they are online
// is the presence store's answer, asked by the caller.
import { sql } from 'kysely'
import type { Executor } from './conversations.ts'

export async function notifiableMembers (db: Executor, conversationId: string, senderId: string, mentionedUserIds: readonly string[] = []): Promise<string[]> {
  const rows = await db.selectFrom('chat.participant')
    .select('user_id')
    .where('conversation_id', '=', conversationId)
    .where('user_id', '<>', senderId)
    // muted_until is a `timestamp` holding UTC (go-chatty's column): compare it with UTC now.
    .where((eb) => eb.or([
      eb('muted_until', 'is', null),
      eb('muted_until', '<=', sql<Date>`(now() at time zone 'utc')`),
      ...(mentionedUserIds.length === 0 ? [] : [eb('user_id', 'in', [...mentionedUserIds])])
    ]))
    .orderBy('user_id')
    .execute()
  return rows.map((row) => row.user_id)
}
