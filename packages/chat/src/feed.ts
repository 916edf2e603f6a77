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
import type { ConversationEntry, MessageChange } from './edits.ts'
import { entryFrame, messageFrame, readFrame, typingFrame, type ReadBroadcast } from './frames.ts'
import type { Message } from './model.ts'
import type { PinChange } from './pins.ts'
import type { ReactionChange } from './reactions.ts'

/** A stored change of a message that takes seqs of its own. */
export type StoredChange = MessageChange | ReactionChange | PinChange

/**
 * The entries of the seq order a change made, in seq order; none when it changed nothing. What
 * the feed publishes, and what a handler sends to a socket that is not in the room.
 */
export function changeEntries (change: StoredChange): ConversationEntry[] {
  if (change.seq === null) return []
  const entry: ConversationEntry = { type: change.type, seq: change.seq, message: change.message }
  if ('reaction' in change) entry.reaction = { user_id: change.user_id, reaction: change.reaction }
  const entries = [entry]
  // A delete of a pinned message also unpinned it, at the next seq.
  if ('unpinnedSeq' in change && change.unpinnedSeq !== undefined) entries.push({ type: 'message_unpinned', seq: change.unpinnedSeq, message: change.message })
  return entries
}

export interface FeedLog {
  warn (details: { err: unknown, conversation: string }, message: string): void
}

export interface ConversationFeed {
  /** A stored message (a send, a reply, a membership change's system message). */
  message (message: Message): Promise<void>
  /**
   * An edit, delete, reaction or pin: its entries of the seq order (a delete that unpinned the
   * message has two). Nothing is published when it changed nothing (seq null).
   */
  change (change: StoredChange): Promise<void>
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
      for (const entry of changeEntries(change)) await publish(entry.message.conversation_id, entryFrame(entry), `a ${entry.type} event`)
    },
    read: (position) => publish(position.conversation_id, readFrame(position), 'a read position'),
    typing: (conversationId, userId) => publish(conversationId, typingFrame(conversationId, userId), 'a typing indicator'),
    event: publish
  }
}
