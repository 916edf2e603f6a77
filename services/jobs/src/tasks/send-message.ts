// chat:send_message: stores a message accepted by POST /api/v1/chat/:chat_id, then publishes it
// through the conversation feed to its live members. Idempotent: the message id was chosen at accept time, so a
// retried job finds its row instead of storing a second one, and only re-publishes (and queues
// its offline notification, chat:notify_offline, again: a no-op while the first is unfinished).
// The sender is checked again as the message is stored: a sender removed from the conversation,
// or blocked by the other member of a direct one, after the send was accepted is refused. Nothing
// is stored, and the job ends in the failed state at once (no retries: the answer will not
// change) with an error that says why.
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import { BlockedError, ConversationNotFoundError, InvalidInputError, LIMITS, NotParticipantError, storeMessage, type Chat, type ConversationFeed, type Message } from '@chatty/chat'
import { PermanentJobError, type Handler } from '@chatty/queue'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

export const SendMessagePayloadSchema = Type.Object({
  message_id: Type.String({ format: 'uuid' }),
  conversation_id: Type.String({ format: 'uuid' }),
  sender_id: Type.String({ format: 'uuid' }),
  content: Type.Object({
    body: Nullable(Type.String()),
    msg_type: Type.Integer({ minimum: 0, maximum: 3 }),
    attachment_url: Nullable(Type.String()),
    attachment_meta: Nullable(Type.String()),
    dedupe_key: Nullable(Type.String({ maxLength: 64 })),
    // Absent from jobs queued before replies and mentions existed.
    parent_id: Type.Optional(Nullable(Type.String({ format: 'uuid' }))),
    mentioned_user_ids: Type.Optional(Type.Array(Type.String({ format: 'uuid' }), { maxItems: LIMITS.mentions }))
  })
})

export interface SendMessageDeps {
  chat: Chat
  /** Live delivery of a stored message (best effort: a failure is logged, members catch up from the database). */
  feed: Pick<ConversationFeed, 'message'>
  /** Queues chat:notify_offline for the stored message; absent without WEBHOOK_URL. */
  notify?: (message: Message) => Promise<void>
  log: { warn (object: object, message: string): void }
}

export function sendMessageTask (deps: SendMessageDeps): Handler<unknown> {
  return async (payload, job) => {
    // Stored jobs can be older than this code: check what is consumed.
    if (!Value.Check(SendMessagePayloadSchema, payload)) {
      deps.log.warn({ job: job.id }, 'chat:send_message dropped: malformed payload')
      return
    }
    let message: Message
    try {
      ({ message } = await storeMessage(deps.chat, {
        id: payload.message_id,
        conversationId: payload.conversation_id,
        senderId: payload.sender_id,
        content: payload.content
      }))
    } catch (error) {
      if (error instanceof ConversationNotFoundError) {
        deps.log.warn({ job: job.id, conversation: payload.conversation_id }, 'chat:send_message dropped: conversation is gone')
        return
      }
      // InvalidInputError: a parent_id that is not a top-level message of the conversation (the
      // api checked it; only a payload that did not come from it gets here).
      if (error instanceof NotParticipantError || error instanceof BlockedError || error instanceof InvalidInputError) {
        throw new PermanentJobError(`message not stored, refused when storing: ${error.message}`)
      }
      throw error
    }
    await deps.feed.message(message)
    await deps.notify?.(message)
  }
}
