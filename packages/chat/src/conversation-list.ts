// A user's conversations, newest activity first, for an inbox: each with its last message, the
// user's unread count and mute, and its members. Keyset-paginated on (last activity, id).
//
// Cost per page: the user's participant rows (participant_user_idx), and per conversation one
// primary-key lookup and one backward probe of (conversation_id, seq) for its latest message;
// the page's rows then get their unread counts (capped) and member lists. Nothing is
// denormalised, so sends pay nothing for the list.
import { sql, type Kysely } from 'kysely'
import type { Database } from '@chatty/db'
import type { ConversationSummary } from '@chatty/protocol'
import { InvalidInputError } from './errors.ts'
import { unreadMentionCount } from './mentions.ts'
import { toMessage, type Message } from './messages.ts'
import { unreadCount } from './read-state.ts'

/** Member ids listed per conversation; participant_count says how many there are in all. */
export const LISTED_PARTICIPANTS = 20

/** One conversation of a user's list (@chatty/protocol). */
export type { ConversationSummary } from '@chatty/protocol'

export interface ConversationPage {
  conversations: ConversationSummary[]
  /** Pass as `cursor` for the next page; null on the last one. */
  next_cursor: string | null
}

interface Cursor { activityMicros: string, id: string }

const CURSOR = /^(-?\d{1,18})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

/**
 * Opaque to clients: the last activity in microseconds (timestamps have microseconds, which a
 * JavaScript Date would lose) and the id, base64url.
 */
export function encodeCursor (cursor: Cursor): string {
  return Buffer.from(`${cursor.activityMicros}.${cursor.id}`).toString('base64url')
}

export function decodeCursor (text: string): Cursor {
  const match = CURSOR.exec(Buffer.from(text, 'base64url').toString())
  if (match === null) throw new InvalidInputError('cursor is not one this server issued (pass next_cursor as it is)')
  return { activityMicros: match[1]!, id: match[2]! }
}

interface PageRow {
  id: string
  created_at: Date
  tenant_id: string | null
  last_seq: number
  activity: Date
  activity_micros: string
  last_message_id: string | null
  muted_until: Date | null
  last_read_seq: number
  unread_count: number
  unread_mention_count: number
  participant_count: number
  participant_ids: string[]
}

export async function listConversations (db: Kysely<Database>, userId: string, options: { limit: number, cursor?: string }): Promise<ConversationPage> {
  const cursor = options.cursor === undefined ? undefined : decodeCursor(options.cursor)
  const after = cursor === undefined
    ? sql``
    : sql`WHERE (mine.activity_micros, mine.id) < (${cursor.activityMicros}::bigint, ${cursor.id}::uuid)`
  const { rows } = await sql<PageRow>`
    WITH mine AS (
      SELECT c.id, c.created_at, c.tenant_id, c.last_seq, p.user_id, p.muted_until, p.last_read_msg,
             coalesce(latest.created_at, c.created_at) AS activity,
             (extract(epoch FROM coalesce(latest.created_at, c.created_at)) * 1000000)::bigint AS activity_micros,
             latest.id AS last_message_id
        FROM chat.participant p
        JOIN chat.conversation c ON c.id = p.conversation_id
        LEFT JOIN LATERAL (
          SELECT m.id, m.created_at FROM chat.message m WHERE m.conversation_id = c.id ORDER BY m.seq DESC LIMIT 1
        ) latest ON true
       WHERE p.user_id = ${userId}
    ), page AS (
      SELECT * FROM mine ${after}
       ORDER BY activity_micros DESC, id DESC
       LIMIT ${options.limit + 1}
    ), positioned AS (
      SELECT page.*, coalesce((SELECT r.seq FROM chat.message r WHERE r.id = page.last_read_msg), 0) AS last_read_seq FROM page
    )
    SELECT positioned.id, positioned.created_at, positioned.tenant_id, positioned.last_seq, positioned.activity,
           positioned.activity_micros::text AS activity_micros, positioned.last_message_id, positioned.muted_until,
           positioned.last_read_seq::int AS last_read_seq,
           ${unreadCount(sql.ref('positioned.id'), sql.ref('positioned.user_id'), sql.ref('positioned.last_read_seq'))}::int AS unread_count,
           ${unreadMentionCount(sql.ref('positioned.id'), sql.ref('positioned.user_id'), sql.ref('positioned.last_read_seq'))}::int AS unread_mention_count,
           (SELECT count(*) FROM chat.participant pc WHERE pc.conversation_id = positioned.id)::int AS participant_count,
           ARRAY(SELECT pp.user_id::text FROM chat.participant pp WHERE pp.conversation_id = positioned.id
                  ORDER BY pp.user_id LIMIT ${sql.lit(LISTED_PARTICIPANTS)}) AS participant_ids
      FROM positioned
     ORDER BY positioned.activity_micros DESC, positioned.id DESC
  `.execute(db)
  const more = rows.length > options.limit
  const page = more ? rows.slice(0, options.limit) : rows
  const lastIds = page.flatMap((row) => row.last_message_id === null ? [] : [row.last_message_id])
  const lastMessages = lastIds.length === 0
    ? new Map<string, Message>()
    : new Map((await db.selectFrom('chat.message').selectAll().where('id', 'in', lastIds).execute()).map((row) => [row.id, toMessage(row)]))
  const last = page.at(-1)
  return {
    conversations: page.map((row) => ({
      id: row.id,
      created_at: row.created_at.toISOString(),
      tenant_id: row.tenant_id,
      last_activity_at: row.activity.toISOString(),
      last_message: row.last_message_id === null ? null : lastMessages.get(row.last_message_id) ?? null,
      last_seq: Number(row.last_seq),
      last_read_seq: row.last_read_seq,
      unread_count: row.unread_count,
      unread_mention_count: row.unread_mention_count,
      muted_until: row.muted_until?.toISOString() ?? null,
      participant_count: row.participant_count,
      participant_ids: row.participant_ids
    })),
    next_cursor: more && last !== undefined ? encodeCursor({ activityMicros: last.activity_micros, id: last.id }) : null
  }
}
