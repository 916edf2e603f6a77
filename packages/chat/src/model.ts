// The message object and the shapes a store takes and answers: types only, shared by the writers
// (messages.ts, group-commit.ts) and the composition root (context.ts).
import type { Message } from '@chatty/protocol'
import type { MessageContent } from './rules.ts'

/** The message object on the wire (@chatty/protocol: one definition for server and client). */
export type { Message } from '@chatty/protocol'

export interface StoreMessageInput {
  /** Chosen up front when the send was accepted, so a retried job finds its own row. */
  id?: string
  conversationId: string
  senderId: string
  content: MessageContent
}

export interface Stored {
  message: Message
  /** False when an earlier send with the same id or dedupe key already stored it. */
  created: boolean
}
