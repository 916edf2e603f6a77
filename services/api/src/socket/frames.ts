// The websocket protocol in one place: reading and checking client frames against the TypeBox
// schemas of schemas/ws.ts, and writing server frames. Nothing here touches a socket.
//
// Two dialects, chosen per socket at the upgrade: snake_case (`?user_id=`, the default) and
// go-chatty's later camelCase (`?userId=`). Frames are built and checked in snake_case; a
// camelCase socket's frames are renamed on the way in (parseClientFrame) and out (camelCaseFrame).
import { isDeepStrictEqual } from 'node:util'
import type { Static } from 'typebox'
import { Compile } from 'typebox/compile'
import type { Message, MessageChange, PinChange, ReactionChange, ReadBroadcast } from '@chatty/chat'
import { camelCase, snakeCase } from '../camel-case.ts'
import type { Dialect } from '../dialect.ts'
import { DeleteFrameSchema, DeliveredFrameSchema, EditFrameSchema, JoinFrameSchema, LeaveFrameSchema, PinFrameSchema, ReactFrameSchema, ReadFrameSchema, RefSchema, SendFrameSchema, TypingFrameSchema, UnpinFrameSchema, UnreactFrameSchema, type ErrorCodeSchema } from '../schemas/ws.ts'

export type Ref = Static<typeof RefSchema>
/** The schema of each client frame type (schemas/ws.ts): what parseClientFrame checks a frame against. */
const FRAME_SCHEMAS = {
  join: JoinFrameSchema,
  leave: LeaveFrameSchema,
  message: SendFrameSchema,
  read: ReadFrameSchema,
  delivered: DeliveredFrameSchema,
  typing: TypingFrameSchema,
  edit: EditFrameSchema,
  delete: DeleteFrameSchema,
  react: ReactFrameSchema,
  unreact: UnreactFrameSchema,
  pin: PinFrameSchema,
  unpin: UnpinFrameSchema
}
type FrameType = keyof typeof FRAME_SCHEMAS
/** A client frame of one type, as parsed (snake_case names in either dialect). */
export type FrameOf<T extends FrameType> = Static<(typeof FRAME_SCHEMAS)[T]>
export type ClientFrame = { [T in FrameType]: FrameOf<T> }[FrameType]
export type ErrorCode = Static<typeof ErrorCodeSchema>

const validators = Object.fromEntries(Object.entries(FRAME_SCHEMAS).map(([type, schema]) => [type, Compile(schema)])) as { [T in FrameType]: ReturnType<typeof Compile<(typeof FRAME_SCHEMAS)[T]>> }
const frameTypes = Object.keys(validators).join(', ')
const refValidator = Compile(RefSchema)

export type Parsed = { frame: ClientFrame } | { error: string, code: ErrorCode, ref?: Ref }

/**
 * A client frame, or why it is refused (bad_request; on a camelCase socket an unknown type is
 * go-chatty's unsupported_type; the socket stays open). The ref of a refused frame is still
 * echoed when it can be read. The frame returned has snake_case names in either dialect.
 */
export function parseClientFrame (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean, dialect: Dialect = 'snake_case'): Parsed {
  if (isBinary) return { error: 'frames are JSON text; binary frames are not accepted', code: 'bad_request' }
  let value: unknown
  try {
    value = JSON.parse(Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data as Buffer).toString())
  } catch {
    return { error: 'invalid JSON', code: 'bad_request' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'a frame must be a JSON object', code: 'bad_request' }
  let object = value as Record<string, unknown>
  let ref: Ref | undefined
  if (object.ref !== undefined) {
    if (!refValidator.Check(object.ref)) return { error: 'ref must be a string of at most 128 characters or a number', code: 'bad_request' }
    ref = object.ref
  }
  if (dialect === 'camelCase') {
    const renamed = fromCamelCase(object)
    if (typeof renamed === 'string') return { error: renamed, code: 'bad_request', ref }
    object = renamed
  }
  const { type } = object
  // go-chatty answers a missing or unknown type with unsupported_type (its camelCase clients know it).
  const unknownType: ErrorCode = dialect === 'camelCase' && (type === undefined || type === null || typeof type === 'string') ? 'unsupported_type' : 'bad_request'
  if (type === undefined) return { error: 'frame must have required property \'type\'', code: unknownType, ref }
  const validator = typeof type === 'string' && Object.hasOwn(validators, type) ? validators[type as keyof typeof validators] : undefined
  if (validator === undefined) return { error: `unknown frame type ${JSON.stringify(type)}; expected one of ${frameTypes}`, code: unknownType, ref }
  if (!validator.Check(object)) {
    const [first] = validator.Errors(object)
    const where = first === undefined || first.instancePath === '' ? 'frame' : first.instancePath.slice(1).replaceAll('/', '.')
    return { error: `${where} ${first?.message ?? 'is invalid'}`, code: 'bad_request', ref }
  }
  return { frame: object as ClientFrame }
}

/** A camelCase client frame with snake_case names (top level only), or why it cannot be read. */
function fromCamelCase (object: Record<string, unknown>): Record<string, unknown> | string {
  const renamed: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(object)) {
    const name = snakeCase(key)
    if (Object.hasOwn(renamed, name) && !isDeepStrictEqual(renamed[name], value)) return `${camelCase(name)} is given twice with different values`
    renamed[name] = value
  }
  return renamed
}

/** ref is added only when the client sent one, so go-chatty clients see go-chatty's frames. */
function withRef<T extends object> (frame: T, ref: Ref | undefined): T & { ref?: Ref } {
  return ref === undefined ? frame : { ...frame, ref }
}

export const CONNECTED_FRAME = JSON.stringify({ type: 'connected' })

export function joinedFrame (conversationId: string, lastSeq: number, ref: Ref | undefined): string {
  return JSON.stringify(withRef({ type: 'joined', conversation_id: conversationId, last_seq: lastSeq }, ref))
}

export function leftFrame (conversationId: string, ref: Ref | undefined): string {
  return JSON.stringify(withRef({ type: 'left', conversation_id: conversationId }, ref))
}

/** Sent to a user's sockets when they are removed from (or leave) a conversation: they are no longer joined to it. */
export function removedFrame (conversationId: string, userId: string): string {
  return JSON.stringify({ type: 'removed', conversation_id: conversationId, user_id: userId })
}

/** The broadcast frames of the seq order, built in packages/chat (frames.ts) for every path. */
export { messageFrame, messageEventFrame, entryFrame } from '@chatty/chat'

export function sentFrame (message: Message, ref: Ref): string {
  return JSON.stringify({ type: 'sent', conversation_id: message.conversation_id, message, ref })
}

/** Acknowledges an edit or delete frame that carried a ref: `edited` / `deleted`. */
export function changedFrame (change: MessageChange, ref: Ref): string {
  const type = change.type === 'message_updated' ? 'edited' : 'deleted'
  return JSON.stringify({ type, conversation_id: change.message.conversation_id, seq: change.seq, message: change.message, ref })
}

/** Acknowledges a react or unreact frame that carried a ref: `reacted` / `unreacted`. */
export function reactionAckFrame (change: ReactionChange, ref: Ref): string {
  const type = change.type === 'reaction_added' ? 'reacted' : 'unreacted'
  const { message } = change
  return JSON.stringify({ type, conversation_id: message.conversation_id, seq: change.seq, message_id: message.id, user_id: change.user_id, reaction: change.reaction, reactions: message.reactions, ref })
}

/** Acknowledges a pin or unpin frame that carried a ref: `pinned` / `unpinned`. */
export function pinAckFrame (change: PinChange, ref: Ref): string {
  const type = change.type === 'message_pinned' ? 'pinned' : 'unpinned'
  return JSON.stringify({ type, conversation_id: change.message.conversation_id, seq: change.seq, message: change.message, ref })
}

export function errorFrame (code: ErrorCode, error: string, ref: Ref | undefined): string {
  return JSON.stringify(withRef({ type: 'error', code, error }, ref))
}

export function rateLimitedFrame (retryAfterMs: number, ref: Ref | undefined): string {
  return JSON.stringify(withRef({ type: 'error', code: 'rate_limited', error: `too many frames on this socket; retry in ${retryAfterMs} ms`, retry_after_ms: retryAfterMs }, ref))
}

/** The reply to a reader: the read position the members see (feed.ts), with the unread count. */
export function readFrame (position: ReadBroadcast, reply: { unread_count: number, ref: Ref | undefined }): string {
  const frame = { type: 'read', conversation_id: position.conversation_id, user_id: position.user_id, message_id: position.message_id, seq: position.seq }
  return JSON.stringify(withRef({ ...frame, unread_count: reply.unread_count }, reply.ref))
}

export function deliveredFrame (conversationId: string, userId: string, message: { message_id: string, seq: number }, ref: Ref): string {
  return JSON.stringify({ type: 'delivered', conversation_id: conversationId, user_id: userId, message_id: message.message_id, seq: message.seq, ref })
}
