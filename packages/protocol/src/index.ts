// The wire objects of chatty's API that both sides hold (docs/design.md sections 4 and 8,
// docs/protocol.md): the message object, what a client writes into one, and a conversation of a
// user's list. snake_case, as on the wire. The chat domain (@chatty/chat) produces them and the
// client (@chatty/client) reads them: one definition, types only.

/** A stored message. Nulls are present, never omitted; created_at is ISO 8601 UTC. */
export interface Message {
  id: string
  conversation_id: string
  sender_id: string
  /**
   * Per-conversation order, starting at 1. Edits and deletes take seqs of their own, so message
   * seqs may skip; messages and edit/delete events together are gap-free.
   */
  seq: number
  created_at: string
  body: string | null
  /** 0 text, 1 image, 2 file, 3 system. */
  msg_type: number
  attachment_url: string | null
  attachment_meta: unknown
  dedupe_key: string | null
  /** When the sender last edited the body; null if never. */
  edited_at: string | null
  /** When the sender deleted it: a tombstone (body, attachment_url, attachment_meta null). */
  deleted_at: string | null
  /** The message this one replies to; null for a top-level message. */
  parent_id: string | null
  /** Replies to this message (0 for a reply). */
  reply_count: number
  /** When the latest reply was sent; null without replies. */
  last_reply_at: string | null
  /** Members the sender mentioned; [] when none. */
  mentioned_user_ids: string[]
  /** reaction -> how many members reacted so; `{}` when none. */
  reactions: Record<string, number>
  /** When a member pinned it, and who; null unless pinned. */
  pinned_at: string | null
  pinned_by: string | null
}

/** What a client may write into a message. */
export interface MessageContent {
  body?: string | null
  msg_type?: number | null
  attachment_url?: string | null
  attachment_meta?: unknown
  /** A retried send with the same key stores one message (1 to 64 characters). */
  dedupe_key?: string | null
  /** Makes it a reply: a top-level message of the same conversation. */
  parent_id?: string | null
  /** Members it mentions: at most 50, each once. */
  mentioned_user_ids?: string[] | null
}

/** One conversation of a user's list (GET /users/:user_id/conversations). */
export interface ConversationSummary {
  id: string
  created_at: string
  tenant_id: string | null
  /** The last message's created_at, or the conversation's when it has none: the list's order. */
  last_activity_at: string
  last_message: Message | null
  last_seq: number
  /** The seq of the user's read position (0: nothing read). */
  last_read_seq: number
  /** Messages of others after the read position, counted up to 1000. */
  unread_count: number
  /** Messages mentioning the user after the read position, counted up to 1000. */
  unread_mention_count: number
  muted_until: string | null
  participant_count: number
  /** The first 20 member ids. */
  participant_ids: string[]
}
