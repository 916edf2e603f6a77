// A user's own lists: blocks (who they refuse direct messages from), conversations, mentions.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { blockUser, listBlocked, listConversations, listMentions, unblockUser } from '@chatty/chat'
import { actingUser } from '../../../../plugins/app/auth.ts'
import { UuidSchema, errorResponses } from '../../../../schemas/common.ts'
import { ConversationListQuerySchema, ConversationPageSchema, MentionListQuerySchema, MentionPageSchema } from '../../../../schemas/conversations.ts'

const UserParams = Type.Object({ user_id: UuidSchema })
const BlockParams = Type.Object({ user_id: UuidSchema, blocked_id: UuidSchema })

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db } = fastify

  fastify.get('/users/:user_id/blocks', {
    schema: {
      summary: 'List the users this user has blocked',
      tags: ['users'],
      params: UserParams,
      response: { 200: Type.Object({ blocked_ids: Type.Array(UuidSchema) }), ...errorResponses }
    }
  }, async (request) => {
    const userId = actingUser(request, request.params.user_id)!
    return { blocked_ids: await listBlocked(db, userId) }
  })

  fastify.put('/users/:user_id/blocks/:blocked_id', {
    schema: {
      summary: 'Block a user',
      description: 'A blocked user cannot send into a direct (two-member) conversation with the blocker, cannot start one ' +
        'with them, and does not see their presence.',
      tags: ['users'],
      params: BlockParams,
      response: { 204: Type.Null(), ...errorResponses }
    }
  }, async (request, reply) => {
    await blockUser(fastify.chat, actingUser(request, request.params.user_id)!, request.params.blocked_id)
    return reply.code(204).send(null)
  })

  fastify.delete('/users/:user_id/blocks/:blocked_id', {
    schema: {
      summary: 'Unblock a user',
      tags: ['users'],
      params: BlockParams,
      response: { 204: Type.Null(), ...errorResponses }
    }
  }, async (request, reply) => {
    await unblockUser(fastify.chat, actingUser(request, request.params.user_id)!, request.params.blocked_id)
    return reply.code(204).send(null)
  })

  fastify.get('/users/:user_id/conversations', {
    schema: {
      summary: 'List a user\'s conversations, newest activity first',
      description: 'Each with its last message, the user\'s unread count and mute, and its members. ' +
        'Keyset-paginated: pass next_cursor as cursor for the next page. With AUTH_MODE=jwt only the caller\'s own.',
      tags: ['users'],
      params: UserParams,
      querystring: ConversationListQuerySchema,
      response: { 200: ConversationPageSchema, ...errorResponses }
    }
  }, async (request) => {
    const userId = actingUser(request, request.params.user_id)!
    return listConversations(db, userId, { limit: request.query.limit, cursor: request.query.cursor })
  })

  fastify.get('/users/:user_id/mentions', {
    schema: {
      summary: 'List the messages that mention a user, newest first',
      description: 'Across the conversations the user is a member of now; deleted messages left out. ' +
        'Keyset-paginated: pass next_cursor as cursor for the next page. With AUTH_MODE=jwt only the caller\'s own.',
      tags: ['users'],
      params: UserParams,
      querystring: MentionListQuerySchema,
      response: { 200: MentionPageSchema, ...errorResponses }
    }
  }, async (request) => {
    const userId = actingUser(request, request.params.user_id)!
    return listMentions(db, userId, { limit: request.query.limit, cursor: request.query.cursor })
  })
}

export default routes
