// A `join` frame: the socket becomes a member of the conversation's room and, with since_seq,
// first gets what it missed (replay.ts); live entries that arrive meanwhile wait in the
// membership's backlog, so the client sees every entry once, in seq order.
import { ChatError, lastSeq, NotParticipantError, requireParticipant } from '@chatty/chat'
import { joinedFrame, type FrameOf } from '../frames.ts'
import type { FrameContext } from '../context.ts'
import { Membership } from '../membership.ts'
import { replay } from './replay.ts'

export async function handleJoin (session: FrameContext, frame: FrameOf<'join'>, conversationId: string): Promise<void> {
  const { rooms } = session
  const current = session.joined?.get(conversationId)
  if (current !== undefined) {
    // Already joined on this socket: nothing to replay, the stream never stopped.
    session.send(joinedFrame(conversationId, Math.max(current.lastSent, rooms.position(conversationId) ?? 0), frame.ref))
    return
  }
  // The slot is held from before the membership query until the membership takes it, so
  // joins running side by side cannot all pass the check.
  const { maxJoined } = session.context
  if ((session.joined?.size ?? 0) + session.joining >= maxJoined) {
    throw new ChatError('bad_request', `a socket may join at most ${maxJoined} conversations`)
  }
  session.joining++
  try {
    await requireParticipant(session.chat, conversationId, session.userId)
  } finally {
    session.joining--
  }
  if (session.closed) return
  const joined = session.joined ??= new Map()
  const membership = new Membership(session, conversationId)
  joined.set(conversationId, membership)
  try {
    // Live messages reach the backlog from here on; the replay below reads the database after
    // this, so together they miss nothing, and seq drops what both carry.
    await rooms.join(conversationId, membership)
    if (frame.since_seq !== undefined) {
      // Later entries reach the backlog. A since_seq from the future (another database, a bug)
      // would hide the next messages.
      const until = await lastSeq(session.chat.db, conversationId)
      membership.lastSent = Math.min(frame.since_seq, until)
      await replay(session, membership, until)
    }
  } catch (error) {
    drop(session, membership)
    throw error
  }
  if (session.closed) return
  const backlog = membership.backlog ?? []
  session.backlogBytes -= membership.backlogBytes
  membership.backlog = null
  membership.backlogBytes = 0
  // Removed from the conversation while joining: the room let go of the membership.
  if (joined.get(conversationId) !== membership) throw new NotParticipantError()
  for (const { seq, frame: data } of backlog) membership.deliver(seq, data)
  session.send(joinedFrame(conversationId, Math.max(membership.lastSent, rooms.position(conversationId) ?? 0), frame.ref))
}

/** A join that failed half way lets go of its room and its backlog. */
function drop (session: FrameContext, membership: Membership): void {
  const { conversationId } = membership
  if (session.joined?.get(conversationId) === membership) {
    session.joined.delete(conversationId)
    session.rooms.leave(conversationId, membership)
  }
  session.backlogBytes -= membership.backlogBytes
  membership.backlog = null
  membership.backlogBytes = 0
}
