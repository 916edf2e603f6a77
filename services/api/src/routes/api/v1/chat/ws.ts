// GET /api/v1/chat/ws: go-chatty's chat websocket. Who connects is settled before the upgrade
// (a missing or invalid user_id is a 400 JSON answer, a bad token a 401); socket/session.ts
// serves the socket; docs/protocol.md describes the frames.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { actingUser } from '../../../../plugins/app/auth.ts'
import { HttpError } from '../../../../plugins/app/errors.ts'
import { ErrorSchema } from '../../../../schemas/common.ts'
import { WsQuerySchema } from '../../../../schemas/ws.ts'
import { startSession } from '../../../../socket/session.ts'

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { config } = fastify

  fastify.route({
    method: 'GET',
    url: '/chat/ws',
    schema: {
      summary: 'Live chat over a websocket',
      description: 'Upgrade to a websocket (go-chatty\'s protocol): the server sends {"type":"connected"}; ' +
        'the client sends join / leave / message frames and receives joined / left / message / sent / error frames. ' +
        'See docs/protocol.md for every frame, resume with since_seq, limits and close codes. ' +
        'A request without an Upgrade header is answered 426.',
      tags: ['chat'],
      querystring: WsQuerySchema,
      response: {
        101: Type.Null({ description: 'Switching Protocols: the connection is now a websocket' }),
        400: ErrorSchema,
        401: ErrorSchema,
        403: ErrorSchema,
        426: ErrorSchema
      }
    },
    preHandler: async (request) => {
      if (actingUser(request, request.query.user_id) === undefined) {
        throw new HttpError(400, 'bad_request', 'querystring must have required property \'user_id\'')
      }
    },
    handler: async (_request, reply) => {
      return reply.code(426).header('upgrade', 'websocket').send({ error: 'this endpoint is a websocket: connect with an Upgrade request', code: 'upgrade_required' })
    },
    wsHandler: (socket, request) => {
      startSession(socket, {
        userId: actingUser(request, request.query.user_id)!,
        db: fastify.db,
        rooms: fastify.rooms,
        log: request.log,
        pingIntervalMs: config.WS_PING_INTERVAL_MS,
        maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
        expiresAt: request.identity?.expiresAt ?? null
      })
    }
  })
}

export default routes
