// Kysely types for the `chat` schema (go-chatty's tables plus our additions, see db/migrations).
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

/** json column: written as a string or value, read back as parsed JSON. */
type Json = ColumnType<unknown, string | null, string | null>

export interface ConversationTable {
  id: Generated<string>
  created_at: Generated<Date>
  tenant_id: string | null
  last_seq: Generated<number>
  /** Bumped with every membership or block change among its members (migration 000009). */
  member_version: Generated<number>
}

export interface ParticipantTable {
  conversation_id: string
  user_id: string
  role: Generated<number>
  last_read_msg: string | null
  muted_until: Date | null
}

export interface MessageTable {
  id: Generated<string>
  conversation_id: string
  sender_id: string
  seq: number
  created_at: Generated<Date>
  body: string | null
  msg_type: Generated<number>
  attachment_url: string | null
  attachment_meta: Json | null
  dedupe_key: string | null
  /** When the sender last edited the body (migration 000007). */
  edited_at: Generated<Date | null>
  /** When the sender deleted it: the row stays as a tombstone without content. */
  deleted_at: Generated<Date | null>
  /** The message this one replies to, in the same conversation and itself top-level (migration 000010). */
  parent_id: Generated<string | null>
  /** Replies to this message; bumped in the transaction that stores each reply. */
  reply_count: Generated<number>
  /** The created_at of the latest reply; null without replies. */
  last_reply_at: Generated<Date | null>
  mentioned_user_ids: Generated<string[]>
  /** reaction -> count, kept with the row in each reaction's transaction (migration 000011). */
  reactions: ColumnType<Record<string, number>, never, string>
  /** When a member pinned it, and who; null unless pinned (migration 000011). */
  pinned_at: Generated<Date | null>
  pinned_by: Generated<string | null>
}

/** A member mentioned by a message, by user, for unread mention counts and a user's mentions (migration 000010). */
export interface MessageMentionTable {
  user_id: string
  conversation_id: string
  seq: number
  message_id: string
  created_at: Date
}

/** One user's reaction to a message (migration 000011). */
export interface ReactionTable {
  message_id: string
  user_id: string
  reaction: string
  created_at: Generated<Date>
}

/** An edit or delete of a message, with a seq of its own in the conversation (migration 000007). */
export interface MessageEventTable {
  conversation_id: string
  seq: number
  message_id: string
  /** 1 updated, 2 deleted, 3 reaction added, 4 reaction removed, 5 pinned, 6 unpinned. */
  kind: number
  at: Generated<Date>
  /** Reaction events: who reacted, and with what (migration 000011). */
  user_id: string | null
  reaction: string | null
}

export interface ReceiptTable {
  message_id: string
  user_id: string
  status: number
  at: Date
}

export interface BlockTable {
  blocker_id: string
  blocked_id: string
  at: Date
}

/** One api process's heartbeat (presence, migration 000006). */
export interface PresenceProcessTable {
  process_id: string
  expires_at: Date
}

/** A user with at least one open websocket on a process. */
export interface PresenceTable {
  user_id: string
  process_id: string
}

export interface Database {
  'chat.conversation': ConversationTable
  'chat.participant': ParticipantTable
  'chat.message': MessageTable
  'chat.message_event': MessageEventTable
  'chat.message_mention': MessageMentionTable
  'chat.reaction': ReactionTable
  'chat.receipt': ReceiptTable
  'chat.block': BlockTable
  'chat.presence_process': PresenceProcessTable
  'chat.presence': PresenceTable
}

export type Conversation = Selectable<ConversationTable>
export type NewConversation = Insertable<ConversationTable>
export type Participant = Selectable<ParticipantTable>
export type NewParticipant = Insertable<ParticipantTable>
export type MessageRow = Selectable<MessageTable>
export type NewMessageRow = Insertable<MessageTable>
export type MessageUpdate = Updateable<MessageTable>
export type MessageEventRow = Selectable<MessageEventTable>
export type Receipt = Selectable<ReceiptTable>
export type Block = Selectable<BlockTable>
