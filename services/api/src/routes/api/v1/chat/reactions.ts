// Reactions and pins under /api/v1/chat (docs/design.md, "Message features"). Writes act as
// `user_id` (query string) in AUTH_MODE=none and as the token's user otherwise; reads check the
// X-User-Id header in none mode, as history does.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { addReaction, listPins, requireConversation, listReactions, pinMessage, removeReaction, unpinMessage, type ReactionChange } from '@chatty/chat'
import { HttpError } from '@chatty/server'
import { actingUser } from '../../../../plugins/app/auth.ts'
import { acceptCamelAliases } from '../../../../camel-case.ts'
import { ErrorSchema, errorResponses } from '../../../../schemas/common.ts'
import { ChatParamsSchema, ReaderHeadersSchema } from '../../../../schemas/chat.ts'
import {
  ListReactionsQuerySchema, PinChangeSchema, PinListSchema, PinParamsSchema, ReactionChangeSchema, ReactionPageSchema, ReactionParamsSchema, UserQuerySchema
} from '../../../../schemas/features.ts'
import { checkReader } from './index.ts'

function caller (request: FastifyRequest, claimed: string | undefined): string {
  const userId = actingUser(request, claimed)
  if (userId === undefined) throw new HttpError(400, 'bad_request', 'querystring must have required property \'user_id\'')
  return userId
}

function reactionAnswer (change: ReactionChange) {
  return { conversation_id: change.message.conversation_id, seq: change.seq, message_id: change.message.id, user_id: change.user_id, reaction: change.reaction, reactions: change.message.reactions }
}

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db } = fastify
  fastify.addHook('preValidation', acceptCamelAliases)

  const reactionDescription = 'A reaction is 1 to 32 characters without whitespace (an emoji or a :shortcode:), percent-encoded in the path. ' +
    'The change takes a seq of its own: a frame goes to every socket joined to the conversation, and a client resuming with since_seq gets it. '

  // PUT adds, DELETE removes: the same route otherwise.
  const reactionWrites = [
    {
      method: 'PUT' as const,
      use: addReaction,
      summary: 'React to a message',
      description: 'Frame: reaction_added. Reacting the same way again changes nothing (seq null, no frame). ' +
        'A deleted message takes no reactions (409); at most 20 different reactions per user and 100 per message (400).'
    },
    {
      method: 'DELETE' as const,
      use: removeReaction,
      summary: 'Remove one\'s reaction from a message',
      description: 'Frame: reaction_removed. Removing a reaction that is not there changes nothing (seq null, no frame).'
    }
  ]
  for (const { method, use, summary, description } of reactionWrites) {
    fastify.route({
      method,
      url: '/chat/:chat_id/messages/:message_id/reactions/:reaction',
      schema: {
        summary,
        description: reactionDescription + description,
        tags: ['reactions'],
        params: ReactionParamsSchema,
        querystring: UserQuerySchema,
        response: { 200: ReactionChangeSchema, ...errorResponses, 409: ErrorSchema }
      },
      handler: async (request) => {
        const { chat_id: conversationId, message_id: messageId, reaction } = request.params
        const change = await use(fastify.chat, { conversationId, messageId, userId: caller(request, request.query.user_id), reaction })
        await fastify.feed.change(change)
        return reactionAnswer(change)
      }
    })
  }

  fastify.get('/chat/:chat_id/messages/:message_id/reactions', {
    schema: {
      summary: 'List who reacted to a message with what',
      description: 'In the order they reacted, a page at a time: pass next_cursor as cursor for the next page. ' +
        '`reaction` lists one reaction\'s users only. An X-User-Id header, when sent, must name a participant.',
      tags: ['reactions'],
      params: PinParamsSchema,
      querystring: ListReactionsQuerySchema,
      headers: ReaderHeadersSchema,
      response: { 200: ReactionPageSchema, ...errorResponses }
    }
  }, async (request) => {
    const { chat_id: conversationId, message_id: messageId } = request.params
    await checkReader(request, conversationId)
    return listReactions(db, { conversationId, messageId, limit: request.query.limit, cursor: request.query.cursor, reaction: request.query.reaction })
  })

  const pinWrites = [
    {
      method: 'PUT' as const,
      use: pinMessage,
      summary: 'Pin a message',
      description: 'Any member may pin a message of the conversation for everyone; at most 50 pinned messages per conversation (409), ' +
        'and not a deleted message (409). The pin takes a seq of its own: a message_pinned frame goes to every socket joined to the ' +
        'conversation, and a client resuming with since_seq gets it. Pinning a pinned message changes nothing (seq null).'
    },
    {
      method: 'DELETE' as const,
      use: unpinMessage,
      summary: 'Unpin a message',
      description: 'Any member may. A message_unpinned frame goes to every socket joined to the conversation; unpinning a message ' +
        'that is not pinned changes nothing (seq null). Deleting a message unpins it too.'
    }
  ]
  for (const { method, use, summary, description } of pinWrites) {
    fastify.route({
      method,
      url: '/chat/:chat_id/pins/:message_id',
      schema: {
        summary,
        description,
        tags: ['pins'],
        params: PinParamsSchema,
        querystring: UserQuerySchema,
        response: { 200: PinChangeSchema, ...errorResponses, 409: ErrorSchema }
      },
      handler: async (request) => {
        const { chat_id: conversationId, message_id: messageId } = request.params
        const change = await use(fastify.chat, { conversationId, messageId, userId: caller(request, request.query.user_id) })
        await fastify.feed.change(change)
        return { conversation_id: change.message.conversation_id, seq: change.seq, message: change.message }
      }
    })
  }

  fastify.get('/chat/:chat_id/pins', {
    schema: {
      summary: 'List the pinned messages of a conversation',
      description: 'Most recently pinned first. An X-User-Id header, when sent, must name a participant.',
      tags: ['pins'],
      params: ChatParamsSchema,
      headers: ReaderHeadersSchema,
      response: { 200: PinListSchema, ...errorResponses }
    }
  }, async (request) => {
    const { chat_id: conversationId } = request.params
    await checkReader(request, conversationId)
    await requireConversation(fastify.chat, conversationId)
    return { messages: await listPins(db, conversationId) }
  })
}

export default routes
