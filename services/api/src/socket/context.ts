// What a websocket session is made of, apart from its code: what every socket of the process
// shares (SessionContext), what one socket is opened with (SessionOptions), and what a frame
// handler sees of its socket (FrameContext). The session implements FrameContext, so the handlers
// (handlers/*.ts) never import the session back.
import type { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import type { Chat, ConversationFeed, Message } from '@chatty/chat'
import type { ByteBudget } from './budget.ts'
import type { Rooms } from '../plugins/app/rooms.ts'
import type { Dialect } from '../dialect.ts'
import type { Membership, MemberSocket } from './membership.ts'

/** What every socket of the process shares: made once by the route, never copied per socket. */
export interface SessionContext {
  chat: Chat
  /** Where the changes a socket makes are published to the members (packages/chat/src/feed.ts). */
  feed: ConversationFeed
  rooms: Rooms
  log: FastifyBaseLogger
  /**
   * The bytes one socket may hold queued (WS_MAX_BUFFERED_BYTES): its send buffer, the live
   * entries held back while it joins, and the replay page it is reading.
   */
  maxBufferedBytes: number
  /** Conversations one socket may have joined, or be joining, at once (WS_MAX_JOINS_PER_SOCKET). */
  maxJoined: number
  /** Replay pages read and not yet written out, over every socket of the process (WS_MAX_PROCESS_REPLAY_BYTES). */
  replayBudget: ByteBudget
  /** How long a replay waits for its last page to be written out, or for room in replayBudget (WS_REPLAY_DRAIN_TIMEOUT_MS). */
  drainTimeoutMs: number
  /** Client frames per second and burst (WS_RATE_LIMIT_*); null: no limit. */
  rateLimit: { perSecond: number, burst: number } | null
  /** Called once per message a socket stored (not for a repeat found by its dedupe_key). */
  onStored?: (message: Message) => void
  /** Called once when a socket of the user has closed. */
  onClose?: (userId: string) => void
}

/** What is particular to one socket. */
export interface SessionOptions {
  userId: string
  /** The upgrade request's id: the socket's log lines carry it as `reqId`, as the request's did. */
  requestId: string
  /** When the socket's token expires (seconds since the epoch); null when it does not. */
  expiresAt: number | null
  /** The client asked for `presence` frames (?presence=true). */
  presence: boolean
  /** The field names the socket speaks, chosen at the upgrade (?user_id= or ?userId=). */
  dialect: Dialect
}

/** What a frame handler sees of its socket: the session's state and its transport. */
export interface FrameContext extends MemberSocket {
  readonly socket: WebSocket
  readonly context: SessionContext
  readonly chat: Chat
  readonly feed: ConversationFeed
  readonly rooms: Rooms
  readonly log: FastifyBaseLogger
  readonly closed: boolean
  /** Conversations joined on this socket; made at the first join. */
  joined: Map<string, Membership> | undefined
  /** Joins past the cap check whose membership query is in progress: each holds a slot. */
  joining: number
  /** The estimated size of the replay page being read from the database. */
  reading: number
  /** Bytes this socket's replays hold in the process's replay budget. */
  replayHeld: number
  /** Settles once the replay in progress ends: one socket's replays run one after another. */
  replayTail: Promise<void> | undefined
}
