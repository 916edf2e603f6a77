// Which handler takes which client frame: one file per frame type (or pair of opposite types) in
// this folder, as go-chatty keeps one file per use case. The session (../session.ts) parses and
// orders frames and calls dispatch; the handlers see the socket only as a FrameContext.
import type { ClientFrame } from '../frames.ts'
import type { FrameContext } from '../context.ts'
import { handleJoin } from './join.ts'
import { handleLeave } from './leave.ts'
import { handleMessage } from './message.ts'
import { handleDelete, handleEdit } from './edits.ts'
import { handleReact, handleUnreact } from './reactions.ts'
import { handlePin, handleUnpin } from './pins.ts'
import { handleDelivered, handleRead, handleTyping, type SignalContext } from './signals.ts'

export function dispatch (session: FrameContext & SignalContext, frame: ClientFrame, conversationId: string): Promise<void> | void {
  switch (frame.type) {
    case 'join': return handleJoin(session, frame, conversationId)
    case 'leave': return handleLeave(session, frame, conversationId)
    case 'message': return handleMessage(session, frame, conversationId)
    case 'read': return handleRead(session, frame, conversationId)
    case 'delivered': return handleDelivered(session, frame, conversationId)
    case 'typing': return handleTyping(session, frame, conversationId)
    case 'edit': return handleEdit(session, frame, conversationId)
    case 'delete': return handleDelete(session, frame, conversationId)
    case 'react': return handleReact(session, frame, conversationId)
    case 'unreact': return handleUnreact(session, frame, conversationId)
    case 'pin': return handlePin(session, frame, conversationId)
    case 'unpin': return handleUnpin(session, frame, conversationId)
  }
}
