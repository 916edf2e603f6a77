// The websocket half of the client: go-chatty's protocol with chatty's extensions. Requests
// (join, leave, send) carry a ref and resolve with the reply that echoes it. When the connection
// drops, the client reconnects with backoff, joins every conversation again with since_seq = the
// last seq it saw, and sends again what was not acknowledged, with the same dedupe_key, so
// nothing is missed and nothing is stored twice.
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import WebSocket, { type ClientOptions, type RawData } from 'ws'
import { ApiError, ClientClosedError, FrameError, RequestTimeoutError } from './errors.ts'
import {
  CloseCode, type ClientFrame, type DeletedFrame, type DeliveredEventFrame, type EditedFrame, type ErrorFrame, type JoinedFrame, type LeftFrame, type Message,
  type MessageContent, type MessageDeletedFrame, type MessagePinnedFrame, type MessageUpdatedFrame, type PinnedFrame, type PresenceFrame, type ReactedFrame,
  type ReactionEventFrame, type ReadEventFrame, type ServerFrame, type TypingEventFrame
} from './frames.ts'
import { resolveToken, type TokenSource } from './rest.ts'

export const SOCKET_PATH = '/api/v1/chat/ws'

export interface ReconnectOptions {
  /** First delay; it doubles per failed attempt, with jitter. Default 100 ms. */
  minDelayMs?: number
  /** Default 5 s. */
  maxDelayMs?: number
}

export interface ChatSocketOptions {
  /** The api's base URL (http(s):// or ws(s)://), or the full websocket URL. */
  url: string
  /** Who connects (user_id); required unless a token says it. */
  userId?: string
  /** AUTH_MODE=jwt: sent as Authorization: Bearer, asked again on every reconnect. */
  token?: TokenSource
  /** false: a dropped connection ends the client (pending requests reject). Default: reconnect. */
  reconnect?: false | ReconnectOptions
  /** How long a request waits for its reply, reconnects included. Default 15 s. */
  requestTimeoutMs?: number
  /** Options for ws (e.g. autoPong, maxPayload, an agent). */
  ws?: ClientOptions
  /** Receive `presence` events about the members of joined conversations. Default false. */
  presence?: boolean
}

export interface Gap {
  conversation_id: string
  /** The last seq seen before the gap. */
  after_seq: number
  /** The seq that arrived instead of after_seq + 1. */
  seq: number
}

export interface ChatSocketEvents {
  /** The server said `connected` (first connection and every reconnect). */
  connected: []
  disconnected: [code: number, reason: string]
  reconnecting: [attempt: number, delayMs: number]
  /** Every message once, per conversation in seq order (what the server sends, minus repeats). */
  message: [message: Message]
  /** A message was edited; in seq order with the messages, each once (the resume position moves past it). */
  messageUpdated: [frame: MessageUpdatedFrame]
  /** A message was deleted (frame.message is its tombstone); in seq order with the messages, each once. */
  messageDeleted: [frame: MessageDeletedFrame]
  /** A member reacted or removed a reaction (frame.reactions is the new aggregate); in seq order, each once. */
  reaction: [frame: ReactionEventFrame]
  /** A message was pinned or unpinned; in seq order with the messages, each once. */
  pin: [frame: MessagePinnedFrame]
  /** A seq was skipped; the server never does this, so it means a bug somewhere. */
  gap: [gap: Gap]
  /** A member's read position moved (another member's, or this user's on another device). */
  read: [frame: ReadEventFrame]
  /** Another member is typing in a joined conversation (never this user's own sockets). */
  typing: [frame: TypingEventFrame]
  /** The user was removed from (or left) a conversation; the client no longer joins it. */
  removed: [conversationId: string]
  /** An error frame that answers no request of this client. */
  serverError: [frame: ErrorFrame]
  /** A participant of a joined conversation came online or went offline. */
  presence: [frame: PresenceFrame]
  /** Every frame as it arrives, before the client acts on it. */
  frame: [frame: ServerFrame]
  /** The client is closed for good. */
  closed: []
}

interface Pending {
  frame: ClientFrame & { ref: string }
  /** Written on the current connection. */
  sent: boolean
  resolve (value: unknown): void
  reject (error: Error): void
  timer: NodeJS.Timeout
}

interface Tracked {
  /** The last seq seen in this conversation; undefined before the first joined or message. */
  lastSeq: number | undefined
}

/** Opens a chat socket and resolves once the server says `connected`. */
export async function connectChat (options: ChatSocketOptions): Promise<ChatSocket> {
  const chat = new ChatSocket(options)
  await chat.opened
  return chat
}

export class ChatSocket extends EventEmitter<ChatSocketEvents> {
  /** Settles with the first connection. */
  readonly opened: Promise<void>
  readonly #options: ChatSocketOptions
  readonly #timeoutMs: number
  #socket: WebSocket | undefined
  #ready = false
  #closed = false
  #attempt = 0
  #reconnectTimer: NodeJS.Timeout | undefined
  #refs = 0
  readonly #pending = new Map<string, Pending>()
  readonly #conversations = new Map<string, Tracked>()
  /** Refs of the joins a reconnect sent on its own, by conversation: no request waits on them. */
  readonly #rejoins = new Map<string, string>()

  constructor (options: ChatSocketOptions) {
    super()
    this.#options = options
    this.#timeoutMs = options.requestTimeoutMs ?? 15_000
    this.opened = this.#open()
    // A failed first connection is reported by `opened`; nothing else waits on it.
    this.opened.catch(() => { this.#closed = true })
  }

  /** Whether the socket is open and the server said `connected`. */
  get connected (): boolean {
    return this.#ready
  }

  /** The last seq seen in a joined conversation. */
  lastSeq (conversationId: string): number | undefined {
    return this.#conversations.get(conversationId.toLowerCase())?.lastSeq
  }

  /** Conversations this client is joined to (and joins again after a reconnect). */
  joined (): string[] {
    return [...this.#conversations.keys()]
  }

  /**
   * Joins a conversation. With sinceSeq, the server first replays the messages after it. Resolves
   * once the server is sending live messages: every message after `last_seq` follows.
   */
  join (conversationId: string, options: { sinceSeq?: number } = {}): Promise<JoinedFrame> {
    // The server answers with ids in lower case.
    conversationId = conversationId.toLowerCase()
    const tracked = this.#conversations.get(conversationId) ?? { lastSeq: undefined }
    if (options.sinceSeq !== undefined) tracked.lastSeq = options.sinceSeq
    this.#conversations.set(conversationId, tracked)
    return this.#request({ type: 'join', conversation_id: conversationId, ...(tracked.lastSeq === undefined ? {} : { since_seq: tracked.lastSeq }) }) as Promise<JoinedFrame>
  }

  leave (conversationId: string): Promise<LeftFrame> {
    conversationId = conversationId.toLowerCase()
    this.#conversations.delete(conversationId)
    return this.#request({ type: 'leave', conversation_id: conversationId }) as Promise<LeftFrame>
  }

  /**
   * Sends a message and resolves with it once stored. A dedupe_key is generated when not given,
   * so the resend after a reconnect cannot store it twice.
   */
  send (conversationId: string, content: MessageContent): Promise<Message> {
    const frame = { ...content, type: 'message' as const, conversation_id: conversationId.toLowerCase(), dedupe_key: content.dedupe_key ?? randomUUID() }
    return this.#request(frame) as Promise<Message>
  }

  /**
   * Replaces the body of one of the user's messages; resolves once stored (seq null when the body
   * was already that). Resent after a reconnect until acknowledged: the same body again is a no-op.
   */
  edit (conversationId: string, messageId: string, body: string | null): Promise<EditedFrame> {
    return this.#request({ type: 'edit', conversation_id: conversationId.toLowerCase(), message_id: messageId, body }) as Promise<EditedFrame>
  }

  /** Deletes one of the user's messages; a repeat (or a resend after a reconnect) answers seq null. */
  delete (conversationId: string, messageId: string): Promise<DeletedFrame> {
    return this.#request({ type: 'delete', conversation_id: conversationId.toLowerCase(), message_id: messageId }) as Promise<DeletedFrame>
  }

  /** Adds the user's reaction to a message; seq null when it was already there. */
  react (conversationId: string, messageId: string, reaction: string): Promise<ReactedFrame> {
    return this.#request({ type: 'react', conversation_id: conversationId.toLowerCase(), message_id: messageId, reaction }) as Promise<ReactedFrame>
  }

  /** Removes the user's reaction; seq null when there was none. */
  unreact (conversationId: string, messageId: string, reaction: string): Promise<ReactedFrame> {
    return this.#request({ type: 'unreact', conversation_id: conversationId.toLowerCase(), message_id: messageId, reaction }) as Promise<ReactedFrame>
  }

  /** Pins a message for every member; seq null when it was already pinned. */
  pin (conversationId: string, messageId: string): Promise<PinnedFrame> {
    return this.#request({ type: 'pin', conversation_id: conversationId.toLowerCase(), message_id: messageId }) as Promise<PinnedFrame>
  }

  /** Unpins a message; seq null when it was not pinned. */
  unpin (conversationId: string, messageId: string): Promise<PinnedFrame> {
    return this.#request({ type: 'unpin', conversation_id: conversationId.toLowerCase(), message_id: messageId }) as Promise<PinnedFrame>
  }

  /**
   * Marks messageId and everything before it read. Resolves with the read position, which is
   * further than messageId when the user had already read further, and the unread count left.
   */
  markRead (conversationId: string, messageId: string): Promise<ReadEventFrame & { unread_count: number }> {
    return this.#request({ type: 'read', conversation_id: conversationId.toLowerCase(), message_id: messageId }) as Promise<ReadEventFrame & { unread_count: number }>
  }

  /** Records that this device received a message (a delivered receipt). */
  markDelivered (conversationId: string, messageId: string): Promise<DeliveredEventFrame> {
    return this.#request({ type: 'delivered', conversation_id: conversationId.toLowerCase(), message_id: messageId }) as Promise<DeliveredEventFrame>
  }

  /**
   * Says the user is typing. Fire and forget: not answered, not resent after a reconnect, and
   * dropped while disconnected. Call it on keystrokes; the server passes on one per 2.5 s.
   */
  typing (conversationId: string): void {
    if (this.#ready) this.#socket?.send(JSON.stringify({ type: 'typing', conversation_id: conversationId.toLowerCase() }))
  }

  /** Messages from now on, as an async iterator; it ends when the client closes. */
  messages (): AsyncIterableIterator<Message> {
    const queue: Message[] = []
    let wake: (() => void) | undefined
    let done = this.#closed
    const onMessage = (message: Message): void => {
      queue.push(message)
      wake?.()
    }
    const onClosed = (): void => {
      done = true
      wake?.()
    }
    const stop = (): void => {
      done = true
      this.off('message', onMessage)
      this.off('closed', onClosed)
      wake?.()
    }
    this.on('message', onMessage)
    this.once('closed', onClosed)
    return {
      async next () {
        while (queue.length === 0 && !done) await new Promise<void>((resolve) => { wake = resolve })
        wake = undefined
        if (queue.length > 0) return { value: queue.shift()!, done: false }
        stop()
        return { value: undefined, done: true }
      },
      async return () {
        stop()
        return { value: undefined, done: true }
      },
      [Symbol.asyncIterator] () { return this }
    }
  }

  /** Closes for good: pending requests reject, iterators end. */
  async close (): Promise<void> {
    if (this.#closed && this.#socket === undefined) return
    this.#closed = true
    clearTimeout(this.#reconnectTimer)
    const socket = this.#socket
    if (socket !== undefined && socket.readyState !== WebSocket.CLOSED) {
      const closed = new Promise((resolve) => socket.once('close', resolve))
      socket.close(CloseCode.normal)
      await closed
    }
    this.#finish()
  }

  #finish (): void {
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer)
      pending.reject(new ClientClosedError())
    }
    this.#pending.clear()
    this.emit('closed')
  }

  #request (frame: ClientFrame): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ClientClosedError())
    const ref = `r${++this.#refs}`
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref)
        reject(new RequestTimeoutError(frame.type, this.#timeoutMs))
      }, this.#timeoutMs)
      const pending: Pending = { frame: { ...frame, ref }, sent: false, resolve, reject, timer }
      this.#pending.set(ref, pending)
      // While reconnecting it waits; the reconnect sends it.
      if (this.#ready) this.#write(pending)
    })
  }

  #write (pending: Pending): void {
    pending.sent = true
    this.#socket?.send(JSON.stringify(pending.frame))
  }

  #settle (ref: unknown, value: unknown): boolean {
    const pending = typeof ref === 'string' ? this.#pending.get(ref) : undefined
    if (pending === undefined) return false
    this.#pending.delete(ref as string)
    clearTimeout(pending.timer)
    if (value instanceof Error) pending.reject(value)
    else pending.resolve(value)
    return true
  }

  async #open (): Promise<void> {
    const options = this.#options
    const url = socketUrl(options.url, options.userId, options.presence === true)
    const token = await resolveToken(options.token)
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
    const socket = new WebSocket(url, { ...options.ws, headers: { ...options.ws?.headers, ...headers } })
    this.#socket = socket
    await new Promise<void>((resolve, reject) => {
      let settled = false
      const settle = (error?: Error): void => {
        if (settled) return
        settled = true
        if (error === undefined) resolve()
        else reject(error)
      }
      socket.on('unexpected-response', (_request, response) => {
        let body = ''
        response.on('data', (chunk: Buffer) => { body += chunk.toString() })
        response.on('end', () => {
          let parsed: { error?: string, code?: string } = {}
          try { parsed = JSON.parse(body) } catch {}
          settle(new ApiError(response.statusCode ?? 0, parsed.code ?? 'http_error', parsed.error ?? `websocket upgrade refused: HTTP ${response.statusCode}`))
          socket.terminate()
        })
      })
      socket.on('error', (error) => settle(error))
      socket.on('message', (data: RawData) => {
        const frame = parseFrame(data)
        if (frame === undefined) return
        if (frame.type === 'connected') {
          this.#onConnected()
          settle()
        }
        this.#onFrame(frame)
      })
      socket.on('close', (code, reason) => {
        settle(new Error(`the websocket closed before the server said connected (${code})`))
        this.#onClose(socket, code, reason.toString())
      })
    })
  }

  #onConnected (): void {
    this.#ready = true
    this.#attempt = 0
    this.emit('connected')
    // Joins first (resuming after the last seq seen), then what was never acknowledged, in order.
    const joinRefs = new Map<string, Pending>()
    for (const pending of this.#pending.values()) {
      if (pending.frame.type === 'join') joinRefs.set(pending.frame.conversation_id, pending)
    }
    for (const [conversationId, tracked] of this.#conversations) {
      const pending = joinRefs.get(conversationId)
      const sinceSeq = tracked.lastSeq === undefined ? {} : { since_seq: tracked.lastSeq }
      if (pending !== undefined) {
        pending.frame = { type: 'join', conversation_id: conversationId, ...sinceSeq, ref: pending.frame.ref }
        this.#write(pending)
      } else {
        const ref = `r${++this.#refs}`
        this.#rejoins.set(ref, conversationId)
        this.#socket?.send(JSON.stringify({ type: 'join', conversation_id: conversationId, ...sinceSeq, ref }))
      }
    }
    for (const pending of this.#pending.values()) if (!pending.sent) this.#write(pending)
  }

  #onFrame (frame: ServerFrame): void {
    this.emit('frame', frame)
    switch (frame.type) {
      case 'message':
        if (this.#advance(frame.conversation_id, frame.message.seq)) this.emit('message', frame.message)
        return
      case 'message_updated':
        if (this.#advance(frame.conversation_id, frame.seq)) this.emit('messageUpdated', frame)
        return
      case 'message_deleted':
        if (this.#advance(frame.conversation_id, frame.seq)) this.emit('messageDeleted', frame)
        return
      case 'reaction_added':
      case 'reaction_removed':
        if (this.#advance(frame.conversation_id, frame.seq)) this.emit('reaction', frame)
        return
      case 'message_pinned':
      case 'message_unpinned':
        if (this.#advance(frame.conversation_id, frame.seq)) this.emit('pin', frame)
        return
      case 'edited':
      case 'deleted':
      case 'reacted':
      case 'unreacted':
      case 'pinned':
      case 'unpinned':
        this.#settle(frame.ref, frame)
        return
      case 'joined': {
        const tracked = this.#conversations.get(frame.conversation_id)
        if (tracked !== undefined) tracked.lastSeq = Math.max(tracked.lastSeq ?? 0, frame.last_seq)
        if (typeof frame.ref === 'string') this.#rejoins.delete(frame.ref)
        this.#settle(frame.ref, frame)
        return
      }
      case 'left':
        this.#settle(frame.ref, frame)
        return
      case 'presence':
        this.emit('presence', frame)
        return
      case 'removed':
        this.#conversations.delete(frame.conversation_id)
        this.emit('removed', frame.conversation_id)
        return
      case 'sent':
        this.#settle(frame.ref, frame.message)
        return
      case 'read':
        if (!this.#settle(frame.ref, frame)) this.emit('read', frame)
        return
      case 'delivered':
        this.#settle(frame.ref, frame)
        return
      case 'typing':
        this.emit('typing', frame)
        return
      case 'error': {
        // Over the socket's frame rate: the request is sent again when the server says it may be.
        if (frame.code === 'rate_limited' && this.#retryLater(frame)) return
        const pending = typeof frame.ref === 'string' ? this.#pending.get(frame.ref) : undefined
        if (pending?.frame.type === 'join') this.#conversations.delete(pending.frame.conversation_id)
        // A conversation the client can no longer join (removed from it, say) is dropped.
        const rejoined = typeof frame.ref === 'string' ? this.#rejoins.get(frame.ref) : undefined
        if (rejoined !== undefined) {
          this.#rejoins.delete(frame.ref as string)
          this.#conversations.delete(rejoined)
        }
        if (!this.#settle(frame.ref, new FrameError(frame.code, frame.error))) this.emit('serverError', frame)
      }
    }
  }

  /**
   * Moves a joined conversation's position to an entry of its seq order (message, edit, delete);
   * false for one already seen. Frames of conversations not joined pass as they are.
   */
  #advance (conversationId: string, seq: number): boolean {
    const tracked = this.#conversations.get(conversationId)
    if (tracked === undefined) return true
    const last = tracked.lastSeq
    if (last !== undefined && seq <= last) return false
    if (last !== undefined && seq > last + 1) this.emit('gap', { conversation_id: conversationId, after_seq: last, seq })
    tracked.lastSeq = seq
    return true
  }

  /** Schedules the resend of a rate-limited request (or reconnect's own join); false if it answers none. */
  #retryLater (frame: ErrorFrame): boolean {
    if (typeof frame.ref !== 'string') return false
    const ref = frame.ref
    const socket = this.#socket
    const delay = Math.max(1, frame.retry_after_ms ?? 1000)
    const rejoined = this.#rejoins.get(ref)
    if (rejoined !== undefined) {
      setTimeout(() => {
        // A reconnect meanwhile sent its own joins.
        if (this.#socket !== socket || !this.#ready || !this.#rejoins.has(ref)) return
        const tracked = this.#conversations.get(rejoined)
        if (tracked === undefined) return
        socket?.send(JSON.stringify({ type: 'join', conversation_id: rejoined, ...(tracked.lastSeq === undefined ? {} : { since_seq: tracked.lastSeq }), ref }))
      }, delay).unref()
      return true
    }
    const pending = this.#pending.get(ref)
    if (pending === undefined) return false
    pending.sent = false
    setTimeout(() => {
      // Still waiting, and not already resent by a reconnect.
      if (this.#pending.get(ref) === pending && !pending.sent && this.#ready) this.#write(pending)
    }, delay).unref()
    return true
  }

  #onClose (socket: WebSocket, code: number, reason: string): void {
    if (this.#socket !== socket) return
    const wasReady = this.#ready
    this.#ready = false
    this.#socket = undefined
    if (wasReady) this.emit('disconnected', code, reason)
    for (const [ref, pending] of this.#pending) {
      // Leaving is done: the next connection does not join that conversation again.
      if (pending.frame.type === 'leave') this.#settle(ref, { type: 'left', conversation_id: pending.frame.conversation_id })
    }
    if (code === CloseCode.messageTooBig) this.#rejectLargest()
    for (const pending of this.#pending.values()) pending.sent = false
    this.#rejoins.clear()
    if (this.#closed || !wasReady) return
    if (this.#options.reconnect === false) {
      this.#closed = true
      this.#finish()
      return
    }
    this.#scheduleReconnect()
  }

  /** A frame over the server's limit would close every connection it is resent on. */
  #rejectLargest (): void {
    let largest: [string, number] | undefined
    for (const [ref, pending] of this.#pending) {
      if (!pending.sent) continue
      const size = JSON.stringify(pending.frame).length
      if (largest === undefined || size > largest[1]) largest = [ref, size]
    }
    if (largest !== undefined) this.#settle(largest[0], new FrameError('message_too_big', 'the frame is larger than the server accepts'))
  }

  #scheduleReconnect (): void {
    const { minDelayMs = 100, maxDelayMs = 5_000 } = this.#options.reconnect || {}
    const attempt = ++this.#attempt
    const delay = Math.round(Math.min(maxDelayMs, minDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2))
    this.emit('reconnecting', attempt, delay)
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined
      if (this.#closed) return
      this.#open().catch(() => {
        if (!this.#closed) this.#scheduleReconnect()
      })
    }, delay)
  }
}

function parseFrame (data: RawData): ServerFrame | undefined {
  try {
    const text = Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data as Buffer).toString()
    const frame = JSON.parse(text) as ServerFrame
    return typeof frame === 'object' && frame !== null && typeof frame.type === 'string' ? frame : undefined
  } catch {
    return undefined
  }
}

/** ws(s)://host/api/v1/chat/ws?user_id=... from the api's base URL or the socket URL itself. */
export function socketUrl (base: string, userId: string | undefined, presence = false): string {
  const url = new URL(base)
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (url.protocol === 'https:') url.protocol = 'wss:'
  if (!url.pathname.endsWith(SOCKET_PATH)) url.pathname = url.pathname.replace(/\/+$/, '') + SOCKET_PATH
  if (userId !== undefined) url.searchParams.set('user_id', userId)
  if (presence) url.searchParams.set('presence', 'true')
  return url.toString()
}
