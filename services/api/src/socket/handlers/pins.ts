// Pins from a socket (the `pin` and `unpin` frames): the stored change goes out through the
// conversation feed as an entry of the conversation's seq order, so every joined socket on every
// api process gets `message_pinned` / `message_unpinned` in order with the messages. A repeat
// (seq null) publishes nothing.
import { changeEntries, pinMessage, unpinMessage, type PinChange } from '@chatty/chat'
import { entryFrame, pinAckFrame, type FrameOf } from '../frames.ts'
import type { FrameContext } from '../context.ts'

export async function handlePin (session: FrameContext, frame: FrameOf<'pin'>, conversationId: string): Promise<void> {
  await answer(session, frame, conversationId, await pinMessage(session.chat, { conversationId, messageId: frame.message_id, userId: session.userId }))
}

export async function handleUnpin (session: FrameContext, frame: FrameOf<'unpin'>, conversationId: string): Promise<void> {
  await answer(session, frame, conversationId, await unpinMessage(session.chat, { conversationId, messageId: frame.message_id, userId: session.userId }))
}

async function answer (session: FrameContext, frame: FrameOf<'pin'> | FrameOf<'unpin'>, conversationId: string, change: PinChange): Promise<void> {
  await session.feed.change(change)
  if (session.joined?.has(conversationId) !== true) for (const entry of changeEntries(change)) session.send(entryFrame(entry))
  if (frame.ref !== undefined) session.send(pinAckFrame(change, frame.ref))
}
