// Edits and deletes of one's own messages, from a socket (the `edit` and `delete` frames) or over
// REST: the stored change is published on the bus as an entry of the conversation's seq order, so
// every joined socket on every api process gets it in order with the messages.
import type { FastifyBaseLogger } from 'fastify'
import { deleteMessage, editMessage, type MessageChange } from '@chatty/chat'
import type { Rooms } from '../../plugins/app/rooms.ts'
import { changedFrame, entryFrame, type DeleteFrame, type EditFrame } from '../frames.ts'
import type { FrameContext } from '../context.ts'

/**
 * Best effort, as live delivery is: the change is stored, and a room that misses the frame reads
 * it from the database when the next seq arrives, as a resuming client does.
 */
export async function publishChange (rooms: Rooms, log: FastifyBaseLogger, change: MessageChange): Promise<void> {
  if (change.seq === null) return
  try {
    await rooms.publishEntry({ type: change.type, seq: change.seq, message: change.message })
    // A deleted pinned message was also unpinned, at the next seq.
    if (change.unpinnedSeq !== undefined) await rooms.publishEntry({ type: 'message_unpinned', seq: change.unpinnedSeq, message: change.message })
  } catch (err) {
    log.warn({ err, conversation: change.message.conversation_id }, 'cannot publish an edit or delete')
  }
}

export async function handleEdit (session: FrameContext, frame: EditFrame, conversationId: string): Promise<void> {
  const change = await editMessage(session.db, { conversationId, messageId: frame.message_id, senderId: session.userId, body: frame.body })
  await answerChange(session, frame, conversationId, change)
}

export async function handleDelete (session: FrameContext, frame: DeleteFrame, conversationId: string): Promise<void> {
  const change = await deleteMessage(session.db, { conversationId, messageId: frame.message_id, senderId: session.userId })
  await answerChange(session, frame, conversationId, change)
}

async function answerChange (session: FrameContext, frame: EditFrame | DeleteFrame, conversationId: string, change: MessageChange): Promise<void> {
  await publishChange(session.rooms, session.log, change)
  // As with messages: a socket in the room gets the broadcast, one outside it the frame itself.
  if (change.seq !== null && session.joined?.has(conversationId) !== true) {
    session.send(entryFrame({ type: change.type, seq: change.seq, message: change.message }))
    if (change.unpinnedSeq !== undefined) session.send(entryFrame({ type: 'message_unpinned', seq: change.unpinnedSeq, message: change.message }))
  }
  if (frame.ref !== undefined) session.send(changedFrame(change, frame.ref))
}
