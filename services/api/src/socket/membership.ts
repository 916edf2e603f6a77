// A socket's membership of one joined conversation: the room member that receives the
// conversation's entries and events, in seq order, holding them back while the join replays.
import type { RoomEvent, RoomMember } from '../plugins/app/rooms.ts'
import { removedFrame } from './frames.ts'
import type { Dialect } from '../dialect.ts'

/** What a membership sees of its socket (the session implements it). */
export interface MemberSocket {
  readonly userId: string
  readonly dialect: Dialect
  readonly context: { readonly maxBufferedBytes: number }
  joined: Map<string, Membership> | undefined
  /** Live entries held back, over the conversations this socket is joining. */
  backlogBytes: number
  /** What the socket holds queued, counted against WS_MAX_BUFFERED_BYTES. */
  queued (): number
  /** Sends a frame made for this socket (in snake_case), in the socket's dialect. */
  send (data: string | Buffer): boolean
  /** Sends a frame already in the socket's dialect, or cuts a socket over its budget. */
  write (data: string | Buffer): boolean
  cutSlowConsumer (why?: string, reason?: string): void
  /** The client asked for `presence` frames. */
  readonly presence: boolean
  /** The online state last reported per user: one change arrives once per joined conversation. */
  presenceSent: Map<string, boolean> | undefined
}

/** A socket's membership of one conversation: what it has been sent, and its backlog while it catches up. */
export class Membership implements RoomMember {
  readonly session: MemberSocket
  readonly conversationId: string
  /** The seq of the last entry (message, edit, delete) sent on the socket. */
  lastSent = 0
  /** Live entries that arrived while joining (and replaying); null once live. */
  backlog: Array<{ seq: number, frame: Buffer }> | null = []
  backlogBytes = 0

  constructor (session: MemberSocket, conversationId: string) {
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
    if (event.type === 'presence') return sharePresence(this.session, event, data)
    // Events carry no seq: they go out as they come, also while joining.
    if (event.type === 'typing' && event.user_id === this.session.userId.toLowerCase()) return
    this.session.write(data)
  }
}

/** A `presence` frame: only when asked for, never about the socket's own user, each change once. */
function sharePresence (session: MemberSocket, event: RoomEvent, data: Buffer): void {
  const user = event.user_id
  if (!session.presence || user === undefined || event.online === undefined) return
  if (user === session.userId.toLowerCase()) return
  const sent = session.presenceSent ??= new Map()
  if (sent.get(user) === event.online) return
  sent.set(user, event.online)
  session.write(data)
}
