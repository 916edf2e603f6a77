// chat:notify_offline: tells a webhook which members of a conversation missed a message because
// no socket of theirs is open (docs/webhooks.md is the receiver's side). Recipients are worked
// out when the attempt runs: members other than the sender, not muted (or mentioned by the
// message: a mention reaches a muted member), with no websocket on any api process (the presence
// store). mentioned_recipient_ids marks which of them were mentioned. Nobody left: no request. Anything but a 2xx within the
// timeout throws, and the queue retries with its backoff; the delivery id stays the same.
import { createHmac } from 'node:crypto'
import type { Kysely } from 'kysely'
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import type { Database } from '@chatty/db'
import { notifiableMembers, toMessage } from '@chatty/chat'
import type { PresenceStore } from '@chatty/presence'
import type { Handler } from '@chatty/queue'

export const NotifyOfflinePayloadSchema = Type.Object({
  message_id: Type.String({ format: 'uuid' }),
  conversation_id: Type.String({ format: 'uuid' })
})

/** The event name in the body and the X-Chatty-Event header. */
export const OFFLINE_EVENT = 'message.offline'

export interface WebhookTarget {
  url: string
  secret: string
  timeoutMs: number
}

export interface NotifyOfflineDeps {
  db: Kysely<Database>
  /** Both absent when this jobs process has no WEBHOOK_URL: jobs queued by an api that has one are dropped. */
  presence: Pick<PresenceStore, 'online'> | undefined
  webhook: WebhookTarget | undefined
  log: { warn (object: object, message: string): void }
}

/** `sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`: what X-Chatty-Signature carries. */
export function webhookSignature (secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

export function notifyOfflineTask (deps: NotifyOfflineDeps): Handler<unknown> {
  return async (payload, job) => {
    if (!Value.Check(NotifyOfflinePayloadSchema, payload)) {
      deps.log.warn({ job: job.id }, 'chat:notify_offline dropped: malformed payload')
      return
    }
    const { webhook, presence } = deps
    if (webhook === undefined || presence === undefined) {
      deps.log.warn({ job: job.id }, 'chat:notify_offline dropped: this jobs process has no WEBHOOK_URL')
      return
    }
    const row = await deps.db.selectFrom('chat.message').selectAll()
      .where('id', '=', payload.message_id)
      .where('conversation_id', '=', payload.conversation_id)
      .executeTakeFirst()
    if (row === undefined) {
      deps.log.warn({ job: job.id, message: payload.message_id }, 'chat:notify_offline dropped: the message is gone')
      return
    }
    if (row.deleted_at !== null) {
      // Deleted by its sender before the notification went out: nothing left to tell.
      deps.log.warn({ job: job.id, message: payload.message_id }, 'chat:notify_offline dropped: the message was deleted')
      return
    }
    const message = toMessage(row)
    const members = await notifiableMembers(deps.db, message.conversation_id, message.sender_id, message.mentioned_user_ids)
    const online = await presence.online(members)
    const recipients = members.filter((userId) => !online.has(userId))
    if (recipients.length === 0) return

    const deliveryId = message.id
    const body = JSON.stringify({
      event: OFFLINE_EVENT,
      delivery_id: deliveryId,
      conversation_id: message.conversation_id,
      message,
      recipient_ids: recipients,
      mentioned_recipient_ids: recipients.filter((userId) => message.mentioned_user_ids.includes(userId.toLowerCase()))
    })
    const timestamp = String(Math.floor(Date.now() / 1000))
    let response: Response
    try {
      response = await fetch(webhook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'chatty-webhook/1',
          'x-chatty-event': OFFLINE_EVENT,
          'x-chatty-delivery': deliveryId,
          'x-chatty-attempt': String(job.attempt),
          'x-chatty-timestamp': timestamp,
          'x-chatty-signature': webhookSignature(webhook.secret, timestamp, body)
        },
        body,
        // A redirect is an answer other than 2xx: the configured URL is the only target.
        redirect: 'manual',
        signal: AbortSignal.any([job.signal, AbortSignal.timeout(webhook.timeoutMs)])
      })
    } catch (error) {
      const reason = error instanceof Error && error.name === 'TimeoutError' ? `no answer within ${webhook.timeoutMs} ms` : String((error as Error).message ?? error)
      throw new Error(`webhook ${new URL(webhook.url).host}: ${reason}`)
    }
    // The body is not needed; reading it frees the connection for reuse.
    await response.arrayBuffer().catch(() => undefined)
    if (response.status < 200 || response.status > 299) {
      throw new Error(`webhook ${new URL(webhook.url).host} answered ${response.status}`)
    }
  }
}
