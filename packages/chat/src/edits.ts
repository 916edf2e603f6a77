// Editing and deleting one's own messages. The message row is changed in place (history shows the
// edited body with edited_at, or a tombstone with deleted_at), and the change is recorded as an
// event with a seq of its own, taken from conversation.last_seq in the same transaction and under
// the same row lock as sends: live delivery and resume order it among the conversation's
// messages, and the conversation's seqs stay gap-free over messages and events together.
import { sql, type Kysely, type RawBuilder, type Transaction, type UpdateObject } from 'kysely'
import type { Database, MessageRow } from '@chatty/db'
import { requireCanSendNow, requireParticipantNow, type Executor } from './conversations.ts'
import type { Chat } from './context.ts'
import { ChatError, InvalidInputError, MessageDeletedError, MessageNotFoundError } from './errors.ts'
import { takeNextSeq, toMessage, type Message } from './messages.ts'
import { checkEditBody, MsgType } from './rules.ts'

/** chat.message_event.kind; reactions and pins (3 to 6) are reactions.ts's and pins.ts's. */
export const MessageEventKind = { updated: 1, deleted: 2, reactionAdded: 3, reactionRemoved: 4, pinned: 5, unpinned: 6 } as const

/** The live frame types of the events, by kind. */
export type MessageEventType = 'message_updated' | 'message_deleted'
/** Reactions: frames `{conversation_id, seq, message_id, user_id, reaction, reactions}`. */
export type ReactionEventType = 'reaction_added' | 'reaction_removed'
/** Pins: frames `{conversation_id, seq, message}`, like edits. */
export type PinEventType = 'message_pinned' | 'message_unpinned'
export type EntryType = 'message' | MessageEventType | ReactionEventType | PinEventType

const EVENT_TYPES: Record<number, Exclude<EntryType, 'message'>> = {
  [MessageEventKind.updated]: 'message_updated',
  [MessageEventKind.deleted]: 'message_deleted',
  [MessageEventKind.reactionAdded]: 'reaction_added',
  [MessageEventKind.reactionRemoved]: 'reaction_removed',
  [MessageEventKind.pinned]: 'message_pinned',
  [MessageEventKind.unpinned]: 'message_unpinned'
}

export interface MessageChange {
  type: MessageEventType
  /** The event's own seq; null when nothing changed (the same body again, or already deleted). */
  seq: number | null
  /** The message as history now shows it (its own seq, edited_at, deleted_at). */
  message: Message
  /** A delete of a pinned message also unpins it: the seq of that `message_unpinned` event. */
  unpinnedSeq?: number
}

/** One entry of a conversation's seq order: a message, or an event about one (edit, delete, reaction, pin). */
export interface ConversationEntry {
  type: EntryType
  seq: number
  /** For an event: the message as it is now (a later edit or delete already applied). */
  message: Message
  /** Reaction events: who, and which reaction. */
  reaction?: { user_id: string, reaction: string }
}

export interface EditMessageInput {
  conversationId: string
  messageId: string
  /** Who edits: must be the message's sender, and still a member. */
  senderId: string
  /** The new body, by a send's rules; an empty body is allowed only on a message with an attachment. */
  body: unknown
}

export interface DeleteMessageInput {
  conversationId: string
  messageId: string
  /** Who deletes: must be the message's sender, and still a member. */
  senderId: string
}

class Unchanged extends Error {
  readonly row: MessageRow
  constructor (row: MessageRow) {
    super('unchanged')
    this.row = row
  }
}

const now = sql<Date>`timezone('utc', now())`

/**
 * Runs one edit or delete: bumps the conversation's seq (locking its row, as a send does), checks
 * the actor and the message under that lock, updates the row and records the event. `apply`
 * returns the row's new values, or null when nothing would change: then the transaction rolls
 * back (the seq is returned) and the message is answered as it is.
 */
async function changeMessage (
  db: Kysely<Database>,
  input: DeleteMessageInput,
  type: MessageEventType,
  check: (trx: Transaction<Database>) => Promise<void>,
  apply: (row: MessageRow) => UpdateObject<Database, 'chat.message'> | null
): Promise<MessageChange> {
  try {
    return await db.transaction().execute(async (trx) => {
      const seq = await takeNextSeq(trx, input.conversationId)
      await check(trx)
      const row = await trx.selectFrom('chat.message').selectAll()
        .where('id', '=', input.messageId).where('conversation_id', '=', input.conversationId)
        .executeTakeFirst()
      if (row === undefined) throw new MessageNotFoundError()
      if (row.sender_id.toLowerCase() !== input.senderId.toLowerCase()) {
        throw new ChatError('forbidden', 'only the sender may edit or delete a message')
      }
      if (row.msg_type === MsgType.system) throw new ChatError('forbidden', 'system messages cannot be edited or deleted')
      const update = apply(row)
      if (update === null) throw new Unchanged(row)
      const updated = await trx.updateTable('chat.message').set(update).where('id', '=', row.id).returningAll().executeTakeFirstOrThrow()
      await trx.insertInto('chat.message_event')
        .values({
          conversation_id: row.conversation_id,
          seq,
          message_id: row.id,
          kind: type === 'message_updated' ? MessageEventKind.updated : MessageEventKind.deleted
        })
        .execute()
      // Deleting a pinned message unpins it (the update cleared pinned_at): an event of its own.
      if (row.pinned_at !== null && updated.pinned_at === null) {
        const unpinnedSeq = await takeNextSeq(trx, input.conversationId)
        await trx.insertInto('chat.message_event').values({ conversation_id: row.conversation_id, seq: unpinnedSeq, message_id: row.id, kind: MessageEventKind.unpinned }).execute()
        return { type, seq, message: toMessage(updated), unpinnedSeq }
      }
      return { type, seq, message: toMessage(updated) }
    })
  } catch (error) {
    if (error instanceof Unchanged) return { type, seq: null, message: toMessage(error.row) }
    throw error
  }
}

/**
 * Replaces the body of one's own message. Same rules as a send's body; the editor must still be
 * able to send (a member, not blocked in a direct conversation). A deleted message cannot be
 * edited (MessageDeletedError, 409); system messages cannot be edited at all.
 */
export async function editMessage (chat: Chat, input: EditMessageInput): Promise<MessageChange> {
  const body = checkEditBody(input.body)
  return changeMessage(chat.db, input, 'message_updated', (trx) => requireCanSendNow(trx, input.conversationId, input.senderId), (row) => {
    if (row.deleted_at !== null) throw new MessageDeletedError()
    if (body === null && row.attachment_url === null) {
      throw new InvalidInputError('a message needs a body or an attachment; delete it instead')
    }
    return body === row.body ? null : { body, edited_at: now }
  })
}

/**
 * Deletes one's own message: its content goes (body, attachment, mentions), the row stays as a tombstone
 * with deleted_at so history keeps its place. Deleting it again changes nothing and answers the
 * tombstone, so a retried delete succeeds.
 */
export async function deleteMessage (chat: Chat, input: DeleteMessageInput): Promise<MessageChange> {
  return changeMessage(chat.db, input, 'message_deleted', (trx) => requireParticipantNow(trx, input.conversationId, input.senderId), (row) => {
    if (row.deleted_at !== null) return null
    return { body: null, attachment_url: null, attachment_meta: null, mentioned_user_ids: [], deleted_at: now, pinned_at: null, pinned_by: null }
  })
}

/** About the bytes a message row takes in a frame: its variable fields, and room for the fixed ones. */
function rowBytes (table: 'm'): RawBuilder<number> {
  const column = (name: string) => sql.ref(`${table}.${name}`)
  return sql<number>`512 + coalesce(octet_length(${column('body')}), 0) + coalesce(octet_length(${column('attachment_url')}), 0) + coalesce(octet_length(${column('attachment_meta')}::text), 0) + 39 * cardinality(${column('mentioned_user_ids')})`
}

/**
 * The conversation's entries after a seq in seq order, at most `limit`: messages and the edit and
 * delete events, merged. The replay for a reconnecting client, and what fills a room's gap.
 * With `maxBytes`, each of the two reads also stops at the row that takes it past about that many
 * bytes of frames (at least one row is read), so a page of large messages stays small in memory.
 */
export async function entriesSince (db: Executor, conversationId: string, sinceSeq: number, limit: number, maxBytes = Number.MAX_SAFE_INTEGER): Promise<ConversationEntry[]> {
  // The running total is taken over the first `limit` rows only, never over the whole history.
  const [messages, events] = await Promise.all([
    db.selectFrom((eb) => eb.selectFrom((eb) => eb.selectFrom('chat.message as m').selectAll('m').select(rowBytes('m').as('row_bytes'))
      .where('m.conversation_id', '=', conversationId).where('m.seq', '>', sinceSeq)
      .orderBy('m.seq', 'asc').limit(limit).as('r'))
      .selectAll('r').select(sql<number>`sum(r.row_bytes) over (order by r.seq) - r.row_bytes`.as('bytes_before')).as('p'))
      .selectAll('p').where('p.bytes_before', '<', maxBytes).orderBy('p.seq', 'asc').execute(),
    db.selectFrom((eb) => eb.selectFrom((eb) => eb.selectFrom('chat.message_event as e')
      .innerJoin('chat.message as m', 'm.id', 'e.message_id')
      .selectAll('m')
      .select(['e.seq as event_seq', 'e.kind as event_kind', 'e.user_id as event_user_id', 'e.reaction as event_reaction', rowBytes('m').as('row_bytes')])
      .where('e.conversation_id', '=', conversationId).where('e.seq', '>', sinceSeq)
      .orderBy('e.seq', 'asc').limit(limit).as('r'))
      .selectAll('r').select(sql<number>`sum(r.row_bytes) over (order by r.event_seq) - r.row_bytes`.as('bytes_before')).as('p'))
      .selectAll('p').where('p.bytes_before', '<', maxBytes).orderBy('p.event_seq', 'asc').execute()
  ])
  // Each list is a prefix of its kind's entries; together they are complete up to the last seq of
  // a list that may have been cut short (by `limit` or by `maxBytes`).
  const cutShort = (rows: Array<{ bytes_before: number | string, row_bytes: number }>): boolean =>
    rows.length === limit || Number(rows.at(-1)!.bytes_before) + rows.at(-1)!.row_bytes >= maxBytes
  let complete = Infinity
  if (messages.length > 0 && cutShort(messages)) complete = messages.at(-1)!.seq
  if (events.length > 0 && cutShort(events)) complete = Math.min(complete, Number(events.at(-1)!.event_seq))
  const entries: ConversationEntry[] = []
  for (const { bytes_before: _before, row_bytes: _bytes, ...row } of messages) {
    if (row.seq <= complete) entries.push({ type: 'message', seq: row.seq, message: toMessage(row) })
  }
  for (const { event_seq: seq, event_kind: kind, event_user_id: userId, event_reaction: reaction, bytes_before: _before, row_bytes: _bytes, ...row } of events) {
    if (Number(seq) > complete) continue
    const entry: ConversationEntry = { type: EVENT_TYPES[kind] ?? 'message_updated', seq: Number(seq), message: toMessage(row) }
    if (userId !== null && reaction !== null) entry.reaction = { user_id: userId, reaction }
    entries.push(entry)
  }
  return entries.sort((a, b) => a.seq - b.seq).slice(0, limit)
}
