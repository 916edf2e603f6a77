// One chat websocket's transport: its listeners, liveness (heartbeat, token expiry), limits
// (frame rate, frames in flight, the byte budget and the slow-consumer cut) and the writes, corked
// per turn. Frames about one conversation are handled one after another, in the order they arrived
// (a client's messages are stored in the order it sent them); frames about different
// conversations run concurrently. Within that order a message does not wait for the one before
// it to be stored, only to be handed to the store, which keeps a sender's order: a client that
// keeps several messages outstanding has them written together (handlers/message.ts). Each frame type has its handler in handlers/ (dispatch.ts).
//
// A process holds thousands of mostly idle sockets, so one costs little (docs/performance.md): a
// session is one object whose methods live on its class, what every socket shares (database,
// rooms, limits, logger) is one object of the route's, maps and the rate-limit bucket are made
// when first needed, and one timer pings every socket of the process (startHeartbeat).
import type { Socket } from 'node:net'
import * as wsModule from 'ws'
import type { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import type { Chat, ConversationFeed } from '@chatty/chat'
import { CLOSE_INTERNAL_ERROR } from '../plugins/external/websocket.ts'
import type { Rooms } from '../plugins/app/rooms.ts'
import { CONNECTED_FRAME, errorFrame, parseClientFrame, rateLimitedFrame } from './frames.ts'
import { camelCaseFrame, type Dialect } from '../dialect.ts'
import type { FrameContext, SessionContext, SessionOptions } from './context.ts'
import type { Membership } from './membership.ts'
import { TokenBucket } from './token-bucket.ts'
import { dispatch } from './handlers/dispatch.ts'
import { acceptMessageFrame, canPipeline, finishMessage } from './handlers/message.ts'
import type { SignalContext } from './handlers/signals.ts'
import { answerFailure } from './handlers/failure.ts'
import { releaseReplay } from './handlers/replay.ts'

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
/** Node's timers hold at most this many milliseconds. */
const MAX_TIMER_MS = 2 ** 31 - 1

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

const TEXT_FRAME = { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }
// ws' own framing (its Sender is a named export, not typed).
const frameOf = (wsModule as unknown as { Sender: { frame (data: Buffer, options: typeof TEXT_FRAME): Buffer[] } }).Sender.frame
let lastPayload: Buffer | undefined
let lastFramed: Buffer | undefined

/**
 * The websocket text frame around a payload, as ws frames it: a server's frames are not masked,
 * so one frame serves every socket. A room hands the same payload to all its members in turn,
 * so the last one framed is kept.
 */
function framed (payload: Buffer): Buffer {
  if (payload !== lastPayload) {
    lastFramed = Buffer.concat(frameOf(payload, TEXT_FRAME))
    lastPayload = payload
  }
  return lastFramed!
}

function uncork (session: Session): void {
  session.corked = false
  session.wire()?.uncork()
}

/** One socket's state and transport; the context its frame handlers (handlers/*.ts) are given. */
class Session implements FrameContext, SignalContext {
  readonly socket: WebSocket
  readonly context: SessionContext
  readonly userId: string
  readonly requestId: string
  readonly presence: boolean
  readonly dialect: Dialect
  joined: Map<string, Membership> | undefined = undefined
  /** Tail of each conversation's frame chain; only while frames are in progress. */
  chains: Map<string, Chain> | undefined = undefined
  inFlight = 0
  joining = 0
  backlogBytes = 0
  reading = 0
  replayHeld = 0
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

  get chat (): Chat { return this.context.chat }
  get feed (): ConversationFeed { return this.context.feed }
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
    releaseReplay(this, this.replayHeld)
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
    const wire = this.wire()
    // Frames sent in one turn of the event loop (a burst of broadcasts off the bus) leave in one
    // write: the TCP socket stays corked until the turn ends.
    if (!this.corked && wire !== undefined) {
      this.corked = true
      wire.cork()
      process.nextTick(uncork, this)
    }
    // A frame shared by a room's sockets (a Buffer): the same framed bytes go to each TCP socket,
    // one write where ws would make two (header and payload) and frame the payload for every
    // socket. Safe beside ws' own writes because its sender writes synchronously: no per-message
    // deflate (plugins/external/websocket.ts) and no Blobs sent.
    if (typeof data === 'string' || wire === undefined) socket.send(data, { binary: false })
    else wire.write(framed(data))
    return true
  }

  /** Cuts the socket with 1013; `why` is for the log line. */
  cutSlowConsumer (why = 'over its budget', reason = 'slow consumer'): void {
    if (this.closed) return
    this.closed = true
    this.log.warn({ user: this.userId, buffered: this.socket.bufferedAmount, backlog: this.backlogBytes, replay: this.replayHeld }, `websocket ${why}; closing a slow consumer`)
    // Given back now, not when the closing handshake ends (up to 5 s for a client that does not
    // read): a cut socket takes nothing more, and the replays waiting for room go on.
    releaseReplay(this, this.replayHeld)
    this.leaveAll()
    this.socket.close(CLOSE_CODES.slowConsumer, reason)
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
    const chains = this.chains ??= new Map<string, Chain>()
    const tail = chains.get(key)
    const before = tail?.done ?? Promise.resolve()
    // A message is accepted (handed to the store) once the frames before it are accepted, and
    // finished once they are finished; any other frame starts once they are finished.
    const message = frame.type === 'message' && canPipeline(this) ? frame : undefined
    let accepted: Promise<void> | undefined
    let work: Promise<void>
    if (message === undefined) {
      work = before.then(() => dispatch(this, frame, key))
    } else {
      const handedOver = (tail?.accepted ?? Promise.resolve()).then(() => acceptMessageFrame(this, message, key))
      accepted = handedOver.then(ignore, ignore)
      work = before.then(() => handedOver).then(async ({ stored }) => await finishMessage(this, message, key, await stored))
    }
    const done: Promise<void> = work
      .catch((error: unknown) => answerFailure(this, error, frame.ref))
      .finally(() => this.settled(key, done))
    chains.set(key, { accepted: accepted ?? done, done })
  }

  /** A frame's handling ended: `done` was its link's. */
  settled (key: string, done: Promise<void>): void {
    this.inFlight--
    // A map is only dropped once empty, so the entry is in the current one.
    const current = this.chains
    if (current?.get(key)?.done === done) {
      current.delete(key)
      if (current.size === 0) this.chains = undefined
    }
    if (this.inFlight === MAX_IN_FLIGHT / 2 && this.socket.isPaused) this.socket.resume()
  }
}

/**
 * The last frame about one conversation: when it has been handed to the store (a pipelined
 * message) or finished (every other frame), and when it is finished.
 */
interface Chain {
  accepted: Promise<void>
  done: Promise<void>
}

function ignore (): void {}
