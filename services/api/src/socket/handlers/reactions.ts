// Reactions from a socket (the `react` and `unreact` frames): the stored change goes out through
// the conversation feed as an entry of the conversation's seq order, so every joined socket on
// every api process gets `reaction_added` / `reaction_removed` in order with the messages. A
// repeat (seq null) publishes nothing.
import { addReaction, changeEntries, removeReaction, type ReactionChange } from '@chatty/chat'
import { entryFrame, reactionAckFrame, type FrameOf } from '../frames.ts'
import type { FrameContext } from '../context.ts'

export async function handleReact (session: FrameContext, frame: FrameOf<'react'>, conversationId: string): Promise<void> {
  const change = await addReaction(session.chat, { conversationId, messageId: frame.message_id, userId: session.userId, reaction: frame.reaction })
  await answer(session, frame, conversationId, change)
}

export async function handleUnreact (session: FrameContext, frame: FrameOf<'unreact'>, conversationId: string): Promise<void> {
  const change = await removeReaction(session.chat, { conversationId, messageId: frame.message_id, userId: session.userId, reaction: frame.reaction })
  await answer(session, frame, conversationId, change)
}

async function answer (session: FrameContext, frame: FrameOf<'react'> | FrameOf<'unreact'>, conversationId: string, change: ReactionChange): Promise<void> {
  await session.feed.change(change)
  // As with messages and edits: a socket in the room gets the broadcast, one outside it the event itself.
  if (session.joined?.has(conversationId) !== true) for (const entry of changeEntries(change)) session.send(entryFrame(entry))
  if (frame.ref !== undefined) session.send(reactionAckFrame(change, frame.ref))
}
