// One chat websocket: liveness, limits, and the frames of one user's device. Frames about one
// conversation are handled one after another, in the order they arrived (a client's messages are
// stored in the order it sent them); frames about different conversations run concurrently.
import type { Socket } from 'node:net'
import type { Kysely } from 'kysely'
import type { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import { ChatError, MessageNotFoundError, messagesSince, NotParticipantError, requireParticipant, sendMessage, type Message } from '@chatty/chat'
import type { Database } from '@chatty/db'
import { lastSeq, type RoomEvent, type RoomMember, type Rooms } from '../plugins/app/rooms.ts'
import {
  CONNECTED_FRAME, errorFrame, joinedFrame, leftFrame, messageFrame, parseClientFrame, rateLimitedFrame, removedFrame, sentFrame,
  type ClientFrame, type JoinFrame, type LeaveFrame, type Ref, type SendFrame
} from './frames.ts'
import { TokenBucket } from './token-bucket.ts'
import { handleDelivered, handleRead, handleTyping, type SignalContext } from './signals.ts'

/** Close codes this server sends (docs/protocol.md). 1009 (frame too large) is sent by ws itself. */
export const CLOSE_CODES = {
  /** The socket's send buffer went over WS_MAX_BUFFERED_BYTES: it does not read fast enough. */
  slowConsumer: 1013,
  /** The bearer token the socket was opened with expired (AUTH_MODE=jwt). */
  tokenExpired: 4001
} as const

/** Conversations one socket may have joined at once. */
export const MAX_JOINED = 1000
/** Client frames in progress on one socket before the server stops reading from it. */
const MAX_IN_FLIGHT = 256
/** Messages read per database round trip when replaying after since_seq. */
const REPLAY_PAGE = 200
/** Node's timers hold at most this many milliseconds. */
const MAX_TIMER_MS = 2 ** 31 - 1

export interface SessionOptions {
  userId: string
  db: Kysely<Database>
  rooms: Rooms
  log: FastifyBaseLogger
  pingIntervalMs: number
  maxBufferedBytes: number
  /** When the socket's token expires (seconds since the epoch); null when it does not. */
  expiresAt: number | null
  /** Client frames per second and burst (WS_RATE_LIMIT_*); null: no limit. */
  rateLimit: { perSecond: number, burst: number } | null
  /** The client asked for `presence` frames (?presence=true). */
  presence?: boolean
  /** Called once per message this socket stored (not for a repeat found by its dedupe_key). */
  onStored?: (message: Message) => void
}

/** A socket's membership of one conversation: what it has been sent, and its backlog while it catches up. */
interface Membership extends RoomMember {
  conversationId: string
  /** The seq of the last message sent on the socket. */
  lastSent: number
  /** Live messages that arrived while joining (and replaying); null once live. */
  backlog: Array<{ seq: number, frame: Buffer }> | null
  backlogBytes: number
}

/** Starts serving a freshly opened socket. Every listener is attached before anything awaits. */
export function startSession (socket: WebSocket, options: SessionOptions): void {
  const { userId, db, rooms, log, maxBufferedBytes } = options
  const joined = new Map<string, Membership>()
  /** Tail of each conversation's frame chain. */
  const chains = new Map<string, Promise<void>>()
  let inFlight = 0
  let closed = false
  const bucket = options.rateLimit === null ? undefined : new TokenBucket(options.rateLimit.perSecond, options.rateLimit.burst)
  let limitedLogged = false
  /** The TCP socket under the websocket, corked while frames of one turn gather. */
  const wire = (socket as unknown as { _socket?: Socket })._socket
  let corked = false
  /** Settles once the last frame sent patiently has been written out (or could not be). */
  let lastWritten: Promise<void> = Promise.resolve()
  /** The online state last reported per user: one change arrives once per joined conversation. */
  const presenceSent = new Map<string, boolean>()

  socket.on('message', onFrame)
  socket.on('close', onClose)
  let alive = true
  socket.on('pong', () => { alive = true })
  // A socket that did not answer the previous ping by the next one is gone (or hopelessly behind).
  const heartbeat = setInterval(() => {
    if (!alive) {
      log.info({ user: userId }, 'websocket missed a pong; terminating')
      socket.terminate()
      return
    }
    alive = false
    socket.ping()
  }, options.pingIntervalMs)
  let expiry: NodeJS.Timeout | undefined
  if (options.expiresAt !== null) armExpiry(options.expiresAt * 1000)

  send(CONNECTED_FRAME)
  const signals: SignalContext = { userId, db, rooms, log, send, typingSentAt: new Map() }

  function armExpiry (at: number): void {
    const wait = at - Date.now()
    if (wait <= 0) {
      socket.close(CLOSE_CODES.tokenExpired, 'token expired')
      return
    }
    expiry = setTimeout(() => armExpiry(at), Math.min(wait, MAX_TIMER_MS))
  }

  function onClose (): void {
    closed = true
    clearInterval(heartbeat)
    clearTimeout(expiry)
    leaveAll()
  }

  function leaveAll (): void {
    for (const membership of joined.values()) rooms.leave(membership.conversationId, membership)
    joined.clear()
  }

  /**
   * Sends unless the socket's buffer is over the limit: then the socket is cut instead (close
   * 1013), so one slow reader neither grows the server's memory nor holds back its rooms.
   */
  function send (data: string | Buffer): boolean {
    if (closed || socket.readyState !== socket.OPEN) return false
    const buffered = socket.bufferedAmount
    if (buffered > 0 && buffered + (typeof data === 'string' ? Buffer.byteLength(data) : data.length) > maxBufferedBytes) {
      cutSlowConsumer()
      return false
    }
    // Frames sent in one turn of the event loop (a burst of broadcasts off the bus) leave in one
    // write: the TCP socket stays corked until the turn ends.
    if (!corked && wire !== undefined) {
      corked = true
      wire.cork()
      process.nextTick(uncork)
    }
    socket.send(data, { binary: false })
    return true
  }

  function uncork (): void {
    corked = false
    wire!.uncork()
  }

  /** Sends as soon as the buffer has room: for a replay, which the client asked for. */
  async function sendPatiently (data: string): Promise<boolean> {
    if (socket.bufferedAmount > 0 && socket.bufferedAmount + Buffer.byteLength(data) > maxBufferedBytes) await lastWritten
    if (closed || socket.readyState !== socket.OPEN) return false
    // ws calls back once the frame is written to the TCP socket, or with an error when it closes.
    lastWritten = new Promise((resolve) => socket.send(data, { binary: false }, () => resolve()))
    return true
  }

  function cutSlowConsumer (): void {
    if (closed) return
    closed = true
    log.warn({ user: userId, buffered: socket.bufferedAmount }, 'websocket send buffer over the limit; closing a slow consumer')
    leaveAll()
    socket.close(CLOSE_CODES.slowConsumer, 'slow consumer')
  }

  /** A `presence` frame: only when asked for, never about the socket's own user, each change once. */
  function sharePresence (event: RoomEvent, data: Buffer): void {
    const user = event.user_id
    if (options.presence !== true || user === undefined || event.online === undefined) return
    if (user === userId.toLowerCase() || presenceSent.get(user) === event.online) return
    presenceSent.set(user, event.online)
    send(data)
  }

  function onFrame (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    const parsed = parseClientFrame(data, isBinary)
    // Every frame counts, invalid ones too; one over the limit is answered and otherwise ignored.
    const wait = bucket?.take() ?? 0
    if (wait > 0) {
      if (!limitedLogged) {
        limitedLogged = true
        log.info({ user: userId }, 'websocket over its frame rate limit')
      }
      send(rateLimitedFrame(wait, 'frame' in parsed ? parsed.frame.ref : parsed.ref))
      return
    }
    if (!('frame' in parsed)) {
      send(errorFrame('bad_request', parsed.error, parsed.ref))
      return
    }
    const { frame } = parsed
    const key = frame.conversation_id.toLowerCase()
    inFlight++
    if (inFlight === MAX_IN_FLIGHT) socket.pause()
    const next = (chains.get(key) ?? Promise.resolve())
      .then(() => handle(frame, key))
      .catch((error: unknown) => fail(error, frame.ref))
      .finally(() => {
        inFlight--
        if (chains.get(key) === next) chains.delete(key)
        if (inFlight === MAX_IN_FLIGHT / 2 && socket.isPaused) socket.resume()
      })
    chains.set(key, next)
  }

  function handle (frame: ClientFrame, conversationId: string): Promise<void> | void {
    switch (frame.type) {
      case 'join': return join(frame, conversationId)
      case 'leave': return leave(frame, conversationId)
      case 'message': return sendOne(frame, conversationId)
      case 'read': return handleRead(signals, frame, conversationId)
      case 'delivered': return handleDelivered(signals, frame, conversationId)
      case 'typing': return handleTyping(signals, frame, conversationId)
    }
  }

  function fail (error: unknown, ref: Ref | undefined): void {
    if (error instanceof ChatError) {
      // The websocket speaks three codes (DESIGN.md section 4): a conversation that does not
      // exist is one the user cannot use; a message that is not in it is a wrong request.
      send(errorFrame(error.code === 'bad_request' || error instanceof MessageNotFoundError ? 'bad_request' : 'forbidden', error.message, ref))
      return
    }
    log.error({ err: error, user: userId }, 'websocket frame failed')
    send(errorFrame('internal_error', 'internal error', ref))
  }

  async function join (frame: JoinFrame, conversationId: string): Promise<void> {
    const current = joined.get(conversationId)
    if (current !== undefined) {
      // Already joined on this socket: nothing to replay, the stream never stopped.
      send(joinedFrame(conversationId, Math.max(current.lastSent, rooms.position(conversationId) ?? 0), frame.ref))
      return
    }
    if (joined.size >= MAX_JOINED) {
      throw new ChatError('bad_request', `a socket may join at most ${MAX_JOINED} conversations`)
    }
    await requireParticipant(db, conversationId, userId)
    if (closed) return
    const membership: Membership = {
      conversationId,
      lastSent: 0,
      backlog: [],
      backlogBytes: 0,
      userId,
      removed () {
        // The room already let go; the socket is told after the system message that recorded it.
        if (joined.get(conversationId) === membership) joined.delete(conversationId)
        send(removedFrame(conversationId, userId))
      },
      deliver (seq, data) {
        if (seq <= membership.lastSent) return
        if (membership.backlog === null) {
          membership.lastSent = seq
          send(data)
          return
        }
        membership.backlog.push({ seq, frame: data })
        membership.backlogBytes += data.length
        if (membership.backlogBytes > maxBufferedBytes) cutSlowConsumer()
      },
      notify (event, data) {
        if (event.type === 'presence') return sharePresence(event, data)
        // Events carry no seq: they go out as they come, also while joining.
        if (event.type === 'typing' && event.user_id === userId.toLowerCase()) return
        send(data)
      }
    }
    joined.set(conversationId, membership)
    try {
      // Live messages reach the backlog from here on; the replay below reads the database after
      // this, so together they miss nothing, and seq drops what both carry.
      await rooms.join(conversationId, membership)
    } catch (error) {
      joined.delete(conversationId)
      throw error
    }
    if (frame.since_seq !== undefined) {
      // A since_seq from the future (another database, a bug) would hide the next messages.
      membership.lastSent = Math.min(frame.since_seq, await lastSeq(db, conversationId))
      await replay(membership)
    }
    if (closed) return
    // Removed from the conversation while joining: the room let go of the membership.
    if (joined.get(conversationId) !== membership) throw new NotParticipantError()
    const backlog = membership.backlog ?? []
    membership.backlog = null
    membership.backlogBytes = 0
    for (const { seq, frame: data } of backlog) membership.deliver(seq, data)
    send(joinedFrame(conversationId, Math.max(membership.lastSent, rooms.position(conversationId) ?? 0), frame.ref))
  }

  async function replay (membership: Membership): Promise<void> {
    for (;;) {
      const page = await messagesSince(db, membership.conversationId, membership.lastSent, REPLAY_PAGE)
      for (const message of page) {
        if (!await sendPatiently(messageFrame(message))) return
        membership.lastSent = message.seq
      }
      if (page.length < REPLAY_PAGE) return
    }
  }

  function leave (frame: LeaveFrame, conversationId: string): void {
    const membership = joined.get(conversationId)
    if (membership !== undefined) {
      joined.delete(conversationId)
      rooms.leave(conversationId, membership)
    }
    send(leftFrame(conversationId, frame.ref))
  }

  async function sendOne (frame: SendFrame, conversationId: string): Promise<void> {
    // Stored even when the socket closed meanwhile: the frame arrived, and a retry with the same
    // dedupe_key finds it.
    const { message, created } = await sendMessage(db, {
      conversationId,
      senderId: userId,
      body: frame.body,
      msg_type: frame.msg_type,
      attachment_url: frame.attachment_url,
      attachment_meta: frame.attachment_meta,
      dedupe_key: frame.dedupe_key
    })
    try {
      await rooms.publish(message)
    } catch (err) {
      // Stored is what counts: members get it with the next message (rooms fill gaps) or on resume.
      log.warn({ err, conversation: conversationId }, 'cannot publish a stored message')
    }
    if (created) options.onStored?.(message)
    // go-chatty echoes a message to its sender; a socket in the room gets the broadcast instead.
    if (!joined.has(conversationId)) send(messageFrame(message))
    if (frame.ref !== undefined) send(sentFrame(message, frame.ref))
  }
}
