// A user's blocks: who they refuse direct messages from.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { blockUser, listBlocked, unblockUser } from '@chatty/chat'
import { actingUser } from '../../../../plugins/app/auth.ts'
import { UuidSchema, errorResponses } from '../../../../schemas/common.ts'

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
      description: 'A blocked user cannot send into a direct (two-member) conversation with the blocker.',
      tags: ['users'],
      params: BlockParams,
      response: { 204: Type.Null(), ...errorResponses }
    }
  }, async (request, reply) => {
    await blockUser(db, actingUser(request, request.params.user_id)!, request.params.blocked_id)
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
    await unblockUser(db, actingUser(request, request.params.user_id)!, request.params.blocked_id)
    return reply.code(204).send(null)
  })
}

export default routes
