// The REST contract of /api/v1/chat (go-chatty's routes, docs/design.md section 4).
// Bodies and query strings also take go-chatty's camelCase spellings (withCamelAliases); answers
// are snake_case, but for the send's 202, which carries go-chatty's own answer in both spellings.
import { Type } from 'typebox'
import { LIMITS } from '@chatty/chat'
import { UuidSchema } from './common.ts'
import { withCamelAliases } from '../camel-case.ts'

export const ChatParamsSchema = Type.Object({ chat_id: UuidSchema })

export const CreateChatBodySchema = withCamelAliases(Type.Object({
  participant_ids: Type.Array(UuidSchema, { minItems: 1, maxItems: LIMITS.participants, description: 'Members of the new conversation; repeats are ignored' }),
  tenant_id: Type.Optional(Type.Union([UuidSchema, Type.Null()])),
  creator_id: Type.Optional(Type.String({ format: 'uuid', description: 'The creator: a member and the conversation\'s owner. With a token it defaults to the token\'s user and must match it' }))
}, { additionalProperties: false }))

export const ChatCreatedSchema = Type.Object({
  id: UuidSchema,
  created_at: Type.String({ format: 'date-time' }),
  participant_ids: Type.Array(UuidSchema)
})

const JsonValue = Type.Unknown({ description: 'Any JSON value, at most 4096 bytes serialised' })

/** What a send may carry to make a reply (section 8); shared with the websocket's message frame. */
export const ParentIdSchema = Type.Union([UuidSchema, Type.Null()], {
  description: 'Makes the message a reply to this one: a message of the same conversation that is not itself a reply'
})

export const MentionedUserIdsSchema = Type.Union([Type.Array(UuidSchema, { maxItems: LIMITS.mentions }), Type.Null()], {
  description: `Members the message mentions: at most ${LIMITS.mentions}, each once, each a member of the conversation`
})

const DateTimeOrNull = Type.Union([Type.String({ format: 'date-time' }), Type.Null()])

export const SendMessageBodySchema = withCamelAliases(Type.Object({
  sender_id: Type.Optional(Type.String({ format: 'uuid', description: 'Required with AUTH_MODE=none; with a token it defaults to the token\'s user and must match it' })),
  body: Type.Optional(Type.Union([Type.String({ maxLength: LIMITS.bodyLength * 2 }), Type.Null()], { description: `Trimmed; at most ${LIMITS.bodyLength} characters` })),
  msg_type: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 3 }), Type.Null()], { description: '0 text, 1 image, 2 file (3 system is server-only)' })),
  attachment_url: Type.Optional(Type.Union([Type.String({ maxLength: LIMITS.attachmentUrlLength }), Type.Null()])),
  attachment_meta: Type.Optional(JsonValue),
  dedupe_key: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: LIMITS.dedupeKeyLength }), Type.Null()], { description: 'A retried send with the same key stores one message' })),
  parent_id: Type.Optional(ParentIdSchema),
  mentioned_user_ids: Type.Optional(MentionedUserIdsSchema)
}, { additionalProperties: false }))

export const SendAcceptedSchema = Type.Object({
  task_id: Type.String({ description: 'The queued job that stores the message' }),
  message_id: UuidSchema,
  status: Type.Literal('queued', { description: 'go-chatty\'s answer, kept for its clients' }),
  chat_id: Type.String({ format: 'uuid', description: 'The conversation, as in the path (go-chatty\'s answer)' }),
  sender_id: Type.String({ format: 'uuid', description: 'The sender (go-chatty\'s answer)' }),
  taskId: Type.String({ description: 'task_id as go-chatty answered after it moved to camelCase' }),
  chatId: Type.String({ format: 'uuid', description: 'chat_id as go-chatty answered after it moved to camelCase' }),
  senderId: Type.String({ format: 'uuid', description: 'sender_id as go-chatty answered after it moved to camelCase' })
})

export const MessageSchema = Type.Object({
  id: UuidSchema,
  conversation_id: UuidSchema,
  sender_id: UuidSchema,
  seq: Type.Integer({ description: 'Per-conversation order, starting at 1. Edits and deletes take seqs of their own, so the seqs of messages may skip; messages and events together are gap-free' }),
  created_at: Type.String({ format: 'date-time' }),
  body: Type.Union([Type.String(), Type.Null()]),
  msg_type: Type.Integer(),
  attachment_url: Type.Union([Type.String(), Type.Null()]),
  attachment_meta: JsonValue,
  dedupe_key: Type.Union([Type.String(), Type.Null()]),
  edited_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the sender last edited the body; null if never' }),
  deleted_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'When the sender deleted it; the message is then a tombstone (body, attachment_url and attachment_meta null)'
  }),
  parent_id: Type.Union([UuidSchema, Type.Null()], { description: 'The message this one replies to; null for a top-level message' }),
  reply_count: Type.Integer({ description: 'Replies to this message (0 for a reply)' }),
  last_reply_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the latest reply was sent; null without replies' }),
  mentioned_user_ids: Type.Array(UuidSchema, { description: 'Members the sender mentioned; [] when none' }),
  reactions: Type.Record(Type.String(), Type.Integer(), { description: 'reaction -> how many members reacted so; {} when none' }),
  pinned_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When a member pinned it; null unless pinned' }),
  pinned_by: Type.Union([UuidSchema, Type.Null()], { description: 'Who pinned it; null unless pinned' })
})

/** Larger cursors are beyond any stored seq and beyond what a bigint parameter or a double holds exactly. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER

export const ListMessagesQuerySchema = withCamelAliases(Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
  offset: Type.Integer({ minimum: 0, maximum: 100000, default: 0 }),
  before_seq: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SEQ, description: 'Only messages before this seq (the page just before it)' })),
  after_seq: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SEQ, description: 'Only messages after this seq (the page just after it)' })),
  around_seq: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: MAX_SEQ,
    description: 'The messages on both sides of this seq: it and older ones fill half the page, newer ones the other half ' +
      '(a side with fewer leaves its places to the other). Not with before_seq, after_seq or offset'
  })),
  parent_id: Type.Optional(Type.String({ format: 'uuid', description: 'A thread: only the replies to this message, with the same paging and cursors' })),
  top_level: Type.Optional(Type.Boolean({ description: 'true leaves replies out. Not with parent_id' }))
}, { additionalProperties: false }))

export const MessagePageSchema = Type.Object({
  messages: Type.Array(MessageSchema, { description: 'Newest first' }),
  limit: Type.Integer(),
  offset: Type.Integer(),
  count: Type.Integer({ description: 'How many messages this page holds' })
})

export const RoleSchema = Type.Union([Type.Literal('member'), Type.Literal('owner')], { description: 'Owners may add and remove members' })

export const ParticipantsSchema = Type.Object({
  participant_ids: Type.Array(UuidSchema),
  participants: Type.Array(Type.Object({ user_id: UuidSchema, role: RoleSchema }), { description: 'The same members with their roles' })
})

export const ParticipantParamsSchema = Type.Object({ chat_id: UuidSchema, user_id: UuidSchema })

const ActorIdSchema = Type.String({ format: 'uuid', description: 'Who makes the change: required with AUTH_MODE=none; with a token it defaults to the token\'s user and must match it' })

export const AddParticipantsBodySchema = withCamelAliases(Type.Object({
  user_ids: Type.Array(UuidSchema, { minItems: 1, maxItems: LIMITS.participants, description: 'Users to add; members already in are ignored' }),
  actor_id: Type.Optional(ActorIdSchema)
}, { additionalProperties: false }))

export const ActorQuerySchema = withCamelAliases(Type.Object({ actor_id: Type.Optional(ActorIdSchema) }, { additionalProperties: false }))

export const MembershipChangeSchema = Type.Object({
  conversation_id: UuidSchema,
  participant_ids: Type.Array(UuidSchema, { description: 'Every member after the change' }),
  message: Type.Union([MessageSchema, Type.Null()], { description: 'The system message (msg_type 3) recording the change; null when nothing changed' })
})

export const ReaderHeadersSchema = Type.Object({
  'x-user-id': Type.Optional(UuidSchema)
})

export const MuteBodySchema = withCamelAliases(Type.Object({
  user_id: Type.Optional(Type.String({ format: 'uuid', description: 'Required with AUTH_MODE=none; with a token, the token\'s user' })),
  until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'Muted until this instant; null unmutes' })
}, { additionalProperties: false }))

export const MuteSchema = Type.Object({
  conversation_id: UuidSchema,
  user_id: UuidSchema,
  muted_until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
})

export const ReadBodySchema = withCamelAliases(Type.Object({
  user_id: Type.Optional(Type.String({ format: 'uuid', description: 'The reader; required with AUTH_MODE=none, with a token it defaults to the token\'s user and must match it' })),
  message_id: Type.String({ format: 'uuid', description: 'The last message read: it and every message before it are read' })
}, { additionalProperties: false }))

export const ReadPositionSchema = Type.Object({
  conversation_id: UuidSchema,
  user_id: UuidSchema,
  message_id: Type.String({ format: 'uuid', description: 'The read position after the call: the message named, or a later one already read' }),
  seq: Type.Integer({ description: 'The seq of message_id' }),
  unread_count: Type.Integer({ description: 'Messages of others after the position (counting stops at 1000)' })
})

export const MessageParamsSchema = Type.Object({ chat_id: UuidSchema, message_id: UuidSchema })

const SenderIdSchema = Type.String({ format: 'uuid', description: 'Who edits or deletes: the message\'s sender. Required with AUTH_MODE=none; with a token it defaults to the token\'s user and must match it' })

export const EditMessageBodySchema = withCamelAliases(Type.Object({
  sender_id: Type.Optional(SenderIdSchema),
  body: Type.Union([Type.String({ maxLength: LIMITS.bodyLength * 2 }), Type.Null()], {
    description: `The new body: trimmed, at most ${LIMITS.bodyLength} characters; empty or null only on a message with an attachment`
  })
}, { additionalProperties: false }))

export const SenderQuerySchema = withCamelAliases(Type.Object({ sender_id: Type.Optional(SenderIdSchema) }, { additionalProperties: false }))

export const MessageChangeSchema = Type.Object({
  conversation_id: UuidSchema,
  seq: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The seq of the edit or delete (its own, after every earlier message); null when nothing changed (the same body again, or already deleted)'
  }),
  message: MessageSchema
})
