// The contract of GET /api/v1/users/:user_id/conversations: a user's inbox.
import { Type } from 'typebox'
import { LISTED_PARTICIPANTS, UNREAD_COUNT_CAP } from '@chatty/chat'
import { UuidSchema } from './common.ts'
import { MessageSchema } from './chat.ts'

/** A cursor-paged list's query: the page size and where the previous page ended. */
export const ConversationListQuerySchema = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  cursor: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 200,
    description: 'The next_cursor of the previous page, as it was given (opaque); leave out for the first page'
  }))
}, { additionalProperties: false })

const DateTime = Type.String({ format: 'date-time' })

export const ConversationSummarySchema = Type.Object({
  id: UuidSchema,
  created_at: DateTime,
  tenant_id: Type.Union([UuidSchema, Type.Null()]),
  last_activity_at: Type.String({ format: 'date-time', description: 'The last message\'s created_at, or the conversation\'s when it has none: the order of the list' }),
  last_message: Type.Union([MessageSchema, Type.Null()]),
  last_seq: Type.Integer({ description: 'The seq of the conversation\'s latest message (0: none)' }),
  last_read_seq: Type.Integer({ description: 'The seq of the user\'s read position (0: nothing read yet)' }),
  unread_count: Type.Integer({ description: `Messages of others after the read position, counted up to ${UNREAD_COUNT_CAP}` }),
  unread_mention_count: Type.Integer({ description: `Messages mentioning the user after the read position (deleted ones left out), counted up to ${UNREAD_COUNT_CAP}` }),
  muted_until: Type.Union([DateTime, Type.Null()]),
  participant_count: Type.Integer(),
  participant_ids: Type.Array(UuidSchema, { description: `The first ${LISTED_PARTICIPANTS} member ids in id order (all of them up to ${LISTED_PARTICIPANTS} members)` })
})

export const MentionListQuerySchema = ConversationListQuerySchema

export const MentionPageSchema = Type.Object({
  messages: Type.Array(MessageSchema, { description: 'Messages mentioning the user in their current conversations, newest first; deleted ones left out' }),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'The cursor of the next page; null on the last page' })
})

export const ConversationPageSchema = Type.Object({
  conversations: Type.Array(ConversationSummarySchema, { description: 'Newest activity first' }),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'The cursor of the next page; null on the last page' })
})
