// One chat websocket: liveness, limits, and the frames of one user's device. Frames about one
// conversation are handled one after another, in the order they arrived (a client's messages are
// stored in the order it sent them); frames about different conversations run concurrently.
//
// A process holds thousands of mostly idle sockets, so one costs little (docs/performance.md): a
// session is one object whose methods live on its class, what every socket shares (database,
// rooms, limits, logger) is one object of the route's, maps and the rate-limit bucket are made
// when first needed, and one timer pings every socket of the process (startHeartbeat).
import type { Socket } from 'node:net'
import type { Kysely } from 'kysely'
import type { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import { ChatError, deleteMessage, editMessage, entriesSince, MessageNotFoundError, NotParticipantError, requireParticipant, sendMessage, type ConversationEntry, type Message, type MessageChange } from '@chatty/chat'
import type { Database } from '@chatty/db'
import { CLOSE_INTERNAL_ERROR } from '../plugins/external/websocket.ts'
import { lastSeq, type RoomEvent, type RoomMember, type Rooms } from '../plugins/app/rooms.ts'
import {
  camelCaseFrame, changedFrame, CONNECTED_FRAME, entryFrame, errorFrame, joinedFrame, leftFrame, messageFrame, parseClientFrame, rateLimitedFrame, removedFrame, sentFrame,
  type ClientFrame, type DeleteFrame, type Dialect, type EditFrame, type JoinFrame, type LeaveFrame, type Ref, type SendFrame
} from './frames.ts'
import { publishChange } from './edits.ts'
import type { ByteBudget } from './budget.ts'
import { TokenBucket } from './token-bucket.ts'
import { handleDelivered, handleRead, handleTyping, type SignalContext } from './signals.ts'

/** Close codes this server sends (docs/protocol.md). 1009 (frame too large) is sent by ws itself. */
export const CLOSE_CODES = {
  /**
   * Try again later: the socket went over its budget (WS_MAX_BUFFERED_BYTES) because it does not
   * read fast enough, or its replay found no room in the process's (WS_MAX_PROCESS_REPLAY_BYTES).
   */
  slowConsumer: 1013,
  /** The bearer token the socket was opened with expired (AUTH_MODE=jwt). */
  tokenExpired: 4001
} as const

/** Client frames in progress on one socket before the server stops reading from it. */
const MAX_IN_FLIGHT = 256
/** Entries (messages, edits, deletes) read per database round trip when replaying after since_seq. */
const REPLAY_PAGE = 200
/** The most bytes of frames a replay reads at once (a quarter of the socket's budget when less). */
const REPLAY_PAGE_BYTES = 256 * 1024
/** Node's timers hold at most this many milliseconds. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** What every socket of the process shares: made once by the route, never copied per socket. */
export interface SessionContext {
  db: Kysely<Database>
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

/** The session of each open socket, for the listeners and the heartbeat, which are shared. */
const sessions = new WeakMap<WebSocket, Session>()

/** Starts serving a freshly opened socket. Every listener is attached before anything awaits. */
export function startSession (socket: WebSocket, context: SessionContext, options: SessionOptions): void {
  const session = new Session(socket, context, options)
  sessions.set(socket, session)
  socket.on('message', onMessage)
  socket.on('close', onClose)
  socket.on('error', onError)
  socket.on('pong', onPong)
  if (options.expiresAt !== null) session.armExpiry(options.expiresAt * 1000)
  session.send(CONNECTED_FRAME)
}

/**
 * Pings the sockets every interval: one that did not answer the previous ping by the next is gone
 * (or hopelessly behind) and is terminated. One timer for the process, not one per socket.
 * Returns the function that stops it.
 */
export function startHeartbeat (sockets: Iterable<WebSocket>, intervalMs: number): () => void {
  const timer = setInterval(() => {
    for (const socket of sockets) sessions.get(socket)?.beat()
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}

function onMessage (this: WebSocket, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
  sessions.get(this)?.onFrame(data, isBinary)
}

function onClose (this: WebSocket): void {
  sessions.get(this)?.onClose()
}

/**
 * Protocol errors (ws has already closed the socket with the right code) and resets; anything
 * else gets 1011 rather than a silent terminate.
 */
function onError (this: WebSocket, error: Error): void {
  sessions.get(this)?.log.debug({ err: error }, 'websocket error')
  if (this.readyState === this.OPEN) this.close(CLOSE_INTERNAL_ERROR, 'internal error')
}

function onPong (this: WebSocket): void {
  const session = sessions.get(this)
  if (session !== undefined) session.alive = true
}

function armExpiryAgain (session: Session, at: number): void {
  session.armExpiry(at)
}

/** True when `promise` settles within `ms`, false when it does not. */
async function settlesWithin (promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, ms, false) })
  try {
    return await Promise.race([promise.then(() => true), late])
  } finally {
    clearTimeout(timer)
  }
}

function uncork (session: Session): void {
  session.corked = false
  session.wire()?.uncork()
}

/** One socket's state. It also serves as the context of the signal frames (signals.ts). */
class Session implements SignalContext {
  readonly socket: WebSocket
  readonly context: SessionContext
  readonly userId: string
  readonly requestId: string
  readonly presence: boolean
  readonly dialect: Dialect
  /** Conversations joined on this socket; made at the first join. */
  joined: Map<string, Membership> | undefined = undefined
  /** Tail of each conversation's frame chain; only while frames are in progress. */
  chains: Map<string, Promise<void>> | undefined = undefined
  inFlight = 0
  /** Joins past the cap check whose membership query is in progress: each holds a slot. */
  joining = 0
  /** Live entries held back, over the conversations this socket is joining. */
  backlogBytes = 0
  /** The estimated size of the replay page being read from the database. */
  reading = 0
  /** Bytes this socket's replays hold in the process's replay budget. */
  replayHeld = 0
  /** Settles once the replay in progress ends: one socket's replays run one after another. */
  replayTail: Promise<void> | undefined = undefined
  closed = false
  /** Answered the last ping. */
  alive = true
  /** Made at the first frame (a bucket starts full, so that is the same as at the upgrade). */
  bucket: TokenBucket | undefined = undefined
  limitedLogged = false
  /** The TCP socket is corked while frames of one turn gather. */
  corked = false
  /** The online state last reported per user: one change arrives once per joined conversation. */
  presenceSent: Map<string, boolean> | undefined = undefined
  typingSent: Map<string, number> | undefined = undefined
  expiry: NodeJS.Timeout | undefined = undefined

  constructor (socket: WebSocket, context: SessionContext, options: SessionOptions) {
    this.socket = socket
    this.context = context
    this.userId = options.userId
    this.requestId = options.requestId
    this.presence = options.presence
    this.dialect = options.dialect
  }

  get db (): Kysely<Database> { return this.context.db }
  get rooms (): Rooms { return this.context.rooms }

  /** A logger for this socket's lines; made when a line is written, which is rare. */
  get log (): FastifyBaseLogger {
    return this.context.log.child({ reqId: this.requestId })
  }

  get typingSentAt (): Map<string, number> {
    return this.typingSent ??= new Map()
  }

  /** The TCP socket under the websocket. */
  wire (): Socket | undefined {
    return (this.socket as unknown as { _socket?: Socket })._socket
  }

  beat (): void {
    if (!this.alive) {
      this.log.info({ user: this.userId }, 'websocket missed a pong; terminating')
      this.socket.terminate()
      return
    }
    this.alive = false
    this.socket.ping()
  }

  armExpiry (at: number): void {
    const wait = at - Date.now()
    if (wait <= 0) {
      this.socket.close(CLOSE_CODES.tokenExpired, 'token expired')
      return
    }
    this.expiry = setTimeout(armExpiryAgain, Math.min(wait, MAX_TIMER_MS), this, at)
  }

  onClose (): void {
    this.closed = true
    clearTimeout(this.expiry)
    // The socket's buffers are gone with it.
    this.releaseReplay(this.replayHeld)
    this.leaveAll()
    this.context.onClose?.(this.userId)
  }

  leaveAll (): void {
    if (this.joined === undefined) return
    for (const membership of this.joined.values()) this.rooms.leave(membership.conversationId, membership)
    this.joined.clear()
  }

  /** What the socket holds queued, counted against WS_MAX_BUFFERED_BYTES. */
  queued (): number {
    return this.socket.bufferedAmount + this.backlogBytes + this.reading
  }

  /** Sends a frame made for this socket (in snake_case), in the socket's dialect. */
  send (data: string | Buffer): boolean {
    return this.write(this.dialect === 'camelCase' ? camelCaseFrame(data) : data)
  }

  /**
   * Sends a frame already in the socket's dialect (a room's, shared by its sockets) unless the
   * socket is over its budget: then the socket is cut instead (close 1013), so one slow reader
   * neither grows the server's memory nor holds back its rooms.
   */
  write (data: string | Buffer): boolean {
    const { socket } = this
    if (this.closed || socket.readyState !== socket.OPEN) return false
    const buffered = socket.bufferedAmount
    if (buffered > 0 && buffered + this.backlogBytes + this.reading + (typeof data === 'string' ? Buffer.byteLength(data) : data.length) > this.context.maxBufferedBytes) {
      this.cutSlowConsumer()
      return false
    }
    // Frames sent in one turn of the event loop (a burst of broadcasts off the bus) leave in one
    // write: the TCP socket stays corked until the turn ends.
    if (!this.corked) {
      const wire = this.wire()
      if (wire !== undefined) {
        this.corked = true
        wire.cork()
        process.nextTick(uncork, this)
      }
    }
    socket.send(data, { binary: false })
    return true
  }

  /** Cuts the socket with 1013; `why` is for the log line. */
  cutSlowConsumer (why = 'over its budget', reason = 'slow consumer'): void {
    if (this.closed) return
    this.closed = true
    this.log.warn({ user: this.userId, buffered: this.socket.bufferedAmount, backlog: this.backlogBytes, replay: this.replayHeld }, `websocket ${why}; closing a slow consumer`)
    // Given back now, not when the closing handshake ends (up to 5 s for a client that does not
    // read): a cut socket takes nothing more, and the replays waiting for room go on.
    this.releaseReplay(this.replayHeld)
    this.leaveAll()
    this.socket.close(CLOSE_CODES.slowConsumer, reason)
  }

  /** Gives replay bytes back to the process (none once the socket closed and gave back all). */
  releaseReplay (bytes: number): void {
    const held = Math.min(bytes, this.replayHeld)
    this.replayHeld -= held
    this.context.replayBudget.give(held)
  }

  /** A `presence` frame: only when asked for, never about the socket's own user, each change once. */
  sharePresence (event: RoomEvent, data: Buffer): void {
    const user = event.user_id
    if (!this.presence || user === undefined || event.online === undefined) return
    if (user === this.userId.toLowerCase()) return
    const sent = this.presenceSent ??= new Map()
    if (sent.get(user) === event.online) return
    sent.set(user, event.online)
    this.write(data)
  }

  onFrame (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    const parsed = parseClientFrame(data, isBinary, this.dialect)
    // Every frame counts, invalid ones too; one over the limit is answered and otherwise ignored.
    const { rateLimit } = this.context
    if (rateLimit !== null) this.bucket ??= new TokenBucket(rateLimit.perSecond, rateLimit.burst)
    const wait = this.bucket?.take() ?? 0
    if (wait > 0) {
      if (!this.limitedLogged) {
        this.limitedLogged = true
        this.log.info({ user: this.userId }, 'websocket over its frame rate limit')
      }
      this.send(rateLimitedFrame(wait, 'frame' in parsed ? parsed.frame.ref : parsed.ref))
      return
    }
    if (!('frame' in parsed)) {
      this.send(errorFrame(parsed.code, parsed.error, parsed.ref))
      return
    }
    const { frame } = parsed
    const key = frame.conversation_id.toLowerCase()
    this.inFlight++
    if (this.inFlight === MAX_IN_FLIGHT) this.socket.pause()
    const chains = this.chains ??= new Map()
    const next: Promise<void> = (chains.get(key) ?? Promise.resolve())
      .then(() => this.handle(frame, key))
      .catch((error: unknown) => this.fail(error, frame.ref))
      .finally(() => {
        this.inFlight--
        // A map is only dropped once empty, so the entry is in the current one.
        const current = this.chains
        if (current?.get(key) === next) {
          current.delete(key)
          if (current.size === 0) this.chains = undefined
        }
        if (this.inFlight === MAX_IN_FLIGHT / 2 && this.socket.isPaused) this.socket.resume()
      })
    chains.set(key, next)
  }

  handle (frame: ClientFrame, conversationId: string): Promise<void> | void {
    switch (frame.type) {
      case 'join': return this.join(frame, conversationId)
      case 'leave': return this.leave(frame, conversationId)
      case 'message': return this.sendOne(frame, conversationId)
      case 'read': return handleRead(this, frame, conversationId)
      case 'delivered': return handleDelivered(this, frame, conversationId)
      case 'typing': return handleTyping(this, frame, conversationId)
      case 'edit': return this.changeOne(frame, conversationId)
      case 'delete': return this.changeOne(frame, conversationId)
    }
  }

  fail (error: unknown, ref: Ref | undefined): void {
    if (error instanceof ChatError) {
      // The websocket speaks three codes (docs/design.md section 4): a conversation that does not
      // exist is one the user cannot use; a message that is not in it, or that was deleted, is
      // a wrong request.
      const wrong = error.code === 'bad_request' || error.code === 'conflict' || error instanceof MessageNotFoundError
      this.send(errorFrame(wrong ? 'bad_request' : 'forbidden', error.message, ref))
      return
    }
    this.log.error({ err: error, user: this.userId }, 'websocket frame failed')
    this.send(errorFrame('internal_error', 'internal error', ref))
  }

  async join (frame: JoinFrame, conversationId: string): Promise<void> {
    const { rooms } = this
    const current = this.joined?.get(conversationId)
    if (current !== undefined) {
      // Already joined on this socket: nothing to replay, the stream never stopped.
      this.send(joinedFrame(conversationId, Math.max(current.lastSent, rooms.position(conversationId) ?? 0), frame.ref))
      return
    }
    // The slot is held from before the membership query until the membership takes it, so
    // joins running side by side cannot all pass the check.
    const { maxJoined } = this.context
    if ((this.joined?.size ?? 0) + this.joining >= maxJoined) {
      throw new ChatError('bad_request', `a socket may join at most ${maxJoined} conversations`)
    }
    this.joining++
    try {
      await requireParticipant(this.db, conversationId, this.userId)
    } finally {
      this.joining--
    }
    if (this.closed) return
    const joined = this.joined ??= new Map()
    const membership = new Membership(this, conversationId)
    joined.set(conversationId, membership)
    try {
      // Live messages reach the backlog from here on; the replay below reads the database after
      // this, so together they miss nothing, and seq drops what both carry.
      await rooms.join(conversationId, membership)
      if (frame.since_seq !== undefined) {
        // Later entries reach the backlog. A since_seq from the future (another database, a bug)
        // would hide the next messages.
        const until = await lastSeq(this.db, conversationId)
        membership.lastSent = Math.min(frame.since_seq, until)
        await this.replay(membership, until)
      }
    } catch (error) {
      this.drop(membership)
      throw error
    }
    if (this.closed) return
    const backlog = membership.backlog ?? []
    this.backlogBytes -= membership.backlogBytes
    membership.backlog = null
    membership.backlogBytes = 0
    // Removed from the conversation while joining: the room let go of the membership.
    if (joined.get(conversationId) !== membership) throw new NotParticipantError()
    for (const { seq, frame: data } of backlog) membership.deliver(seq, data)
    this.send(joinedFrame(conversationId, Math.max(membership.lastSent, rooms.position(conversationId) ?? 0), frame.ref))
  }

  /** A join that failed half way lets go of its room and its backlog. */
  drop (membership: Membership): void {
    const { conversationId } = membership
    if (this.joined?.get(conversationId) === membership) {
      this.joined.delete(conversationId)
      this.rooms.leave(conversationId, membership)
    }
    this.backlogBytes -= membership.backlogBytes
    membership.backlog = null
    membership.backlogBytes = 0
  }

  /** Replays the entries after membership.lastSent up to `until`, after this socket's other replays. */
  async replay (membership: Membership, until: number): Promise<void> {
    const previous = this.replayTail
    let done!: () => void
    const mine = new Promise<void>((resolve) => { done = resolve })
    this.replayTail = mine
    try {
      await previous
      await this.replayPages(membership, until)
    } finally {
      done()
      if (this.replayTail === mine) this.replayTail = undefined
    }
  }

  /**
   * Reads a page only when the socket has room for it (its last page written out once it holds
   * half its budget) and the process has (replayBudget), each waited for at most drainTimeoutMs:
   * a socket that does not read holds at most its budget, and is then cut.
   */
  async replayPages (membership: Membership, until: number): Promise<void> {
    const { context, socket } = this
    const max = context.maxBufferedBytes
    const pageBytes = Math.min(REPLAY_PAGE_BYTES, Math.floor(max / 4), context.replayBudget.limit)
    let written: Promise<void> | undefined
    while (membership.lastSent < until) {
      if (written !== undefined && this.queued() > max / 2 && !await settlesWithin(written, context.drainTimeoutMs)) {
        this.cutSlowConsumer(`did not take its replay within ${context.drainTimeoutMs} ms`)
        return
      }
      if (this.closed) return
      const estimate = Math.max(1, Math.min(pageBytes, max - this.queued()))
      if (!await context.replayBudget.take(estimate, context.drainTimeoutMs)) {
        this.cutSlowConsumer(`found no room for its replay within ${context.drainTimeoutMs} ms`, 'server busy')
        return
      }
      this.replayHeld += estimate
      this.reading = estimate
      let page: ConversationEntry[]
      try {
        page = await entriesSince(this.db, membership.conversationId, membership.lastSent, REPLAY_PAGE, estimate)
      } finally {
        this.reading = 0
      }
      if (this.closed || page.length === 0 || socket.readyState !== socket.OPEN) {
        this.releaseReplay(estimate)
        return
      }
      const frames = this.dialect === 'camelCase' ? page.map((entry) => camelCaseFrame(entryFrame(entry))) : page.map(entryFrame)
      let bytes = 0
      for (const data of frames) bytes += Buffer.byteLength(data)
      // The estimate is near, not exact: the process's count takes the page's real size.
      if (bytes > estimate) {
        context.replayBudget.takeMore(bytes - estimate)
        this.replayHeld += bytes - estimate
      } else {
        this.releaseReplay(estimate - bytes)
      }
      // ws calls back once the page's last frame is written to the TCP socket, or with an error
      // when it closes; the page's bytes are given back then.
      written = new Promise((resolve) => {
        const last = frames.length - 1
        for (let i = 0; i < last; i++) socket.send(frames[i]!, { binary: false })
        socket.send(frames[last]!, { binary: false }, () => {
          this.releaseReplay(bytes)
          resolve()
        })
      })
      membership.lastSent = page.at(-1)!.seq
    }
  }

  leave (frame: LeaveFrame, conversationId: string): void {
    const membership = this.joined?.get(conversationId)
    if (membership !== undefined) {
      this.joined!.delete(conversationId)
      this.rooms.leave(conversationId, membership)
    }
    this.send(leftFrame(conversationId, frame.ref))
  }

  async sendOne (frame: SendFrame, conversationId: string): Promise<void> {
    // Stored even when the socket closed meanwhile: the frame arrived, and a retry with the same
    // dedupe_key finds it.
    const { message, created } = await sendMessage(this.db, {
      conversationId,
      senderId: this.userId,
      body: frame.body,
      msg_type: frame.msg_type,
      attachment_url: frame.attachment_url,
      attachment_meta: frame.attachment_meta,
      dedupe_key: frame.dedupe_key
    })
    try {
      await this.rooms.publish(message)
    } catch (err) {
      // Stored is what counts: members get it with the next message (rooms fill gaps) or on resume.
      this.log.warn({ err, conversation: conversationId }, 'cannot publish a stored message')
    }
    if (created) this.context.onStored?.(message)
    // go-chatty echoes a message to its sender; a socket in the room gets the broadcast instead.
    if (this.joined?.has(conversationId) !== true) this.send(messageFrame(message))
    if (frame.ref !== undefined) this.send(sentFrame(message, frame.ref))
  }

  /** An edit or delete of one of the socket user's messages. */
  async changeOne (frame: EditFrame | DeleteFrame, conversationId: string): Promise<void> {
    const input = { conversationId, messageId: frame.message_id, senderId: this.userId }
    const change: MessageChange = frame.type === 'edit'
      ? await editMessage(this.db, { ...input, body: frame.body })
      : await deleteMessage(this.db, input)
    await publishChange(this.rooms, this.log, change)
    // As with messages: a socket in the room gets the broadcast, one outside it the frame itself.
    if (change.seq !== null && this.joined?.has(conversationId) !== true) this.send(entryFrame({ type: change.type, seq: change.seq, message: change.message }))
    if (frame.ref !== undefined) this.send(changedFrame(change, frame.ref))
  }
}

/** A socket's membership of one conversation: what it has been sent, and its backlog while it catches up. */
class Membership implements RoomMember {
  readonly session: Session
  readonly conversationId: string
  /** The seq of the last entry (message, edit, delete) sent on the socket. */
  lastSent = 0
  /** Live entries that arrived while joining (and replaying); null once live. */
  backlog: Array<{ seq: number, frame: Buffer }> | null = []
  backlogBytes = 0

  constructor (session: Session, conversationId: string) {
    this.session = session
    this.conversationId = conversationId
  }

  get userId (): string {
    return this.session.userId
  }

  get dialect (): Dialect {
    return this.session.dialect
  }

  /** The room already let go; the socket is told after the system message that recorded it. */
  removed (): void {
    const { session, conversationId } = this
    if (session.joined?.get(conversationId) === this) session.joined.delete(conversationId)
    session.send(removedFrame(conversationId, session.userId))
  }

  deliver (seq: number, data: Buffer): void {
    if (seq <= this.lastSent) return
    if (this.backlog === null) {
      this.lastSent = seq
      this.session.write(data)
      return
    }
    const { session } = this
    this.backlog.push({ seq, frame: data })
    this.backlogBytes += data.length
    session.backlogBytes += data.length
    if (session.queued() > session.context.maxBufferedBytes) session.cutSlowConsumer()
  }

  notify (event: RoomEvent, data: Buffer): void {
    if (event.type === 'presence') return this.session.sharePresence(event, data)
    // Events carry no seq: they go out as they come, also while joining.
    if (event.type === 'typing' && event.user_id === this.session.userId.toLowerCase()) return
    this.session.write(data)
  }
}
