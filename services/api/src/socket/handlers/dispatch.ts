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

type Session = FrameContext & SignalContext
type Handler<T extends ClientFrame['type']> = (session: Session, frame: Extract<ClientFrame, { type: T }>, conversationId: string) => Promise<void> | void

const HANDLERS: { [T in ClientFrame['type']]: Handler<T> } = {
  join: handleJoin,
  leave: handleLeave,
  message: handleMessage,
  read: handleRead,
  delivered: handleDelivered,
  typing: handleTyping,
  edit: handleEdit,
  delete: handleDelete,
  react: handleReact,
  unreact: handleUnreact,
  pin: handlePin,
  unpin: handleUnpin
}

export function dispatch (session: Session, frame: ClientFrame, conversationId: string): Promise<void> | void {
  return (HANDLERS[frame.type] as Handler<ClientFrame['type']>)(session, frame as never, conversationId)
}
