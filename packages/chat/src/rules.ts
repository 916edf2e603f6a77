// Content rules for a message, applied the same way on every path (REST, websocket, jobs).
import type { MessageContent as WrittenContent } from '@chatty/protocol'
import { InvalidInputError } from './errors.ts'

export const MsgType = { text: 0, image: 1, file: 2, system: 3 } as const

export const LIMITS = {
  /** Characters (code points) in a trimmed body. */
  bodyLength: 4000,
  /** Bytes of the serialised attachment_meta JSON. */
  attachmentMetaBytes: 4096,
  attachmentUrlLength: 2048,
  dedupeKeyLength: 64,
  participants: 1000,
  /** Members one message may mention. */
  mentions: 50
} as const

/** What a client writes into a message (@chatty/protocol's MessageContent), before the rules. */
export type MessageInput = WrittenContent

/** A message's content after the rules: what gets stored. */
export interface MessageContent {
  body: string | null
  msg_type: number
  attachment_url: string | null
  /** JSON text for the json column, or null. */
  attachment_meta: string | null
  dedupe_key: string | null
  /**
   * Lower-case uuid of the parent, or null. Optional (absent: null) so stored send jobs from
   * before replies existed still read as content.
   */
  parent_id?: string | null
  /** Lower-case member ids, in the order sent; absent: none. */
  mentioned_user_ids?: string[]
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * What a text column cannot hold as sent: NUL (Postgres refuses it, so the send could never be
 * stored) and lone surrogates (no UTF-8 form: stored as U+FFFD, so distinct dedupe keys collide).
 */
const UNSTORABLE = /[\u0000\p{Cs}]/u

function optionalString (value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'string') throw new InvalidInputError(`${field} must be a string`)
  if (UNSTORABLE.test(value)) throw new InvalidInputError(`${field} must be valid Unicode text without NUL characters`)
  return value
}

/**
 * Checks and normalises what a client sent. Clients may not write system messages (msg_type 3):
 * those record server-side events. A message needs a body or an attachment; image and file
 * messages need an attachment_url.
 */
export function checkMessageInput (input: MessageInput, options: { allowSystem?: boolean } = {}): MessageContent {
  const msgType = input.msg_type ?? MsgType.text
  if (!Number.isInteger(msgType) || msgType < 0 || msgType > 3) {
    throw new InvalidInputError('msg_type must be 0 (text), 1 (image), 2 (file) or 3 (system)')
  }
  if (msgType === MsgType.system && options.allowSystem !== true) {
    throw new InvalidInputError('system messages (msg_type 3) are written by the server only')
  }

  const rawBody = optionalString(input.body, 'body')
  const body = rawBody === null ? null : rawBody.trim()
  if (body !== null && [...body].length > LIMITS.bodyLength) {
    throw new InvalidInputError(`body is longer than ${LIMITS.bodyLength} characters`)
  }

  const attachmentUrl = optionalString(input.attachment_url, 'attachment_url')?.trim() || null
  if (attachmentUrl !== null) {
    if (attachmentUrl.length > LIMITS.attachmentUrlLength) {
      throw new InvalidInputError(`attachment_url is longer than ${LIMITS.attachmentUrlLength} characters`)
    }
    let url: URL
    try {
      url = new URL(attachmentUrl)
    } catch {
      throw new InvalidInputError('attachment_url must be an absolute http(s) URL')
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new InvalidInputError('attachment_url must be an absolute http(s) URL')
    }
  }

  let attachmentMeta: string | null | undefined = null
  if (input.attachment_meta !== undefined && input.attachment_meta !== null) {
    try {
      attachmentMeta = JSON.stringify(input.attachment_meta)
    } catch {
      // Nesting deep enough to exhaust the stack (thousands of levels) is far over the limit anyway.
      attachmentMeta = undefined
    }
    if (attachmentMeta === undefined || Buffer.byteLength(attachmentMeta) > LIMITS.attachmentMetaBytes) {
      throw new InvalidInputError(`attachment_meta is larger than ${LIMITS.attachmentMetaBytes} bytes`)
    }
  }

  const dedupeKey = optionalString(input.dedupe_key, 'dedupe_key')
  if (dedupeKey !== null && (dedupeKey.length === 0 || dedupeKey.length > LIMITS.dedupeKeyLength)) {
    throw new InvalidInputError(`dedupe_key must be 1 to ${LIMITS.dedupeKeyLength} characters`)
  }

  const hasBody = body !== null && body.length > 0
  if ((msgType === MsgType.image || msgType === MsgType.file) && attachmentUrl === null) {
    throw new InvalidInputError('image and file messages need an attachment_url')
  }
  if (msgType !== MsgType.system && !hasBody && attachmentUrl === null) {
    throw new InvalidInputError('a message needs a body or an attachment')
  }

  return {
    body: hasBody ? body : null,
    msg_type: msgType,
    attachment_url: attachmentUrl,
    attachment_meta: attachmentMeta,
    dedupe_key: dedupeKey,
    parent_id: checkParentId(input.parent_id),
    mentioned_user_ids: checkMentions(input.mentioned_user_ids)
  }
}

function checkParentId (value: unknown): string | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'string' || !UUID.test(value)) throw new InvalidInputError('parent_id must be a uuid')
  return value.toLowerCase()
}

/**
 * Whether each is a member of the conversation is the send's check (requireReplyAndMentions,
 * replies.ts); here only the form: uuids, at most LIMITS.mentions, each once.
 */
function checkMentions (value: unknown): string[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw new InvalidInputError('mentioned_user_ids must be an array of user ids')
  if (value.length > LIMITS.mentions) throw new InvalidInputError(`mentioned_user_ids has more than ${LIMITS.mentions} users`)
  const ids: string[] = []
  for (const id of value) {
    if (typeof id !== 'string' || !UUID.test(id)) throw new InvalidInputError('mentioned_user_ids must be an array of user ids')
    const lower = id.toLowerCase()
    if (ids.includes(lower)) throw new InvalidInputError(`mentioned_user_ids names ${lower} twice`)
    ids.push(lower)
  }
  return ids
}

/**
 * The new body of an edit, by the rules of a send's body: trimmed, at most LIMITS.bodyLength
 * characters, storable text. Empty becomes null; whether the message may lose its body depends
 * on its attachment (see editMessage).
 */
export function checkEditBody (value: unknown): string | null {
  if (value === undefined) throw new InvalidInputError('body is required')
  const raw = optionalString(value, 'body')
  const body = raw === null ? null : raw.trim()
  if (body !== null && [...body].length > LIMITS.bodyLength) {
    throw new InvalidInputError(`body is longer than ${LIMITS.bodyLength} characters`)
  }
  return body === null || body.length === 0 ? null : body
}
