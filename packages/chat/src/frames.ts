// The live frames of a conversation's seq order: a stored message, and an edit or delete of one.
// One shape whichever path produced them (websocket or HTTP in the api, HTTP sends through the
// jobs service, a replay from the database), serialised once and sent to every receiver as is.
import type { ConversationEntry, MessageEventType } from './edits.ts'
import type { Message } from './model.ts'

export function messageFrame (message: Message): string {
  return JSON.stringify({ type: 'message', conversation_id: message.conversation_id, message })
}

/** `message_updated` / `message_deleted`: seq is the event's own; the message keeps its seq. */
export function messageEventFrame (type: MessageEventType, seq: number, message: Message): string {
  return JSON.stringify({ type, conversation_id: message.conversation_id, seq, message })
}

export function entryFrame (entry: ConversationEntry): string {
  return entry.type === 'message' ? messageFrame(entry.message) : messageEventFrame(entry.type, entry.seq, entry.message)
}

/**
 * The seq a conversation frame takes in the seq order, or undefined for frames outside it (read,
 * typing, presence...). Frames as parsed JSON.
 */
export function frameSeq (frame: { type?: unknown, seq?: unknown, message?: { seq?: unknown } }): number | undefined {
  const seq = frame.type === 'message' ? frame.message?.seq : frame.type === 'message_updated' || frame.type === 'message_deleted' ? frame.seq : undefined
  return Number.isSafeInteger(seq) && (seq as number) > 0 ? seq as number : undefined
}

/** A member's read position as the other members see it. */
export interface ReadBroadcast {
  conversation_id: string
  user_id: string
  message_id: string
  seq: number
}

export function readFrame (position: ReadBroadcast): string {
  return JSON.stringify({ type: 'read', conversation_id: position.conversation_id, user_id: position.user_id, message_id: position.message_id, seq: position.seq })
}

export function typingFrame (conversationId: string, userId: string): string {
  return JSON.stringify({ type: 'typing', conversation_id: conversationId, user_id: userId })
}
