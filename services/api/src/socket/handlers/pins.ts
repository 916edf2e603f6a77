// Pins from a socket (the `pin` and `unpin` frames) or over REST: the stored change is published
// on the bus as an entry of the conversation's seq order, so every joined socket on every api
// process gets `message_pinned` / `message_unpinned` in order with the messages. A repeat (seq
// null) publishes nothing.
import type { FastifyBaseLogger } from 'fastify'
import { pinMessage, unpinMessage, type PinChange } from '@chatty/chat'
import type { Rooms } from '../../plugins/app/rooms.ts'
import { entryFrame, pinAckFrame, type PinFrame, type UnpinFrame } from '../frames.ts'
import type { FrameContext } from '../context.ts'

/** Best effort, as live delivery is: a room that misses the frame reads it from the database at the next seq. */
export async function publishPin (rooms: Rooms, log: FastifyBaseLogger, change: PinChange): Promise<void> {
  if (change.seq === null) return
  try {
    await rooms.publishEntry({ type: change.type, seq: change.seq, message: change.message })
  } catch (err) {
    log.warn({ err, conversation: change.message.conversation_id }, 'cannot publish a pin')
  }
}

export async function handlePin (session: FrameContext, frame: PinFrame, conversationId: string): Promise<void> {
  await answer(session, frame, conversationId, await pinMessage(session.db, { conversationId, messageId: frame.message_id, userId: session.userId }))
}

export async function handleUnpin (session: FrameContext, frame: UnpinFrame, conversationId: string): Promise<void> {
  await answer(session, frame, conversationId, await unpinMessage(session.db, { conversationId, messageId: frame.message_id, userId: session.userId }))
}

async function answer (session: FrameContext, frame: PinFrame | UnpinFrame, conversationId: string, change: PinChange): Promise<void> {
  await publishPin(session.rooms, session.log, change)
  if (change.seq !== null && session.joined?.has(conversationId) !== true) session.send(entryFrame({ type: change.type, seq: change.seq, message: change.message }))
  if (frame.ref !== undefined) session.send(pinAckFrame(change, frame.ref))
}
