// A `message` frame: the message is stored (once per dedupe_key), published through the
// conversation feed to its room on every api process, and acknowledged to its sender.
import { sendMessage } from '@chatty/chat'
import { messageFrame, sentFrame, type FrameOf } from '../frames.ts'
import type { FrameContext } from '../context.ts'

export async function handleMessage (session: FrameContext, frame: FrameOf<'message'>, conversationId: string): Promise<void> {
  // Stored even when the socket closed meanwhile: the frame arrived, and a retry with the same
  // dedupe_key finds it.
  const { message, created } = await sendMessage(session.chat, {
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
  await session.feed.message(message)
  if (created) session.context.onStored?.(message)
  // go-chatty echoes a message to its sender; a socket in the room gets the broadcast instead.
  if (session.joined?.has(conversationId) !== true) session.send(messageFrame(message))
  if (frame.ref !== undefined) session.send(sentFrame(message, frame.ref))
}
