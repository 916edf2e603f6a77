// Reactions: a member reacts to a message with an emoji or a `:shortcode:`. Each reaction is a row
// of chat.reaction; the message row keeps the aggregate (reaction -> count) in `reactions`,
// changed in the same transaction, so every reader of a message gets the counts with it. Adding
// or removing one takes the conversation's next seq (locking its row, as sends and edits do) and
// is recorded as an event, so live delivery and resume order it among the messages. A repeat
// changes nothing: the transaction rolls back (its seq returned) and the answer has seq null.
import { sql, type Kysely, type Transaction } from 'kysely'
import type { Database, MessageRow } from '@chatty/db'
import { requireParticipantNow, type Executor } from './conversations.ts'
import type { Chat } from './context.ts'
import { MessageEventKind, type ReactionEventType } from './edits.ts'
import { InvalidInputError, MessageDeletedError, MessageNotFoundError } from './errors.ts'
import { lockMessageForEvent, toMessage, type Message } from './messages.ts'

export const REACTION_LIMITS = {
  /** Characters (code points) in a reaction. */
  length: 32,
  /** Different reactions one user may put on one message. */
  perUser: 20,
  /** Different reactions one message may carry. */
  perMessage: 100
} as const

/** Whitespace, control characters, and what a text column cannot hold (NUL, lone surrogates). */
const NOT_IN_REACTION = /[\s\p{Cc}\p{Cs}]/u

/** A reaction by the rules: 1 to 32 characters, no whitespace (an emoji, or a `:shortcode:`). */
export function checkReaction (value: unknown): string {
  if (typeof value !== 'string') throw new InvalidInputError('reaction must be a string')
  const length = [...value].length
  if (length < 1 || length > REACTION_LIMITS.length) throw new InvalidInputError(`reaction must be 1 to ${REACTION_LIMITS.length} characters`)
  if (NOT_IN_REACTION.test(value)) throw new InvalidInputError('reaction must not contain whitespace or control characters')
  return value
}

export interface ReactionInput {
  conversationId: string
  messageId: string
  /** Who reacts: a member of the conversation. */
  userId: string
  reaction: unknown
}

export interface ReactionChange {
  type: ReactionEventType
  /** The event's seq; null when nothing changed (already reacted so, or no such reaction). */
  seq: number | null
  user_id: string
  reaction: string
  /** The message as it now is; its `reactions` is the new aggregate. */
  message: Message
}

class Unchanged extends Error {}

/** Locks the conversation (its next seq), then checks the member and the message under the lock. */
async function lockedMessage (trx: Transaction<Database>, input: ReactionInput): Promise<{ seq: number, row: MessageRow }> {
  const locked = await lockMessageForEvent(trx, input)
  if (locked.row.deleted_at !== null) throw new MessageDeletedError('the message was deleted; it takes no reactions')
  return locked
}

async function change (
  db: Kysely<Database>,
  input: ReactionInput,
  type: ReactionEventType,
  apply: (trx: Transaction<Database>, row: MessageRow, reaction: string, userId: string) => Promise<MessageRow>
): Promise<ReactionChange> {
  const reaction = checkReaction(input.reaction)
  const userId = input.userId.toLowerCase()
  try {
    return await db.transaction().execute(async (trx) => {
      const { seq, row } = await lockedMessage(trx, input)
      const updated = await apply(trx, row, reaction, userId)
      await trx.insertInto('chat.message_event')
        .values({
          conversation_id: row.conversation_id,
          seq,
          message_id: row.id,
          kind: type === 'reaction_added' ? MessageEventKind.reactionAdded : MessageEventKind.reactionRemoved,
          user_id: userId,
          reaction
        })
        .execute()
      return { type, seq, user_id: userId, reaction, message: toMessage(updated) }
    })
  } catch (error) {
    if (!(error instanceof Unchanged)) throw error
    const row = await db.selectFrom('chat.message').selectAll().where('id', '=', input.messageId).executeTakeFirstOrThrow()
    return { type, seq: null, user_id: userId, reaction, message: toMessage(row) }
  }
}

/**
 * Adds the user's reaction to a message; reacting the same way again changes nothing (seq null).
 * Refused on a deleted message (MessageDeletedError, 409) and beyond REACTION_LIMITS (400).
 */
export async function addReaction (chat: Chat, input: ReactionInput): Promise<ReactionChange> {
  return change(chat.db, input, 'reaction_added', async (trx, row, reaction, userId) => {
    const mine = await trx.selectFrom('chat.reaction').select('reaction')
      .where('message_id', '=', row.id).where('user_id', '=', userId)
      .execute()
    if (mine.some((r) => r.reaction === reaction)) throw new Unchanged()
    if (mine.length >= REACTION_LIMITS.perUser) {
      throw new InvalidInputError(`at most ${REACTION_LIMITS.perUser} different reactions per user on one message`)
    }
    if (!Object.hasOwn(row.reactions, reaction) && Object.keys(row.reactions).length >= REACTION_LIMITS.perMessage) {
      throw new InvalidInputError(`at most ${REACTION_LIMITS.perMessage} different reactions on one message`)
    }
    await trx.insertInto('chat.reaction').values({ message_id: row.id, user_id: userId, reaction }).execute()
    const path = sql`ARRAY[${reaction}]::text[]`
    return await trx.updateTable('chat.message')
      .set({ reactions: sql`jsonb_set(reactions, ${path}, to_jsonb(coalesce((reactions ->> ${reaction})::int, 0) + 1))` })
      .where('id', '=', row.id).returningAll().executeTakeFirstOrThrow()
  })
}

/** Removes the user's reaction; removing one that is not there changes nothing (seq null). */
export async function removeReaction (chat: Chat, input: ReactionInput): Promise<ReactionChange> {
  return change(chat.db, input, 'reaction_removed', async (trx, row, reaction, userId) => {
    const removed = await trx.deleteFrom('chat.reaction')
      .where('message_id', '=', row.id).where('user_id', '=', userId).where('reaction', '=', reaction)
      .executeTakeFirst()
    if (removed.numDeletedRows === 0n) throw new Unchanged()
    const path = sql`ARRAY[${reaction}]::text[]`
    return await trx.updateTable('chat.message')
      .set({
        reactions: sql`CASE WHEN coalesce((reactions ->> ${reaction})::int, 0) <= 1 THEN reactions - ${reaction}::text
          ELSE jsonb_set(reactions, ${path}, to_jsonb((reactions ->> ${reaction})::int - 1)) END`
      })
      .where('id', '=', row.id).returningAll().executeTakeFirstOrThrow()
  })
}

export interface ReactionEntry {
  user_id: string
  reaction: string
  created_at: string
}

export interface ReactionPage {
  reactions: ReactionEntry[]
  /** Pass as `cursor` for the next page; null on the last one. */
  next_cursor: string | null
}

export interface ListReactionsInput {
  conversationId: string
  messageId: string
  /** Only this reaction's users. */
  reaction?: string
  limit: number
  cursor?: string
}

const REACTION_CURSOR = /^(\d{1,18})\.([0-9a-f-]{36})\.(.+)$/su

function encodeReactionCursor (micros: string, userId: string, reaction: string): string {
  return Buffer.from(`${micros}.${userId}.${reaction}`).toString('base64url')
}

function decodeReactionCursor (text: string): { micros: string, userId: string, reaction: string } {
  const match = REACTION_CURSOR.exec(Buffer.from(text, 'base64url').toString())
  if (match === null) throw new InvalidInputError('cursor is not one this server issued (pass next_cursor as it is)')
  return { micros: match[1]!, userId: match[2]!, reaction: match[3]! }
}

/**
 * Who reacted with what to a message, in the order they reacted, a page at a time. The caller's
 * right to read the conversation is the route's to check.
 */
export async function listReactions (db: Executor, input: ListReactionsInput): Promise<ReactionPage> {
  const message = await db.selectFrom('chat.message').select('id')
    .where('id', '=', input.messageId).where('conversation_id', '=', input.conversationId)
    .executeTakeFirst()
  if (message === undefined) throw new MessageNotFoundError()
  let query = db.selectFrom('chat.reaction')
    .select(['user_id', 'reaction', 'created_at', sql<string>`(extract(epoch from created_at) * 1000000)::bigint::text`.as('micros')])
    .where('message_id', '=', input.messageId)
  if (input.reaction !== undefined) query = query.where('reaction', '=', checkReaction(input.reaction))
  if (input.cursor !== undefined) {
    const after = decodeReactionCursor(input.cursor)
    const at = sql<Date>`timestamp '1970-01-01' + ${after.micros}::bigint * interval '1 microsecond'`
    query = query.where((eb) => eb(eb.refTuple('created_at', 'user_id', 'reaction'), '>', eb.tuple(at, after.userId, after.reaction)))
  }
  const rows = await query.orderBy('created_at').orderBy('user_id').orderBy('reaction').limit(input.limit + 1).execute()
  const page = rows.slice(0, input.limit)
  const last = page.at(-1)
  return {
    reactions: page.map((r) => ({ user_id: r.user_id, reaction: r.reaction, created_at: r.created_at.toISOString() })),
    next_cursor: rows.length > input.limit && last !== undefined ? encodeReactionCursor(last.micros, last.user_id, last.reaction) : null
  }
}
