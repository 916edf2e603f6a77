// The wire types of chatty's API (docs/design.md section 4, docs/protocol.md): the message object,
// the REST bodies, and the websocket frames in both directions. snake_case, as on the wire. The
// message object, message content and conversation summary are @chatty/protocol's.
import type { ConversationSummary, Message, MessageContent } from '@chatty/protocol'

export type { ConversationSummary, Message, MessageContent }

export type Ref = string | number

// --- client -> server ----------------------------------------------------------------------------

export interface JoinFrame { type: 'join', conversation_id: string, since_seq?: number, ref?: Ref }
export interface LeaveFrame { type: 'leave', conversation_id: string, ref?: Ref }
export interface SendFrame extends MessageContent { type: 'message', conversation_id: string, ref?: Ref }
/** Marks message_id and everything before it read (the position never moves back). */
export interface ReadFrame { type: 'read', conversation_id: string, message_id: string, ref?: Ref }
/** Records that this device received message_id (a delivered receipt). */
export interface DeliveredFrame { type: 'delivered', conversation_id: string, message_id: string, ref?: Ref }
/** The user is typing (not stored; the server passes on at most one per 2.5 s per socket and conversation). */
export interface TypingFrame { type: 'typing', conversation_id: string, ref?: Ref }
/** Replaces the body of one of the user's own messages. */
export interface EditFrame { type: 'edit', conversation_id: string, message_id: string, body: string | null, ref?: Ref }
/** Deletes one of the user's own messages (it stays in history as a tombstone). */
export interface DeleteFrame { type: 'delete', conversation_id: string, message_id: string, ref?: Ref }
/** Adds / removes the user's reaction (1 to 32 characters, no whitespace: an emoji or a :shortcode:). */
export interface ReactFrame { type: 'react', conversation_id: string, message_id: string, reaction: string, ref?: Ref }
export interface UnreactFrame { type: 'unreact', conversation_id: string, message_id: string, reaction: string, ref?: Ref }
/** Pins / unpins a message for every member (at most 50 pinned per conversation). */
export interface PinFrame { type: 'pin', conversation_id: string, message_id: string, ref?: Ref }
export interface UnpinFrame { type: 'unpin', conversation_id: string, message_id: string, ref?: Ref }
export type ClientFrame = JoinFrame | LeaveFrame | SendFrame | ReadFrame | DeliveredFrame | TypingFrame | EditFrame | DeleteFrame |
  ReactFrame | UnreactFrame | PinFrame | UnpinFrame

// --- server -> client ----------------------------------------------------------------------------

export interface ConnectedFrame { type: 'connected' }
export interface JoinedFrame {
  type: 'joined'
  conversation_id: string
  /** Every message after this seq follows this frame on this socket. */
  last_seq: number
  ref?: Ref
}
export interface LeftFrame { type: 'left', conversation_id: string, ref?: Ref }
export interface MessageFrame { type: 'message', conversation_id: string, message: Message }
/** The acknowledgement of a message frame that carried a ref. */
export interface SentFrame { type: 'sent', conversation_id: string, message: Message, ref: Ref }
/**
 * A message was edited (`message_updated`: the new body, edited_at) or deleted
 * (`message_deleted`: the tombstone). `seq` is the event's own, in the conversation's order with
 * the messages; `message` keeps its seq. Replayed after since_seq like messages.
 */
export interface MessageUpdatedFrame { type: 'message_updated', conversation_id: string, seq: number, message: Message }
export interface MessageDeletedFrame { type: 'message_deleted', conversation_id: string, seq: number, message: Message }
/** The acknowledgement of an edit / delete frame; seq null when nothing changed. */
export interface EditedFrame { type: 'edited', conversation_id: string, seq: number | null, message: Message, ref: Ref }
export interface DeletedFrame { type: 'deleted', conversation_id: string, seq: number | null, message: Message, ref: Ref }
/**
 * A member reacted to a message, or removed their reaction. `seq` is the event's own, in the
 * conversation's order with the messages; `reactions` is the message's aggregate after it.
 */
export interface ReactionEventFrame {
  type: 'reaction_added' | 'reaction_removed'
  conversation_id: string
  seq: number
  message_id: string
  user_id: string
  reaction: string
  reactions: Record<string, number>
}
/**
 * A message was pinned or unpinned (by a member, or because it was deleted: `message_deleted`
 * comes first). `seq` is the event's own; `message` shows pinned_at / pinned_by as they now are.
 */
export interface MessagePinnedFrame { type: 'message_pinned' | 'message_unpinned', conversation_id: string, seq: number, message: Message }
/** The acknowledgement of a react / unreact frame; seq null when nothing changed. */
export interface ReactedFrame extends ReactionChange {
  type: 'reacted' | 'unreacted'
  ref: Ref
}
/** The acknowledgement of a pin / unpin frame; seq null when nothing changed. */
export interface PinnedFrame { type: 'pinned' | 'unpinned', conversation_id: string, seq: number | null, message: Message, ref: Ref }
/**
 * A member's read position moved (user_id has read every message up to seq). Broadcast to the
 * conversation's joined sockets; the reply to a read frame also carries unread_count and its ref.
 */
export interface ReadEventFrame {
  type: 'read'
  conversation_id: string
  user_id: string
  message_id: string
  seq: number
  unread_count?: number
  ref?: Ref
}
/** The reply to a delivered frame that carried a ref. */
export interface DeliveredEventFrame { type: 'delivered', conversation_id: string, user_id: string, message_id: string, seq: number, ref: Ref }
export type ErrorCode = 'bad_request' | 'forbidden' | 'rate_limited' | 'internal_error'
export interface ErrorFrame {
  type: 'error'
  code: ErrorCode
  error: string
  /** rate_limited only: when the socket may send its next frame. */
  retry_after_ms?: number
  ref?: Ref
}
/** The user was removed from (or left) the conversation: the socket is no longer joined to it. */
export interface RemovedFrame { type: 'removed', conversation_id: string, user_id: string }
/**
 * A participant of a joined conversation came online (first socket) or went offline (last one
 * closed); sent with `presence: true`, once per change however many conversations are shared.
 */
export interface PresenceFrame { type: 'presence', conversation_id: string, user_id: string, online: boolean, at: string }
/** Another member is typing in a conversation this socket joined. */
export interface TypingEventFrame { type: 'typing', conversation_id: string, user_id: string }
export type ServerFrame = ConnectedFrame | JoinedFrame | LeftFrame | MessageFrame | SentFrame | ErrorFrame | ReadEventFrame | DeliveredEventFrame | PresenceFrame |
  TypingEventFrame | RemovedFrame | MessageUpdatedFrame | MessageDeletedFrame | EditedFrame | DeletedFrame | ReactionEventFrame | MessagePinnedFrame |
  ReactedFrame | PinnedFrame

/** Close codes the server uses besides the standard ones (docs/protocol.md). */
export const CloseCode = {
  normal: 1000,
  /** The server is shutting down: reconnect (to another process). */
  goingAway: 1001,
  /** No close frame: the connection dropped, or the server terminated a socket that missed a pong. */
  abnormal: 1006,
  /** A frame was larger than the server's WS_MAX_PAYLOAD. */
  messageTooBig: 1009,
  internalError: 1011,
  /** The client read too slowly: its send buffer went over WS_MAX_BUFFERED_BYTES. */
  slowConsumer: 1013,
  /** The token the socket was opened with expired (AUTH_MODE=jwt). */
  tokenExpired: 4001
} as const

// --- REST ----------------------------------------------------------------------------------------

export interface ChatCreated { id: string, created_at: string, participant_ids: string[] }
export interface SendAccepted { task_id: string, message_id: string }
export interface Presence { user_id: string, online: boolean }
export interface MessagePage { messages: Message[], limit: number, offset: number, count: number }
/** The answer to an edit or delete over REST; seq null when nothing changed. */
export interface MessageChange { conversation_id: string, seq: number | null, message: Message }
/** A member's read position after POST /chat/:chat_id/read. */
export interface ReadPosition { conversation_id: string, user_id: string, message_id: string, seq: number, unread_count: number }

export interface ConversationPage { conversations: ConversationSummary[], next_cursor: string | null }
/** A user's mentions, newest first. */
export interface MentionPage { messages: Message[], next_cursor: string | null }
export type Role = 'member' | 'owner'
export interface Participant { user_id: string, role: Role }
/** The answer to adding or removing members. */
export interface MembershipChange {
  conversation_id: string
  /** Every member after the change. */
  participant_ids: string[]
  /** The system message (msg_type 3) recording the change; null when nothing changed. */
  message: Message | null
}

/** The answer to a reaction over REST; seq null when nothing changed. */
export interface ReactionChange {
  conversation_id: string
  seq: number | null
  message_id: string
  user_id: string
  reaction: string
  reactions: Record<string, number>
}
export interface ReactionPage { reactions: Array<{ user_id: string, reaction: string, created_at: string }>, next_cursor: string | null }
/** The answer to a pin or unpin over REST; seq null when nothing changed. */
export interface PinChange { conversation_id: string, seq: number | null, message: Message }
export interface SearchPage { results: Array<{ message: Message }>, next_cursor: string | null }
