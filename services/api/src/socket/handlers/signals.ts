// The frames of a socket that are not messages: read positions and delivered receipts (stored),
// and typing indicators (not stored). What other members see of them travels as room events
// (rooms.publishEvent), so it reaches their sockets on every api process.
import type { Kysely } from 'kysely'
import type { FastifyBaseLogger } from 'fastify'
import { markDelivered, markRead, requireParticipant, type ReadPosition } from '@chatty/chat'
import type { Database } from '@chatty/db'
import type { Rooms } from '../../plugins/app/rooms.ts'
import { deliveredFrame, readFrame, typingFrame, type DeliveredFrame, type ReadFrame, type TypingFrame } from '../frames.ts'

/** What a signal frame sees of its socket (the session implements it). */
export interface SignalContext {
  userId: string
  db: Kysely<Database>
  rooms: Rooms
  log: FastifyBaseLogger
  send (data: string): void
  /** When this socket last passed on a typing frame, per conversation (ms since the epoch). */
  typingSentAt: Map<string, number>
}

/**
 * Typing frames passed on per socket and conversation: at most one per this period. Clients send
 * one every couple of seconds while the user types and show "typing" for a few seconds after one.
 */
export const TYPING_THROTTLE_MS = 2500

/**
 * Tells the conversation's live members that a read position moved. Best effort, as live
 * delivery is: the position is stored, and the conversation list reports it.
 */
export async function publishRead (rooms: Rooms, log: FastifyBaseLogger, position: ReadPosition): Promise<void> {
  if (!position.moved) return
  try {
    await rooms.publishEvent(position.conversation_id, readFrame(position))
  } catch (err) {
    log.warn({ err, conversation: position.conversation_id }, 'cannot publish a read position')
  }
}

export async function handleRead (context: SignalContext, frame: ReadFrame, conversationId: string): Promise<void> {
  const position = await markRead(context.db, conversationId, context.userId, frame.message_id)
  await publishRead(context.rooms, context.log, position)
  context.send(readFrame(position, { unread_count: position.unread_count, ref: frame.ref }))
}

export async function handleDelivered (context: SignalContext, frame: DeliveredFrame, conversationId: string): Promise<void> {
  const delivered = await markDelivered(context.db, conversationId, context.userId, frame.message_id)
  if (frame.ref !== undefined) context.send(deliveredFrame(conversationId, context.userId.toLowerCase(), delivered, frame.ref))
}

/** Passes a typing indicator on to the other members' joined sockets; a frame within the throttle is dropped. */
export async function handleTyping (context: SignalContext, _frame: TypingFrame, conversationId: string): Promise<void> {
  const now = Date.now()
  const last = context.typingSentAt.get(conversationId)
  if (last !== undefined && now - last < TYPING_THROTTLE_MS) return
  await requireParticipant(context.db, conversationId, context.userId)
  context.typingSentAt.set(conversationId, now)
  if (context.typingSentAt.size > 256) {
    for (const [id, at] of context.typingSentAt) if (now - at >= TYPING_THROTTLE_MS) context.typingSentAt.delete(id)
  }
  try {
    await context.rooms.publishEvent(conversationId, typingFrame(conversationId, context.userId.toLowerCase()))
  } catch (err) {
    context.log.warn({ err, conversation: conversationId }, 'cannot publish a typing indicator')
  }
}
