// The answer to a client frame whose handler threw: an error frame, in the protocol's codes.
import { ChatError, MessageNotFoundError } from '@chatty/chat'
import { errorFrame, type Ref } from '../frames.ts'
import type { FrameContext } from '../context.ts'

export function answerFailure (session: FrameContext, error: unknown, ref: Ref | undefined): void {
  if (error instanceof ChatError) {
    // The websocket speaks three codes (docs/design.md section 4): a conversation that does not
    // exist is one the user cannot use; a message that is not in it, or that was deleted, is
    // a wrong request.
    const wrong = error.code === 'bad_request' || error.code === 'conflict' || error instanceof MessageNotFoundError
    session.send(errorFrame(wrong ? 'bad_request' : 'forbidden', error.message, ref))
    return
  }
  session.log.error({ err: error, user: session.userId }, 'websocket frame failed')
  session.send(errorFrame('internal_error', 'internal error', ref))
}
