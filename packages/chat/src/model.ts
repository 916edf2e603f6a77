// The message object and the shapes a store takes and answers: types only, shared by the writers
// (messages.ts, group-commit.ts) and the composition root (context.ts).
import type { MessageContent } from './rules.ts'

/** The message object on the wire: snake_case, nulls present, ISO 8601 UTC timestamps. */
export interface Message {
  id: string
  conversation_id: string
  sender_id: string
  seq: number
  created_at: string
  body: string | null
  msg_type: number
  attachment_url: string | null
  attachment_meta: unknown
  dedupe_key: string | null
  /** When the sender last edited the body; null if never. */
  edited_at: string | null
  /** When the sender deleted it: a tombstone, its content gone; null while it stands. */
  deleted_at: string | null
  /** The message this one replies to; null for a top-level message. */
  parent_id: string | null
  /** Replies to this message (0 for a reply). */
  reply_count: number
  /** The latest reply's created_at; null without replies. */
  last_reply_at: string | null
  /** Members the sender mentioned; [] when none. */
  mentioned_user_ids: string[]
  /** Reaction -> count. */
  reactions: Record<string, number>
  pinned_at: string | null
  pinned_by: string | null
}

export interface StoreMessageInput {
  /** Chosen up front when the send was accepted, so a retried job finds its own row. */
  id?: string
  conversationId: string
  senderId: string
  content: MessageContent
}

export interface Stored {
  message: Message
  /** False when an earlier send with the same id or dedupe key already stored it. */
  created: boolean
}
