// Reactions from a socket (the `react` and `unreact` frames) or over REST: the stored change is
// published on the bus as an entry of the conversation's seq order, so every joined socket on
// every api process gets `reaction_added` / `reaction_removed` in order with the messages. A
// repeat (seq null) publishes nothing.
import type { FastifyBaseLogger } from 'fastify'
import { addReaction, removeReaction, type ConversationEntry, type ReactionChange } from '@chatty/chat'
import type { Rooms } from '../../plugins/app/rooms.ts'
import { entryFrame, reactionAckFrame, type ReactFrame, type UnreactFrame } from '../frames.ts'
import type { FrameContext } from '../context.ts'

function entryOf (change: ReactionChange & { seq: number }): ConversationEntry {
  return { type: change.type, seq: change.seq, message: change.message, reaction: { user_id: change.user_id, reaction: change.reaction } }
}

/** Best effort, as live delivery is: a room that misses the frame reads it from the database at the next seq. */
export async function publishReaction (rooms: Rooms, log: FastifyBaseLogger, change: ReactionChange): Promise<void> {
  if (change.seq === null) return
  try {
    await rooms.publishEntry(entryOf({ ...change, seq: change.seq }))
  } catch (err) {
    log.warn({ err, conversation: change.message.conversation_id }, 'cannot publish a reaction')
  }
}

export async function handleReact (session: FrameContext, frame: ReactFrame, conversationId: string): Promise<void> {
  const change = await addReaction(session.db, { conversationId, messageId: frame.message_id, userId: session.userId, reaction: frame.reaction })
  await answer(session, frame, conversationId, change)
}

export async function handleUnreact (session: FrameContext, frame: UnreactFrame, conversationId: string): Promise<void> {
  const change = await removeReaction(session.db, { conversationId, messageId: frame.message_id, userId: session.userId, reaction: frame.reaction })
  await answer(session, frame, conversationId, change)
}

async function answer (session: FrameContext, frame: ReactFrame | UnreactFrame, conversationId: string, change: ReactionChange): Promise<void> {
  await publishReaction(session.rooms, session.log, change)
  // As with messages and edits: a socket in the room gets the broadcast, one outside it the event itself.
  if (change.seq !== null && session.joined?.has(conversationId) !== true) session.send(entryFrame(entryOf({ ...change, seq: change.seq })))
  if (frame.ref !== undefined) session.send(reactionAckFrame(change, frame.ref))
}
