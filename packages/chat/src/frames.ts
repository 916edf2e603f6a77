// The live broadcast frame of a stored message: one shape whichever path stored it (websocket in
// the api, HTTP through the jobs service), serialised once and sent to every receiver as is.
import type { Message } from './messages.ts'

export function messageFrame (message: Message): string {
  return JSON.stringify({ type: 'message', conversation_id: message.conversation_id, message })
}
