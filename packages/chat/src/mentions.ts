// A user's mentions (docs/design.md section 8): the messages that mention them across their
// current conversations, newest first, and the unread ones per conversation for the inbox. Both
// read chat.message_mention (migration 000010) by user, never the messages of a conversation.
import { sql, type Expression, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '@chatty/db'
import { InvalidInputError } from './errors.ts'
import { toMessage, type Message } from './messages.ts'
import { UNREAD_COUNT_CAP } from './read-state.ts'

/**
 * Mentions of a user in a conversation after a seq (their read position), deleted messages
 * left out, counted up to UNREAD_COUNT_CAP: a walk of message_mention's primary key.
 */
export function unreadMentionCount (conversationId: Expression<string>, userId: Expression<string>, afterSeq: Expression<number>): RawBuilder<string> {
  return sql<string>`(
    SELECT count(*) FROM (
      SELECT 1 FROM chat.message_mention mm JOIN chat.message m ON m.id = mm.message_id
       WHERE mm.user_id = ${userId} AND mm.conversation_id = ${conversationId} AND mm.seq > ${afterSeq}
         AND m.deleted_at IS NULL
       LIMIT ${sql.lit(UNREAD_COUNT_CAP)}
    ) AS unread_mentions
  )`
}

export interface MentionPage {
  /** Newest first. */
  messages: Message[]
  /** Pass as `cursor` for the next page; null on the last one. */
  next_cursor: string | null
}

interface MentionCursor { micros: string, messageId: string }

const CURSOR = /^(-?\d{1,18})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

/** Opaque to clients: the mention's created_at in microseconds and the message id, base64url. */
function encodeCursor (cursor: MentionCursor): string {
  return Buffer.from(`${cursor.micros}.${cursor.messageId}`).toString('base64url')
}

function decodeCursor (text: string): MentionCursor {
  const match = CURSOR.exec(Buffer.from(text, 'base64url').toString())
  if (match === null) throw new InvalidInputError('cursor is not one this server issued (pass next_cursor as it is)')
  return { micros: match[1]!, messageId: match[2]! }
}

/**
 * The messages mentioning a user in the conversations they are a member of now, newest first
 * (created_at, then message id), deleted ones left out; keyset-paged on
 * message_mention_user_recent_idx. The sender's mentions of themselves are not recorded.
 */
export async function listMentions (db: Kysely<Database>, userId: string, options: { limit: number, cursor?: string }): Promise<MentionPage> {
  const cursor = options.cursor === undefined ? undefined : decodeCursor(options.cursor)
  const micros = sql<string>`(extract(epoch FROM mm.created_at) * 1000000)::bigint`
  let query = db.selectFrom('chat.message_mention as mm')
    .innerJoin('chat.participant as p', (join) => join.onRef('p.conversation_id', '=', 'mm.conversation_id').onRef('p.user_id', '=', 'mm.user_id'))
    .innerJoin('chat.message as m', 'm.id', 'mm.message_id')
    .selectAll('m')
    .select(sql<string>`${micros}::text`.as('cursor_micros'))
    .where('mm.user_id', '=', userId)
    .where('m.deleted_at', 'is', null)
  if (cursor !== undefined) {
    // Written as a range on the index's columns, so the scan starts at the cursor.
    query = query.where(sql<boolean>`(mm.created_at, mm.message_id) < ('epoch'::timestamp + ${cursor.micros}::bigint * interval '1 microsecond', ${cursor.messageId}::uuid)`)
  }
  const rows = await query.orderBy('mm.created_at', 'desc').orderBy('mm.message_id', 'desc').limit(options.limit + 1).execute()
  const more = rows.length > options.limit
  const page = more ? rows.slice(0, options.limit) : rows
  const last = page.at(-1)
  return {
    messages: page.map(({ cursor_micros: _micros, ...row }) => toMessage(row)),
    next_cursor: more && last !== undefined ? encodeCursor({ micros: last.cursor_micros, messageId: last.id }) : null
  }
}
