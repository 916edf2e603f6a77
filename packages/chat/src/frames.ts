// The live frames of a conversation's seq order: a stored message, and an edit or delete of one.
// One shape whichever path produced them (websocket or HTTP in the api, HTTP sends through the
// jobs service, a replay from the database), serialised once and sent to every receiver as is.
import type { ConversationEntry, MessageEventType, PinEventType, ReactionEventType } from './edits.ts'
import type { Message } from './model.ts'

export function messageFrame (message: Message): string {
  return JSON.stringify({ type: 'message', conversation_id: message.conversation_id, message })
}

/** `message_updated` / `message_deleted` / `message_pinned` / `message_unpinned`: seq is the event's own; the message keeps its seq. */
export function messageEventFrame (type: MessageEventType | PinEventType, seq: number, message: Message): string {
  return JSON.stringify({ type, conversation_id: message.conversation_id, seq, message })
}

/**
 * `reaction_added` / `reaction_removed`: who reacted with what, and `reactions`, the message's
 * aggregate (reaction -> count) as it now is.
 */
export function reactionEventFrame (type: ReactionEventType, seq: number, message: Message, reaction: { user_id: string, reaction: string }): string {
  return JSON.stringify({ type, conversation_id: message.conversation_id, seq, message_id: message.id, user_id: reaction.user_id, reaction: reaction.reaction, reactions: message.reactions })
}

export function entryFrame (entry: ConversationEntry): string {
  if (entry.type === 'message') return messageFrame(entry.message)
  if (entry.type === 'reaction_added' || entry.type === 'reaction_removed') {
    if (entry.reaction === undefined) throw new Error(`${entry.type} entry at seq ${entry.seq} without its user and reaction`)
    return reactionEventFrame(entry.type, entry.seq, entry.message, entry.reaction)
  }
  return messageEventFrame(entry.type, entry.seq, entry.message)
}

/** The frame types of the seq order that carry their event's seq at the top level. */
const EVENT_FRAME_TYPES = new Set<unknown>(['message_updated', 'message_deleted', 'reaction_added', 'reaction_removed', 'message_pinned', 'message_unpinned'])

/** Whether a frame type is an entry of the seq order (a message, or an event about one). */
export function isEntryFrameType (type: unknown): boolean {
  return type === 'message' || EVENT_FRAME_TYPES.has(type)
}

/**
 * The seq a conversation frame takes in the seq order, or undefined for frames outside it (read,
 * typing, presence...). Frames as parsed JSON.
 */
export function frameSeq (frame: { type?: unknown, seq?: unknown, message?: { seq?: unknown } }): number | undefined {
  const seq = frame.type === 'message' ? frame.message?.seq : EVENT_FRAME_TYPES.has(frame.type) ? frame.seq : undefined
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
