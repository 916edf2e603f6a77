// The websocket contract of GET /api/v1/chat/ws (go-chatty's protocol, docs/design.md section 4, plus
// the extensions old clients can ignore: ref, since_seq, joined.last_seq, sent). docs/protocol.md
// describes it with examples. The frames are written in snake_case; a socket opened with ?userId=
// speaks them in go-chatty's camelCase instead (socket/frames.ts renames them).
import { Type } from 'typebox'
import { LIMITS, PIN_LIMIT, REACTION_LIMITS } from '@chatty/chat'
import { UuidSchema } from './common.ts'
import { MessageSchema, ParentIdSchema } from './chat.ts'

export const WsQuerySchema = Type.Object({
  user_id: Type.Optional(Type.String({ format: 'uuid', description: 'Who connects; required with AUTH_MODE=none, with a token it must be the token\'s user' })),
  access_token: Type.Optional(Type.String({ description: 'A bearer token, for clients that cannot set the Authorization header (AUTH_MODE=jwt)' })),
  presence: Type.Optional(Type.Boolean({ description: 'true: receive presence frames about the members of joined conversations (off by default, so go-chatty clients see go-chatty\'s frames)' }))
})

export const RefSchema = Type.Union([Type.String({ maxLength: 128 }), Type.Number()], {
  description: 'Any client frame may carry a ref; the reply to that frame echoes it'
})

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

// --- client -> server ----------------------------------------------------------------------------

export const JoinFrameSchema = Type.Object({
  type: Type.Literal('join'),
  conversation_id: UuidSchema,
  since_seq: Type.Optional(Type.Integer({ minimum: 0, description: 'Replay the stored messages after this seq before live ones' })),
  ref: Type.Optional(RefSchema)
})

export const LeaveFrameSchema = Type.Object({
  type: Type.Literal('leave'),
  conversation_id: UuidSchema,
  ref: Type.Optional(RefSchema)
})

export const SendFrameSchema = Type.Object({
  type: Type.Literal('message'),
  conversation_id: UuidSchema,
  body: Type.Optional(Nullable(Type.String())),
  msg_type: Type.Optional(Nullable(Type.Integer())),
  attachment_url: Type.Optional(Nullable(Type.String())),
  attachment_meta: Type.Optional(Type.Unknown()),
  dedupe_key: Type.Optional(Nullable(Type.String())),
  parent_id: Type.Optional(ParentIdSchema),
  // The count is the send rule's to refuse (its error names the limit), not the schema's.
  mentioned_user_ids: Type.Optional(Type.Union([Type.Array(UuidSchema), Type.Null()], { description: 'Members the message mentions: at most ' + LIMITS.mentions + ', each once, each a member of the conversation' })),
  ref: Type.Optional(RefSchema)
})

export const ReadFrameSchema = Type.Object({
  type: Type.Literal('read'),
  conversation_id: UuidSchema,
  message_id: Type.String({ format: 'uuid', description: 'The last message read: it and every message before it are read' }),
  ref: Type.Optional(RefSchema)
}, { description: 'Moves the socket user\'s read position forwards (never back) and writes a read receipt' })

export const DeliveredFrameSchema = Type.Object({
  type: Type.Literal('delivered'),
  conversation_id: UuidSchema,
  message_id: Type.String({ format: 'uuid', description: 'A message this device received' }),
  ref: Type.Optional(RefSchema)
}, { description: 'Records a delivered receipt (status 0) for the socket user' })

export const TypingFrameSchema = Type.Object({
  type: Type.Literal('typing'),
  conversation_id: UuidSchema,
  ref: Type.Optional(RefSchema)
}, { description: 'The socket user is typing: passed on to the other members\' joined sockets (at most one per 2.5 s per socket and conversation), not stored, not answered' })

export const EditFrameSchema = Type.Object({
  type: Type.Literal('edit'),
  conversation_id: UuidSchema,
  message_id: Type.String({ format: 'uuid', description: 'A message of the socket user in this conversation' }),
  body: Type.Union([Type.String(), Type.Null()], { description: `The new body, by a send's rules (trimmed, at most ${LIMITS.bodyLength} characters); empty only on a message with an attachment` }),
  ref: Type.Optional(RefSchema)
}, { description: 'Replaces the body of one of the socket user\'s messages: a message_updated frame goes to every joined socket' })

export const DeleteFrameSchema = Type.Object({
  type: Type.Literal('delete'),
  conversation_id: UuidSchema,
  message_id: Type.String({ format: 'uuid', description: 'A message of the socket user in this conversation' }),
  ref: Type.Optional(RefSchema)
}, { description: 'Deletes one of the socket user\'s messages (it stays in history as a tombstone): a message_deleted frame goes to every joined socket' })

const reactionFrame = (type: 'react' | 'unreact', description: string) => Type.Object({
  type: Type.Literal(type),
  conversation_id: UuidSchema,
  message_id: Type.String({ format: 'uuid', description: 'A message of this conversation' }),
  reaction: Type.String({ maxLength: REACTION_LIMITS.length * 4, description: `1 to ${REACTION_LIMITS.length} characters, no whitespace: an emoji or a :shortcode:` }),
  ref: Type.Optional(RefSchema)
}, { description })

export const ReactFrameSchema = reactionFrame('react', 'Adds the socket user\'s reaction to a message: a reaction_added frame goes to every joined socket (nothing when already reacted so)')
export const UnreactFrameSchema = reactionFrame('unreact', 'Removes the socket user\'s reaction: a reaction_removed frame goes to every joined socket (nothing when there was none)')

const pinFrame = (type: 'pin' | 'unpin', description: string) => Type.Object({
  type: Type.Literal(type),
  conversation_id: UuidSchema,
  message_id: Type.String({ format: 'uuid', description: 'A message of this conversation' }),
  ref: Type.Optional(RefSchema)
}, { description })

export const PinFrameSchema = pinFrame('pin', `Pins a message for every member (at most ${PIN_LIMIT} per conversation): a message_pinned frame goes to every joined socket`)
export const UnpinFrameSchema = pinFrame('unpin', 'Unpins a message: a message_unpinned frame goes to every joined socket')

export const ClientFrameSchema = Type.Union([JoinFrameSchema, LeaveFrameSchema, SendFrameSchema, ReadFrameSchema, DeliveredFrameSchema, TypingFrameSchema, EditFrameSchema, DeleteFrameSchema,
  ReactFrameSchema, UnreactFrameSchema, PinFrameSchema, UnpinFrameSchema])

// --- server -> client ----------------------------------------------------------------------------

const OptionalRef = Type.Optional(RefSchema)

export const ConnectedFrameSchema = Type.Object({ type: Type.Literal('connected') })

export const JoinedFrameSchema = Type.Object({
  type: Type.Literal('joined'),
  conversation_id: UuidSchema,
  last_seq: Type.Integer({ description: 'Every message after this seq follows this frame on this socket' }),
  ref: OptionalRef
})

export const LeftFrameSchema = Type.Object({ type: Type.Literal('left'), conversation_id: UuidSchema, ref: OptionalRef })

export const MessageFrameSchema = Type.Object({
  type: Type.Literal('message'),
  conversation_id: UuidSchema,
  message: MessageSchema
})

export const SentFrameSchema = Type.Object({
  type: Type.Literal('sent'),
  conversation_id: UuidSchema,
  message: MessageSchema,
  ref: RefSchema
}, { description: 'Acknowledges a message frame that carried a ref, once the message is stored' })

export const ReadEventFrameSchema = Type.Object({
  type: Type.Literal('read'),
  conversation_id: UuidSchema,
  user_id: UuidSchema,
  message_id: UuidSchema,
  seq: Type.Integer({ description: 'The seq of message_id: user_id has read every message up to it' }),
  unread_count: Type.Optional(Type.Integer({ description: 'Only in the reply to the reader: their unread messages left (at most 1000)' })),
  ref: OptionalRef
}, { description: 'A member\'s read position moved: broadcast to every socket joined to the conversation, and the reply to a read frame (with its ref)' })

export const DeliveredEventFrameSchema = Type.Object({
  type: Type.Literal('delivered'),
  conversation_id: UuidSchema,
  user_id: UuidSchema,
  message_id: UuidSchema,
  seq: Type.Integer(),
  ref: RefSchema
}, { description: 'The reply to a delivered frame that carried a ref' })

const changeFrame = (type: 'message_updated' | 'message_deleted', description: string) => Type.Object({
  type: Type.Literal(type),
  conversation_id: UuidSchema,
  seq: Type.Integer({ description: 'The event\'s own seq in the conversation\'s order (the message keeps its seq); resume after it with since_seq' }),
  message: MessageSchema
}, { description })

export const MessageUpdatedFrameSchema = changeFrame('message_updated',
  'A message was edited: `message` is the message as history now shows it (new body, edited_at). Sent to every joined socket in seq order, and replayed after since_seq')

export const MessageDeletedFrameSchema = changeFrame('message_deleted',
  'A message was deleted: `message` is its tombstone (body, attachment_url and attachment_meta null, deleted_at set). Sent to every joined socket in seq order, and replayed after since_seq')

const ackFrame = (type: 'edited' | 'deleted', description: string) => Type.Object({
  type: Type.Literal(type),
  conversation_id: UuidSchema,
  seq: Type.Union([Type.Integer(), Type.Null()], { description: 'The event\'s seq; null when nothing changed (the same body again, or already deleted)' }),
  message: MessageSchema,
  ref: RefSchema
}, { description })

export const EditedFrameSchema = ackFrame('edited', 'Acknowledges an edit frame that carried a ref, once stored')
export const DeletedFrameSchema = ackFrame('deleted', 'Acknowledges a delete frame that carried a ref, once stored')

const reactionEventFrame = (type: 'reaction_added' | 'reaction_removed', description: string) => Type.Object({
  type: Type.Literal(type),
  conversation_id: UuidSchema,
  seq: Type.Integer({ description: 'The event\'s own seq in the conversation\'s order; resume after it with since_seq' }),
  message_id: UuidSchema,
  user_id: UuidSchema,
  reaction: Type.String(),
  reactions: Type.Record(Type.String(), Type.Integer(), { description: 'The message\'s reactions now: reaction -> count' })
}, { description })

export const ReactionAddedFrameSchema = reactionEventFrame('reaction_added', 'A member reacted to a message. Sent to every joined socket in seq order, and replayed after since_seq')
export const ReactionRemovedFrameSchema = reactionEventFrame('reaction_removed', 'A member removed their reaction. Sent to every joined socket in seq order, and replayed after since_seq')

const pinEventFrame = (type: 'message_pinned' | 'message_unpinned', description: string) => Type.Object({
  type: Type.Literal(type),
  conversation_id: UuidSchema,
  seq: Type.Integer({ description: 'The event\'s own seq in the conversation\'s order (the message keeps its seq); resume after it with since_seq' }),
  message: MessageSchema
}, { description })

export const MessagePinnedFrameSchema = pinEventFrame('message_pinned', 'A member pinned a message (pinned_at, pinned_by set). Sent to every joined socket in seq order, and replayed after since_seq')
export const MessageUnpinnedFrameSchema = pinEventFrame('message_unpinned',
  'A message was unpinned, by a member or because it was deleted (the message_deleted frame comes first). Sent to every joined socket in seq order, and replayed after since_seq')

export const ReactedFrameSchema = Type.Object({
  type: Type.Union([Type.Literal('reacted'), Type.Literal('unreacted')]),
  conversation_id: UuidSchema,
  seq: Type.Union([Type.Integer(), Type.Null()], { description: 'The event\'s seq; null when nothing changed' }),
  message_id: UuidSchema,
  user_id: UuidSchema,
  reaction: Type.String(),
  reactions: Type.Record(Type.String(), Type.Integer()),
  ref: RefSchema
}, { description: 'Acknowledges a react (reacted) or unreact (unreacted) frame that carried a ref, once stored' })

export const PinnedAckFrameSchema = Type.Object({
  type: Type.Union([Type.Literal('pinned'), Type.Literal('unpinned')]),
  conversation_id: UuidSchema,
  seq: Type.Union([Type.Integer(), Type.Null()], { description: 'The event\'s seq; null when nothing changed' }),
  message: MessageSchema,
  ref: RefSchema
}, { description: 'Acknowledges a pin (pinned) or unpin (unpinned) frame that carried a ref, once stored' })

export const TypingEventFrameSchema = Type.Object({
  type: Type.Literal('typing'),
  conversation_id: UuidSchema,
  user_id: UuidSchema
}, { description: 'Another member is typing; sent to every joined socket but the typist\'s own' })

export const ErrorCodeSchema = Type.Union([
  Type.Literal('bad_request'), Type.Literal('forbidden'), Type.Literal('rate_limited'), Type.Literal('internal_error'),
  Type.Literal('unsupported_type', { description: 'camelCase dialect only: a missing or unknown frame type (go-chatty\'s code; snake_case sockets get bad_request)' })
])

export const ErrorFrameSchema = Type.Object({
  type: Type.Literal('error'),
  code: ErrorCodeSchema,
  error: Type.String(),
  retry_after_ms: Type.Optional(Type.Integer({ description: 'rate_limited only: when the socket may send its next frame' })),
  ref: OptionalRef
})

export const RemovedFrameSchema = Type.Object({
  type: Type.Literal('removed'),
  conversation_id: UuidSchema,
  user_id: UuidSchema
}, { description: 'The user was removed from (or left) the conversation: the socket is no longer joined to it' })
