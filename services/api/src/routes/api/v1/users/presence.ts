// Presence lookups: is a user online (a websocket open on any api process)? Changes are pushed
// as `presence` frames (docs/protocol.md); these routes give the state to start from.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { sql } from 'kysely'
import { actingUser } from '../../../../plugins/app/auth.ts'
import { HttpError } from '@chatty/server'
import { ReaderHeadersSchema } from '../../../../schemas/chat.ts'
import { UuidSchema, errorResponses } from '../../../../schemas/common.ts'

/** Users one batch lookup may ask about. */
export const MAX_PRESENCE_BATCH = 100

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'

export const PresenceSchema = Type.Object({
  user_id: UuidSchema,
  online: Type.Boolean({ description: 'true while the user has a websocket open on any api process' })
}, { description: 'A user\'s presence' })

const BatchQuery = Type.Object({
  user_ids: Type.String({
    pattern: `^${UUID}(,${UUID}){0,${MAX_PRESENCE_BATCH - 1}}$`,
    description: `Comma-separated user ids, at most ${MAX_PRESENCE_BATCH}`
  })
})

/**
 * Who may see whose presence: with a token (or, in none mode, an X-User-Id header) the caller
 * sees themselves and the users they share a conversation with, except those who blocked them;
 * asking about anyone else is 403. A none-mode request without X-User-Id is open, like
 * go-chatty's reads.
 */
async function checkViewer (request: FastifyRequest, userIds: string[]): Promise<void> {
  const header = request.headers['x-user-id']
  const viewer = actingUser(request, typeof header === 'string' ? header : undefined)?.toLowerCase()
  if (viewer === undefined) return
  const others = userIds.filter((userId) => userId !== viewer)
  if (others.length === 0) return
  const rows = await request.server.db.selectFrom('chat.participant as mine')
    .innerJoin('chat.participant as theirs', 'theirs.conversation_id', 'mine.conversation_id')
    .select('theirs.user_id').distinct()
    .where('mine.user_id', '=', viewer)
    .where('theirs.user_id', '=', sql<string>`any(${others}::uuid[])`)
    .execute()
  const shared = new Set(rows.map((row) => row.user_id))
  const hidden = others.find((userId) => !shared.has(userId))
  if (hidden !== undefined) throw new HttpError(403, 'forbidden', `you share no conversation with user ${hidden}`)
  const blockers = await request.server.db.selectFrom('chat.block').select('blocker_id')
    .where('blocked_id', '=', viewer)
    .where('blocker_id', '=', sql<string>`any(${others}::uuid[])`)
    .executeTakeFirst()
  if (blockers !== undefined) throw new HttpError(403, 'forbidden', `user ${blockers.blocker_id} does not share their presence with you`)
}

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/users/:user_id/presence', {
    schema: {
      summary: 'Whether a user is online',
      description: 'Online: a websocket of the user is open on any api process. With a token (or an X-User-Id header) ' +
        'the caller may ask about themselves and users they share a conversation with and who have not blocked them; anyone else is 403.',
      tags: ['users'],
      params: Type.Object({ user_id: UuidSchema }),
      headers: ReaderHeadersSchema,
      response: { 200: PresenceSchema, ...errorResponses }
    }
  }, async (request) => {
    const userId = request.params.user_id.toLowerCase()
    await checkViewer(request, [userId])
    const online = await fastify.presence.online([userId])
    return { user_id: userId, online: online.has(userId) }
  })

  fastify.get('/users/presence', {
    schema: {
      summary: 'Whether each of several users is online',
      description: `Up to ${MAX_PRESENCE_BATCH} users at once, answered in the order asked (repeats dropped). ` +
        'The same visibility rule as the single lookup: every user asked about must be visible to the caller.',
      tags: ['users'],
      querystring: BatchQuery,
      headers: ReaderHeadersSchema,
      response: { 200: Type.Object({ presence: Type.Array(PresenceSchema) }), ...errorResponses }
    }
  }, async (request) => {
    const userIds = [...new Set(request.query.user_ids.split(',').map((userId) => userId.toLowerCase()))]
    await checkViewer(request, userIds)
    const online = await fastify.presence.online(userIds)
    return { presence: userIds.map((userId) => ({ user_id: userId, online: online.has(userId) })) }
  })
}

export default routes
