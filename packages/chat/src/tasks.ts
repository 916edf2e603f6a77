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

export const NOTIFY_OFFLINE_TASK = 'chat:notify_offline'

/**
 * A stored message whose offline members are to be told by webhook. The message is read back
 * when the job runs, so the payload stays small and a retry sends what is stored.
 */
export interface NotifyOfflinePayload {
  message_id: string
  conversation_id: string
}

/** Attempts before a webhook delivery ends failed: with the default backoff, 17 to 34 minutes of retries. */
export const NOTIFY_OFFLINE_MAX_ATTEMPTS = 12

/**
 * The `chat:notify_offline` job of a stored message. The unique key is the message's, so the
 * send paths' own retries (a job that stored the message and then failed, a client resending
 * with its dedupe_key) do not queue a second delivery while the first is unfinished.
 */
export function notifyOfflineJob (message: { id: string, conversation_id: string }): {
  task: { type: string, payload: NotifyOfflinePayload }
  uniqueKey: string
  maxAttempts: number
} {
  return {
    task: { type: NOTIFY_OFFLINE_TASK, payload: { message_id: message.id, conversation_id: message.conversation_id } },
    uniqueKey: `notify_offline:${message.id}`,
    maxAttempts: NOTIFY_OFFLINE_MAX_ATTEMPTS
  }
}
