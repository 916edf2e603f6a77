// A `leave` frame: the socket stops receiving the conversation (the user stays a participant).
import { leftFrame, type FrameOf } from '../frames.ts'
import type { FrameContext } from '../context.ts'

export function handleLeave (session: FrameContext, frame: FrameOf<'leave'>, conversationId: string): void {
  const membership = session.joined?.get(conversationId)
  if (membership !== undefined) {
    session.joined!.delete(conversationId)
    session.rooms.leave(conversationId, membership)
  }
  session.send(leftFrame(conversationId, frame.ref))
}
