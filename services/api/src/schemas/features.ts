// The REST contract of reactions, pins and search (docs/design.md, "Message features").
import { Type } from 'typebox'
import { PIN_LIMIT, REACTION_LIMITS, SEARCH_QUERY_LENGTH } from '@chatty/chat'
import { UuidSchema } from './common.ts'
import { MessageSchema } from './chat.ts'
import { withCamelAliases } from '../camel-case.ts'

const ReactionSchema = Type.String({
  minLength: 1,
  maxLength: REACTION_LIMITS.length * 4,
  description: `1 to ${REACTION_LIMITS.length} characters, no whitespace: an emoji or a :shortcode: (percent-encoded in the path)`
})

export const ReactionParamsSchema = Type.Object({ chat_id: UuidSchema, message_id: UuidSchema, reaction: ReactionSchema })

export const PinParamsSchema = Type.Object({ chat_id: UuidSchema, message_id: UuidSchema })

const UserIdSchema = Type.String({ format: 'uuid', description: 'Who acts: required with AUTH_MODE=none; with a token it defaults to the token\'s user and must match it' })

export const UserQuerySchema = withCamelAliases(Type.Object({ user_id: Type.Optional(UserIdSchema) }, { additionalProperties: false }))

const NullableSeq = (description: string) => Type.Union([Type.Integer(), Type.Null()], { description })

export const ReactionChangeSchema = Type.Object({
  conversation_id: UuidSchema,
  seq: NullableSeq('The event\'s seq in the conversation\'s order; null when nothing changed (already reacted so, or no such reaction to remove)'),
  message_id: UuidSchema,
  user_id: UuidSchema,
  reaction: Type.String(),
  reactions: Type.Record(Type.String(), Type.Integer(), { description: 'The message\'s reactions after the change: reaction -> count' })
})

const CursorSchema = Type.String({
  minLength: 1,
  maxLength: 300,
  description: 'The next_cursor of the previous page, as it was given (opaque); leave out for the first page'
})

export const ListReactionsQuerySchema = withCamelAliases(Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
  cursor: Type.Optional(CursorSchema),
  reaction: Type.Optional(Type.String({ minLength: 1, maxLength: REACTION_LIMITS.length * 4, description: 'Only the users who reacted with this' }))
}, { additionalProperties: false }))

export const ReactionPageSchema = Type.Object({
  reactions: Type.Array(Type.Object({
    user_id: UuidSchema,
    reaction: Type.String(),
    created_at: Type.String({ format: 'date-time' })
  }), { description: 'Who reacted with what, in the order they reacted' }),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'The cursor of the next page; null on the last page' })
})

export const PinChangeSchema = Type.Object({
  conversation_id: UuidSchema,
  seq: NullableSeq('The event\'s seq in the conversation\'s order; null when nothing changed (already pinned, or not pinned)'),
  message: MessageSchema
})

export const PinListSchema = Type.Object({
  messages: Type.Array(MessageSchema, { description: `The pinned messages, most recently pinned first (at most ${PIN_LIMIT})` })
})

export const SearchQuerySchema = withCamelAliases(Type.Object({
  q: Type.String({ minLength: 1, maxLength: SEARCH_QUERY_LENGTH * 4, description: `1 to ${SEARCH_QUERY_LENGTH} characters in web-search syntax: words, "a phrase", -word, or` }),
  conversation_id: Type.Optional(Type.String({ format: 'uuid', description: 'Only this conversation (the caller must be a member)' })),
  user_id: Type.Optional(Type.String({ format: 'uuid', description: 'Whose conversations are searched: required with AUTH_MODE=none; with a token it defaults to the token\'s user and must match it' })),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  cursor: Type.Optional(CursorSchema)
}, { additionalProperties: false }))

export const SearchPageSchema = Type.Object({
  results: Type.Array(Type.Object({ message: MessageSchema }), { description: 'Matching messages, newest first' }),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'The cursor of the next page (older matches); null on the last page' })
})
