// Edits and deletes of one's own messages (the `edit` and `delete` frames): the stored change
// goes out through the conversation feed as an entry of the conversation's seq order, so every
// joined socket on every api process gets it in order with the messages.
import { changeEntries, deleteMessage, editMessage, type MessageChange } from '@chatty/chat'
import { changedFrame, entryFrame, type FrameOf } from '../frames.ts'
import type { FrameContext } from '../context.ts'

export async function handleEdit (session: FrameContext, frame: FrameOf<'edit'>, conversationId: string): Promise<void> {
  const change = await editMessage(session.chat, { conversationId, messageId: frame.message_id, senderId: session.userId, body: frame.body })
  await answerChange(session, frame, conversationId, change)
}

export async function handleDelete (session: FrameContext, frame: FrameOf<'delete'>, conversationId: string): Promise<void> {
  const change = await deleteMessage(session.chat, { conversationId, messageId: frame.message_id, senderId: session.userId })
  await answerChange(session, frame, conversationId, change)
}

async function answerChange (session: FrameContext, frame: FrameOf<'edit'> | FrameOf<'delete'>, conversationId: string, change: MessageChange): Promise<void> {
  await session.feed.change(change)
  // As with messages: a socket in the room gets the broadcast, one outside it the frame itself.
  if (session.joined?.has(conversationId) !== true) for (const entry of changeEntries(change)) session.send(entryFrame(entry))
  if (frame.ref !== undefined) session.send(changedFrame(change, frame.ref))
}
