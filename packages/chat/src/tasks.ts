// Task names and payloads shared by the api (which enqueues) and the jobs service (which runs).
import type { MessageContent } from './rules.ts'

export const SEND_MESSAGE_TASK = 'chat:send_message'

/** Checked content, with the message id chosen when the send was accepted. */
export interface SendMessagePayload {
  message_id: string
  conversation_id: string
  sender_id: string
  content: MessageContent
}
