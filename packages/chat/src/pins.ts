// Pins: any member pins a message of the conversation for everyone (pinned_at, pinned_by on the
// message row). Pinning and unpinning take the conversation's next seq and are recorded as events
// (`message_pinned` / `message_unpinned`), like edits; a repeat changes nothing (seq null). At most
// PIN_LIMIT pinned messages per conversation. Deleting a message unpins it (edits.ts).
import { sql, type Kysely } from 'kysely'
import type { Database } from '@chatty/db'
import { requireParticipantNow, type Executor } from './conversations.ts'
import type { Chat } from './context.ts'
import { MessageEventKind, type PinEventType } from './edits.ts'
import { ChatError, MessageDeletedError, MessageNotFoundError } from './errors.ts'
import { lockMessageForEvent, toMessage, type Message } from './messages.ts'

/** Pinned messages a conversation may hold at once. */
export const PIN_LIMIT = 50

export interface PinInput {
  conversationId: string
  messageId: string
  /** Who pins or unpins: any member. */
  userId: string
}

export interface PinChange {
  type: PinEventType
  /** The event's seq; null when nothing changed (already pinned, or not pinned). */
  seq: number | null
  /** The message as it now is (pinned_at, pinned_by). */
  message: Message
}

export class PinLimitError extends ChatError {
  override name = 'PinLimitError'
  constructor (message = `at most ${PIN_LIMIT} pinned messages per conversation; unpin one first`) { super('conflict', message) }
}

class Unchanged extends Error {}

async function changePin (db: Kysely<Database>, input: PinInput, type: PinEventType): Promise<PinChange> {
  try {
    return await db.transaction().execute(async (trx) => {
      const { seq, row } = await lockMessageForEvent(trx, input)
      if (type === 'message_pinned') {
        if (row.deleted_at !== null) throw new MessageDeletedError('the message was deleted; it cannot be pinned')
        if (row.pinned_at !== null) throw new Unchanged()
        const pinned = await trx.selectFrom('chat.message').select((eb) => eb.fn.countAll<string>().as('count'))
          .where('conversation_id', '=', input.conversationId).where('pinned_at', 'is not', null)
          .executeTakeFirstOrThrow()
        if (Number(pinned.count) >= PIN_LIMIT) throw new PinLimitError()
      } else if (row.pinned_at === null) {
        throw new Unchanged()
      }
      const updated = await trx.updateTable('chat.message')
        .set(type === 'message_pinned' ? { pinned_at: sql<Date>`timezone('utc', now())`, pinned_by: input.userId.toLowerCase() } : { pinned_at: null, pinned_by: null })
        .where('id', '=', row.id).returningAll().executeTakeFirstOrThrow()
      await trx.insertInto('chat.message_event')
        .values({ conversation_id: row.conversation_id, seq, message_id: row.id, kind: type === 'message_pinned' ? MessageEventKind.pinned : MessageEventKind.unpinned })
        .execute()
      return { type, seq, message: toMessage(updated) }
    })
  } catch (error) {
    if (!(error instanceof Unchanged)) throw error
    const row = await db.selectFrom('chat.message').selectAll().where('id', '=', input.messageId).executeTakeFirstOrThrow()
    return { type, seq: null, message: toMessage(row) }
  }
}

/** Pins a message for every member. Refused on a deleted message (409) and beyond PIN_LIMIT (409). */
export async function pinMessage (chat: Chat, input: PinInput): Promise<PinChange> {
  return changePin(chat.db, input, 'message_pinned')
}

export async function unpinMessage (chat: Chat, input: PinInput): Promise<PinChange> {
  return changePin(chat.db, input, 'message_unpinned')
}

/** The conversation's pinned messages, most recently pinned first (at most PIN_LIMIT). */
export async function listPins (db: Executor, conversationId: string): Promise<Message[]> {
  const rows = await db.selectFrom('chat.message').selectAll()
    .where('conversation_id', '=', conversationId).where('pinned_at', 'is not', null)
    .orderBy('pinned_at', 'desc').orderBy('seq', 'desc').limit(PIN_LIMIT)
    .execute()
  return rows.map(toMessage)
}
