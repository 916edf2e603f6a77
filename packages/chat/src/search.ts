// Message search: Postgres full-text search over the bodies of the messages of the caller's
// current conversations. The query is in web-search syntax (words, "a phrase", -word, or) with
// the `simple` configuration (no stemming, no stop words: any language, word by word), matched
// against the expression index message_search_idx (migration 000011), whose expression the
// query repeats exactly. Deleted messages have no body and are excluded besides; an edited one
// matches its current body; a member removed from a conversation no longer finds its messages
// (the join is on chat.participant, which holds current members only).
import { sql } from 'kysely'
import { decodeCursor, encodeCursor } from './conversation-list.ts'
import { requireParticipant, type Executor } from './conversations.ts'
import type { Chat } from './context.ts'
import { InvalidInputError } from './errors.ts'
import { toMessage, type Message } from './messages.ts'

/** Characters (code points) in a search query. */
export const SEARCH_QUERY_LENGTH = 200

export interface SearchInput {
  /** Whose conversations are searched. */
  userId: string
  q: unknown
  /** Only this conversation (the user must be a member). */
  conversationId?: string
  limit: number
  cursor?: string
}

export interface SearchPage {
  results: Array<{ message: Message }>
  /** Pass as `cursor` for the next page (older matches); null on the last one. */
  next_cursor: string | null
}

/** A query by the rules: 1 to 200 characters once trimmed. */
export function checkSearchQuery (value: unknown): string {
  if (typeof value !== 'string') throw new InvalidInputError('q must be a string')
  const q = value.trim()
  const length = [...q].length
  if (length < 1 || length > SEARCH_QUERY_LENGTH) throw new InvalidInputError(`q must be 1 to ${SEARCH_QUERY_LENGTH} characters`)
  if (/\u0000/u.test(q)) throw new InvalidInputError('q must not contain NUL')
  return q
}

/** The search's SQL (exported for the plan test): newest first, one row more than the page. */
export function searchQuery (db: Executor, input: SearchInput) {
  const q = checkSearchQuery(input.q)
  let query = db.selectFrom('chat.message as m')
    .innerJoin('chat.participant as p', (join) => join.onRef('p.conversation_id', '=', 'm.conversation_id').on('p.user_id', '=', input.userId))
    .selectAll('m')
    .select(sql<string>`(extract(epoch from m.created_at) * 1000000)::bigint::text`.as('micros'))
    .where(sql<boolean>`to_tsvector('simple', coalesce(m.body, '')) @@ websearch_to_tsquery('simple', ${q})`)
    .where('m.deleted_at', 'is', null)
  if (input.conversationId !== undefined) query = query.where('m.conversation_id', '=', input.conversationId)
  if (input.cursor !== undefined) {
    const after = decodeCursor(input.cursor)
    const at = sql<Date>`timestamp '1970-01-01' + ${after.activityMicros}::bigint * interval '1 microsecond'`
    query = query.where((eb) => eb(eb.refTuple('m.created_at', 'm.id'), '<', eb.tuple(at, after.id)))
  }
  return query.orderBy('m.created_at', 'desc').orderBy('m.id', 'desc').limit(input.limit + 1)
}

/** Searches the messages of the user's current conversations, newest first, a page at a time. */
export async function searchMessages (chat: Chat, input: SearchInput): Promise<SearchPage> {
  if (input.conversationId !== undefined) await requireParticipant(chat, input.conversationId, input.userId)
  const rows = await searchQuery(chat.db, input).execute()
  const page = rows.slice(0, input.limit)
  const last = page.at(-1)
  return {
    results: page.map(({ micros: _micros, ...row }) => ({ message: toMessage(row) })),
    next_cursor: rows.length > input.limit && last !== undefined ? encodeCursor({ activityMicros: last.micros, id: last.id }) : null
  }
}
