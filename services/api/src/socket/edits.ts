// Edits and deletes of one's own messages, from a socket or over REST: the stored change is
// published on the bus as an entry of the conversation's seq order, so every joined socket on
// every api process gets it in order with the messages.
import type { FastifyBaseLogger } from 'fastify'
import type { MessageChange } from '@chatty/chat'
import type { Rooms } from '../plugins/app/rooms.ts'

/**
 * Best effort, as live delivery is: the change is stored, and a room that misses the frame reads
 * it from the database when the next seq arrives, as a resuming client does.
 */
export async function publishChange (rooms: Rooms, log: FastifyBaseLogger, change: MessageChange): Promise<void> {
  if (change.seq === null) return
  try {
    await rooms.publishEntry({ type: change.type, seq: change.seq, message: change.message })
  } catch (err) {
    log.warn({ err, conversation: change.message.conversation_id }, 'cannot publish an edit or delete')
  }
}
