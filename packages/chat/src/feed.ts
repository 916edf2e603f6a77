// The conversation feed: the one place where a change that a conversation's members must see
// becomes a frame on the conversation's bus topic, whichever path made it (a websocket frame, a
// REST route, a job, presence). Every api process with sockets in the conversation hands the
// frame to them (services/api/src/plugins/app/rooms.ts).
//
// Publishing is best effort, by one policy: the change is committed before it is published, so a
// publish that fails (the broker away) is logged and does not fail the caller. Members still get
// every change of the seq order: a room fills a gap from the database, and a reconnecting client
// replays from its last seq. Frames outside the seq order (read, typing, presence) are lost then.
import { conversationTopic, type Bus } from '@chatty/bus'
import type { MessageChange } from './edits.ts'
import { messageEventFrame, messageFrame, readFrame, typingFrame, type ReadBroadcast } from './frames.ts'
import type { Message } from './model.ts'

export interface FeedLog {
  warn (details: { err: unknown, conversation: string }, message: string): void
}

export interface ConversationFeed {
  /** A stored message (a send, a reply, a membership change's system message). */
  message (message: Message): Promise<void>
  /** An edit or delete; nothing is published when it changed nothing (seq null). */
  change (change: MessageChange): Promise<void>
  /** A member's new read position. */
  read (position: ReadBroadcast): Promise<void>
  /** A member is typing. */
  typing (conversationId: string, userId: string): Promise<void>
  /** Any other frame outside the seq order (presence), already serialised. */
  event (conversationId: string, frame: string, what: string): Promise<void>
}

export function createFeed (bus: Pick<Bus, 'publish'>, log: FeedLog): ConversationFeed {
  const publish = async (conversationId: string, frame: string, what: string): Promise<void> => {
    try {
      await bus.publish(conversationTopic(conversationId), frame)
    } catch (err) {
      log.warn({ err, conversation: conversationId }, `cannot publish ${what}`)
    }
  }
  return {
    message: (message) => publish(message.conversation_id, messageFrame(message), 'a stored message'),
    async change (change) {
      if (change.seq === null) return
      await publish(change.message.conversation_id, messageEventFrame(change.type, change.seq, change.message), 'an edit or delete')
    },
    read: (position) => publish(position.conversation_id, readFrame(position), 'a read position'),
    typing: (conversationId, userId) => publish(conversationId, typingFrame(conversationId, userId), 'a typing indicator'),
    event: publish
  }
}
