// The frames of a socket that are not messages: read positions and delivered receipts (stored),
// and typing indicators (not stored). What other members see of them travels as room events
// (rooms.publishEvent), so it reaches their sockets on every api process.
import type { Kysely } from 'kysely'
import type { FastifyBaseLogger } from 'fastify'
import { markDelivered, markRead, type ReadPosition } from '@chatty/chat'
import type { Database } from '@chatty/db'
import type { Rooms } from '../plugins/app/rooms.ts'
import { deliveredFrame, readFrame, type DeliveredFrame, type ReadFrame } from './frames.ts'

export interface SignalContext {
  userId: string
  db: Kysely<Database>
  rooms: Rooms
  log: FastifyBaseLogger
  send (data: string): void
}

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
