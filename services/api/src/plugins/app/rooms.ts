// `fastify.rooms`: this process's map conversation -> local members (sockets joined to it), and
// the bus subscription of each conversation, held while it has at least one member here.
//
// Frames reach a room from several publishers (every api process, every jobs process), so they
// can arrive out of seq order, twice (a retried job publishes again), or not at all (a broker
// outage). A room hands its members each seq once, in order, with no gap: it starts at the
// conversation's seq when it subscribed, holds back a frame that arrives ahead of a missing
// one, and fills a gap that does not close by itself from the database. The seq order holds the
// messages and the events about them, each with a seq of its own: edits and deletes
// (`message_updated` / `message_deleted`), reactions (`reaction_added` / `reaction_removed`) and
// pins (`message_pinned` / `message_unpinned`). A frame carrying seq n means n was committed, and seqs commit in order
// (conversation.last_seq is bumped under the row lock in the same transaction), so everything
// before n can be read.
import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import { conversationTopic, type Bus } from '@chatty/bus'
import { entriesSince, entryFrame, frameSeq, isEntryFrameType, lastSeq, removedBy, type ConversationEntry, type Message } from '@chatty/chat'
import { withTimeout } from '@chatty/server'
import type { Database } from '@chatty/db'
import { camelCaseFrame, type Dialect } from '../../dialect.ts'

/** A local receiver of a conversation's live messages (one socket's membership). */
export interface RoomMember {
  /**
   * Called with every entry (message, edit, delete) after the room's position when the member
   * joined, in seq order, each once. `frame` is the serialised `message` frame, or the event's
   * (`message_updated`, `reaction_added`, ...), in the member's dialect, shared by every member: never mutate it.
   */
  deliver (seq: number, frame: Buffer): void
  /** The field names the member receives frames in: snake_case unless it says camelCase. */
  dialect?: Dialect
  /** The user this member receives for: a system message that removes them ends the membership. */
  userId?: string
  /**
   * Called right after the member was handed the system message that removed its user from the
   * conversation; the room has already let go of it.
   */
  removed? (): void
  /**
   * Called with the conversation's frames that stand outside the seq order (`read`, `typing`,
   * `presence`, ...), as they arrive. `event` is the frame parsed once per
   * process (in snake_case); `frame` its bytes in the member's dialect, shared by every member:
   * never mutate it.
   */
  notify? (event: RoomEvent, frame: Buffer): void
}

/** A frame without a seq of its own, handed to members as it arrives. */
export interface RoomEvent {
  type: string
  conversation_id: string
  /** The user the event is about (the reader, the typist). */
  user_id?: string
  /** `presence` frames: the user's new state. */
  online?: boolean
  /** Users (lower case) the event is not handed to: the members a user whose presence it is blocked. */
  hidden_from?: string[]
}

export interface Rooms {
  /** Adds a member; resolves once the conversation's messages reach this process (and the member). */
  join (conversationId: string, member: RoomMember): Promise<void>
  /** Removes a member; the last one out unsubscribes the process from the conversation. */
  leave (conversationId: string, member: RoomMember): void
  /**
   * The seq of the last message the room has handed out (or its starting point): every message
   * after it will still be delivered to the members. Undefined when the room is not ready.
   */
  position (conversationId: string): number | undefined
  /** Rooms and memberships held by this process, for logs and metrics. */
  stats (): { rooms: number, members: number }
}

declare module 'fastify' {
  interface FastifyInstance {
    rooms: Rooms
  }
}

/** How long a join waits for the broker (which may be reconnecting) before it fails. */
const SUBSCRIBE_TIMEOUT_MS = 10_000
/** How long a room waits for a missing frame before reading it from the database. */
const GAP_WAIT_MS = 150
/** How long after a failed database read it tries again. */
const GAP_RETRY_MS = 1000
/** Most messages read to fill one gap; a longer gap is filled in several reads. */
const GAP_READ_LIMIT = 500

interface Room {
  conversationId: string
  topic: string
  members: Set<RoomMember>
  /** Settles once subscribed at the broker and the starting seq is known. */
  ready: Promise<void>
  /** The next seq to hand out; 0 until the room is ready. */
  nextSeq: number
  /** Frames that arrived ahead of a missing seq (or before the room was ready). */
  held: Map<number, Buffer>
  /** Users removed by the system message at a seq not yet handed out. */
  removals: Map<number, string[]>
  gapTimer: NodeJS.Timeout | undefined
  filling: boolean
  closed: boolean
  listener (frame: string): void
}

export interface RoomsDeps {
  db: Kysely<Database>
  bus: Bus
  log: { warn (object: object, message: string): void, error (object: object, message: string): void }
}

export function createRooms ({ db, bus, log }: RoomsDeps): Rooms {
  const rooms = new Map<string, Room>()
  let members = 0

  function leave (conversationId: string, member: RoomMember): void {
    const room = rooms.get(conversationId)
    if (room === undefined || !room.members.delete(member)) return
    members--
    if (room.members.size === 0) close(room)
  }

  /** The frame in go-chatty's camelCase dialect: made once per frame, for every such member. */
  function camelCaseBytes (frame: Buffer): Buffer {
    return Buffer.from(camelCaseFrame(frame))
  }

  function handOut (room: Room, seq: number, frame: Buffer): void {
    let camel: Buffer | undefined
    for (const member of room.members) {
      try {
        member.deliver(seq, member.dialect === 'camelCase' ? (camel ??= camelCaseBytes(frame)) : frame)
      } catch (err) {
        log.error({ err, conversation: room.conversationId }, 'a room member failed to take a message')
      }
    }
    const removed = room.removals.get(seq)
    if (removed === undefined) return
    room.removals.delete(seq)
    // Nothing after the removal reaches the removed user's sockets.
    for (const member of [...room.members]) {
      if (member.userId === undefined || !removed.includes(member.userId.toLowerCase())) continue
      leave(room.conversationId, member)
      try {
        member.removed?.()
      } catch (err) {
        log.error({ err, conversation: room.conversationId }, 'a removed room member failed to let go')
      }
    }
  }

  function accept (room: Room, seq: number, frame: Buffer, removed: string[] = []): void {
    if (room.closed) return
    if (removed.length > 0 && seq >= room.nextSeq) room.removals.set(seq, removed)
    if (room.nextSeq === 0) {
      room.held.set(seq, frame)
      return
    }
    if (seq < room.nextSeq) return
    if (seq > room.nextSeq) {
      if (!room.held.has(seq)) room.held.set(seq, frame)
      scheduleFill(room, GAP_WAIT_MS)
      return
    }
    handOut(room, seq, frame)
    room.nextSeq++
    drain(room)
  }

  /** Hands out held frames that are next in line; drops those already passed. */
  function drain (room: Room): void {
    for (let frame = room.held.get(room.nextSeq); frame !== undefined; frame = room.held.get(room.nextSeq)) {
      room.held.delete(room.nextSeq)
      handOut(room, room.nextSeq, frame)
      room.nextSeq++
    }
    for (const seq of room.held.keys()) if (seq < room.nextSeq) room.held.delete(seq)
    for (const seq of room.removals.keys()) if (seq < room.nextSeq) room.removals.delete(seq)
    if (room.held.size === 0) {
      clearTimeout(room.gapTimer)
      room.gapTimer = undefined
    } else {
      scheduleFill(room, GAP_WAIT_MS)
    }
  }

  function scheduleFill (room: Room, delay: number): void {
    if (room.gapTimer !== undefined || room.filling || room.closed) return
    room.gapTimer = setTimeout(() => {
      room.gapTimer = undefined
      void fill(room)
    }, delay)
  }

  async function fill (room: Room): Promise<void> {
    if (room.closed || room.held.size === 0) return
    room.filling = true
    const from = room.nextSeq
    const until = Math.min(...room.held.keys())
    try {
      const missing = await entriesSince(db, room.conversationId, from - 1, Math.min(until - from, GAP_READ_LIMIT))
      room.filling = false
      for (const entry of missing) {
        accept(room, entry.seq, Buffer.from(entryFrame(entry)), entry.type === 'message' ? removedBy(entry.message) : [])
      }
      if (room.nextSeq === from && !room.closed) {
        // Cannot happen while seqs stay gap-free; never stall the room on it.
        log.warn({ conversation: room.conversationId, from, until }, 'messages missing from the database; skipping ahead')
        room.nextSeq = until
      }
      drain(room)
    } catch (err) {
      room.filling = false
      log.error({ err, conversation: room.conversationId }, 'cannot read missed messages; retrying')
      scheduleFill(room, GAP_RETRY_MS)
    }
  }

  function handOutEvent (room: Room, event: RoomEvent, frame: Buffer): void {
    let camel: Buffer | undefined
    for (const member of room.members) {
      if (event.hidden_from !== undefined && member.userId !== undefined && event.hidden_from.includes(member.userId.toLowerCase())) continue
      try {
        member.notify?.(event, member.dialect === 'camelCase' ? (camel ??= camelCaseBytes(frame)) : frame)
      } catch (err) {
        log.error({ err, conversation: room.conversationId }, 'a room member failed to take an event')
      }
    }
  }

  /** A seq entry, or an event with the bytes its members get. */
  function parse (room: Room, frame: string): { seq: number, removed: string[] } | { event: RoomEvent, bytes: Buffer } | undefined {
    try {
      const parsed = JSON.parse(frame) as { type?: unknown, conversation_id?: unknown, user_id?: unknown, online?: unknown, seq?: unknown, message?: Message, hidden_from?: unknown }
      if (parsed.conversation_id !== room.conversationId || typeof parsed.type !== 'string') throw new Error('not a frame of this room')
      const ordered = isEntryFrameType(parsed.type)
      if (!ordered) {
        const event: RoomEvent = {
          type: parsed.type,
          conversation_id: room.conversationId,
          ...(typeof parsed.user_id === 'string' ? { user_id: parsed.user_id } : {}),
          ...(typeof parsed.online === 'boolean' ? { online: parsed.online } : {})
        }
        if (parsed.hidden_from === undefined) return { event, bytes: Buffer.from(frame) }
        // Who is hidden is for this process only: the members get the frame without the list.
        event.hidden_from = Array.isArray(parsed.hidden_from) ? parsed.hidden_from.filter((id): id is string => typeof id === 'string').map((id) => id.toLowerCase()) : []
        delete parsed.hidden_from
        return { event, bytes: Buffer.from(JSON.stringify(parsed)) }
      }
      const seq = frameSeq(parsed)
      if (seq !== undefined) return { seq, removed: parsed.type === 'message' ? removedBy(parsed.message!) : [] }
    } catch {}
    log.warn({ conversation: room.conversationId }, 'dropped a bus frame that is not a frame of this conversation')
    return undefined
  }

  function open (conversationId: string): Room {
    const room: Room = {
      conversationId,
      topic: conversationTopic(conversationId),
      members: new Set(),
      ready: Promise.resolve(),
      nextSeq: 0,
      held: new Map(),
      removals: new Map(),
      gapTimer: undefined,
      filling: false,
      closed: false,
      listener (frame) {
        // Parsed once per process; the same bytes go to every local socket.
        const parsed = parse(room, frame)
        if (parsed !== undefined && 'seq' in parsed) accept(room, parsed.seq, Buffer.from(frame), parsed.removed)
        else if (parsed !== undefined && !room.closed) handOutEvent(room, parsed.event, parsed.bytes)
      }
    }
    room.ready = (async () => {
      await withTimeout(bus.subscribe(room.topic, room.listener), SUBSCRIBE_TIMEOUT_MS, 'the bus did not subscribe in time')
      // Subscribed first, then read: a message committed after this read is published after
      // it too, so it reaches the listener.
      room.nextSeq = (await lastSeq(db, conversationId)) + 1
      drain(room)
    })()
    room.ready.catch((err: unknown) => {
      log.error({ err, conversation: conversationId }, 'cannot subscribe to a conversation')
      close(room)
      // A subscribe that gave up may still complete later: take the listener back.
      bus.unsubscribe(room.topic, room.listener).catch(() => {})
    })
    return room
  }

  function close (room: Room): void {
    if (room.closed) return
    room.closed = true
    clearTimeout(room.gapTimer)
    room.held.clear()
    room.removals.clear()
    if (rooms.get(room.conversationId) === room) rooms.delete(room.conversationId)
    // After a subscribe in flight settles, so the bus sees subscribe then unsubscribe; a room
    // whose subscribe failed holds nothing.
    room.ready.then(() => bus.unsubscribe(room.topic, room.listener), () => {}).catch((err: unknown) => {
      log.warn({ err, conversation: room.conversationId }, 'cannot unsubscribe from the bus')
    })
  }

  return {
    async join (conversationId, member) {
      let room = rooms.get(conversationId)
      if (room === undefined) {
        room = open(conversationId)
        rooms.set(conversationId, room)
      }
      if (!room.members.has(member)) {
        room.members.add(member)
        members++
      }
      try {
        await room.ready
      } catch (error) {
        if (room.members.delete(member)) members--
        throw error
      }
    },

    leave,

    position (conversationId) {
      const room = rooms.get(conversationId)
      return room === undefined || room.nextSeq === 0 ? undefined : room.nextSeq - 1
    },

    stats () {
      return { rooms: rooms.size, members }
    }
  }
}

export default fp(async (fastify) => {
  fastify.decorate('rooms', createRooms({ db: fastify.db, bus: fastify.bus, log: fastify.log }))
}, { name: 'rooms', dependencies: ['chat', 'feed'] })
