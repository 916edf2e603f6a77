// The frames of a socket that are not messages: read positions and delivered receipts (stored),
// and typing indicators (not stored). What other members see of them goes out through the
// conversation feed, so it reaches their sockets on every api process.
import { markDelivered, markRead, requireParticipant, type Chat, type ConversationFeed } from '@chatty/chat'
import { deliveredFrame, readFrame, type FrameOf } from '../frames.ts'

/** What a signal frame sees of its socket (the session implements it). */
export interface SignalContext {
  userId: string
  chat: Chat
  feed: ConversationFeed
  send (data: string): void
  /** When this socket last passed on a typing frame, per conversation (ms since the epoch). */
  typingSentAt: Map<string, number>
}

/**
 * Typing frames passed on per socket and conversation: at most one per this period. Clients send
 * one every couple of seconds while the user types and show "typing" for a few seconds after one.
 */
export const TYPING_THROTTLE_MS = 2500

export async function handleRead (context: SignalContext, frame: FrameOf<'read'>, conversationId: string): Promise<void> {
  const position = await markRead(context.chat, conversationId, context.userId, frame.message_id)
  if (position.moved) await context.feed.read(position)
  context.send(readFrame(position, { unread_count: position.unread_count, ref: frame.ref }))
}

export async function handleDelivered (context: SignalContext, frame: FrameOf<'delivered'>, conversationId: string): Promise<void> {
  const delivered = await markDelivered(context.chat, conversationId, context.userId, frame.message_id)
  if (frame.ref !== undefined) context.send(deliveredFrame(conversationId, context.userId.toLowerCase(), delivered, frame.ref))
}

/** Passes a typing indicator on to the other members' joined sockets; a frame within the throttle is dropped. */
export async function handleTyping (context: SignalContext, _frame: FrameOf<'typing'>, conversationId: string): Promise<void> {
  const now = Date.now()
  const last = context.typingSentAt.get(conversationId)
  if (last !== undefined && now - last < TYPING_THROTTLE_MS) return
  await requireParticipant(context.chat, conversationId, context.userId)
  context.typingSentAt.set(conversationId, now)
  if (context.typingSentAt.size > 256) {
    for (const [id, at] of context.typingSentAt) if (now - at >= TYPING_THROTTLE_MS) context.typingSentAt.delete(id)
  }
  await context.feed.typing(conversationId, context.userId.toLowerCase())
}
