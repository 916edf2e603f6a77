// A `message` frame: the message is stored (once per dedupe_key), published through the
// conversation feed to its room on every api process, and acknowledged to its sender. In two
// steps, so that a socket's next messages to the conversation reach the store while this one is
// written (session.ts): accept (the checks, then the hand-over to the store) and finish (the
// publish and the answers, in the order the frames arrived).
import { acceptMessage, type Stored } from '@chatty/chat'
import { messageFrame, sentFrame, type FrameOf } from '../frames.ts'
import type { FrameContext } from '../context.ts'

export async function handleMessage (session: FrameContext, frame: FrameOf<'message'>, conversationId: string): Promise<void> {
  const { stored } = await acceptMessageFrame(session, frame, conversationId)
  await finishMessage(session, frame, conversationId, await stored)
}

/** Checks the send and hands it to the store; `stored` settles when it is stored. */
export function acceptMessageFrame (session: FrameContext, frame: FrameOf<'message'>, conversationId: string): Promise<{ stored: Promise<Stored> }> {
  // Stored even when the socket closed meanwhile: the frame arrived, and a retry with the same
  // dedupe_key finds it.
  return acceptMessage(session.chat, {
    conversationId,
    senderId: session.userId,
    body: frame.body,
    msg_type: frame.msg_type,
    attachment_url: frame.attachment_url,
    attachment_meta: frame.attachment_meta,
    dedupe_key: frame.dedupe_key,
    parent_id: frame.parent_id,
    mentioned_user_ids: frame.mentioned_user_ids
  })
}

/** Publishes a stored message to its room and answers its sender. */
export async function finishMessage (session: FrameContext, frame: FrameOf<'message'>, conversationId: string, { message, created }: Stored): Promise<void> {
  await session.feed.message(message)
  if (created) session.context.onStored?.(message)
  // go-chatty echoes a message to its sender; a socket in the room gets the broadcast instead.
  if (session.joined?.has(conversationId) !== true) session.send(messageFrame(message))
  if (frame.ref !== undefined) session.send(sentFrame(message, frame.ref))
}

/**
 * Whether a message frame may reach the store before the socket's earlier frames about its
 * conversation are finished: only with a writer that keeps a sender's order (MessageWriter).
 * (A reply needs no more: its parent is a message the client was answered for, so stored.)
 */
export function canPipeline (session: FrameContext): boolean {
  return session.chat.writer !== null
}
