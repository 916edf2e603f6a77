// GET /api/v1/chat/ws: go-chatty's chat websocket. Who connects is settled before the upgrade
// (a missing or invalid user_id is a 400 JSON answer, a bad token a 401, an origin not in
// WS_ALLOWED_ORIGINS a 403, a user over WS_MAX_SOCKETS_PER_USER a 429); socket/session.ts serves
// the socket; docs/protocol.md describes the frames. `?userId=` instead of `?user_id=` opens a
// socket that speaks go-chatty's later camelCase dialect.
import { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { actingUser } from '../../../../plugins/app/auth.ts'
import { normalizeOrigin } from '../../../../plugins/external/env.ts'
import { HttpError } from '@chatty/server'
import { ErrorSchema, UuidSchema } from '../../../../schemas/common.ts'
import { WsQuerySchema } from '../../../../schemas/ws.ts'
import { startHeartbeat, startSession } from '../../../../socket/session.ts'
import type { SessionContext } from '../../../../socket/context.ts'
import type { Dialect } from '../../../../dialect.ts'
import { ByteBudget } from '../../../../socket/budget.ts'
import { notifyOfflineJob, type Message } from '@chatty/chat'
import { DEFAULT_QUEUE } from '@chatty/queue'

const isUuid = Compile(UuidSchema)

/**
 * The user the query names and the dialect it chose: `user_id` (snake_case), or `userId`, which
 * go-chatty's later clients send and which opens a camelCase socket; not both with different
 * values. userId is read here rather than declared in WsQuerySchema, whose documented parameters
 * stay those of the snake_case protocol; the route's description tells of it.
 */
function claimedUser (query: Static<typeof WsQuerySchema>): { claimed: string | undefined, dialect: Dialect } {
  const snake = query.user_id
  const camel = (query as Record<string, unknown>).userId
  if (camel === undefined) return { claimed: snake, dialect: 'snake_case' }
  if (typeof camel !== 'string' || !isUuid.Check(camel)) throw new HttpError(400, 'bad_request', 'querystring/userId must match format "uuid"')
  if (snake !== undefined && snake.toLowerCase() !== camel.toLowerCase()) {
    throw new HttpError(400, 'bad_request', 'querystring has user_id and userId with different values; send one of them')
  }
  return { claimed: camel, dialect: 'camelCase' }
}

function uncorkUpgrade (wire: Socket): void {
  wire.uncork()
}

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { config } = fastify
  // With WEBHOOK_URL, a message stored here queues its offline notification (docs/webhooks.md).
  // The message is stored whatever happens to this: a failure is logged, not sent to the client.
  const notifyOffline = config.WEBHOOK_URL === undefined
    ? undefined
    : (message: Message): void => {
        const { task, uniqueKey, maxAttempts } = notifyOfflineJob(message)
        fastify.queue.enqueue(task, { queue: DEFAULT_QUEUE, uniqueKey, maxAttempts }).catch((err: unknown) => {
          fastify.log.error({ err, message: message.id }, 'cannot queue the offline notification of a message')
        })
      }
  const allowedOrigins = config.WS_ALLOWED_ORIGINS === undefined
    ? undefined
    : new Set(config.WS_ALLOWED_ORIGINS.split(',').map((origin) => normalizeOrigin(origin)!))
  const sessionContext: SessionContext = {
    chat: fastify.chat,
    feed: fastify.feed,
    rooms: fastify.rooms,
    log: fastify.log,
    maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
    maxJoined: config.WS_MAX_JOINS_PER_SOCKET,
    replayBudget: new ByteBudget(config.WS_MAX_PROCESS_REPLAY_BYTES),
    drainTimeoutMs: config.WS_REPLAY_DRAIN_TIMEOUT_MS,
    rateLimit: config.WS_RATE_LIMIT_PER_SEC > 0
      ? { perSecond: config.WS_RATE_LIMIT_PER_SEC, burst: config.WS_RATE_LIMIT_BURST }
      : null,
    onStored: notifyOffline,
    onClose: (userId) => fastify.presence.disconnect(userId)
  }
  const stopHeartbeat = startHeartbeat(fastify.websocketServer.clients, config.WS_PING_INTERVAL_MS)
  fastify.addHook('onClose', async () => stopHeartbeat())
  /** Open (or opening) sockets per user on this process, for WS_MAX_SOCKETS_PER_USER. */
  const socketsByUser = new Map<string, number>()

  /** Counts a socket for its user; the returned function uncounts it (once, whatever calls it). */
  function holdSlot (userId: string): () => void {
    socketsByUser.set(userId, (socketsByUser.get(userId) ?? 0) + 1)
    let held = true
    return () => {
      if (!held) return
      held = false
      const left = (socketsByUser.get(userId) ?? 1) - 1
      if (left === 0) socketsByUser.delete(userId)
      else socketsByUser.set(userId, left)
    }
  }

  /**
   * Lets go of the upgrade request once the socket is open: otherwise every idle socket keeps its
   * request, response and headers alive (about 4 KB each). The TCP socket still points at the
   * response @fastify/websocket made for the route, and its `error` listener closes over the
   * request and reply; the session attaches its own, which does the same (socket/session.ts).
   */
  function releaseUpgrade (socket: WebSocket, request: FastifyRequest): void {
    const wire = request.raw.socket as Socket & { _httpMessage?: unknown }
    if (wire._httpMessage instanceof ServerResponse) wire._httpMessage.detachSocket(wire)
    socket.removeAllListeners('error')
  }

  fastify.route({
    method: 'GET',
    url: '/chat/ws',
    schema: {
      summary: 'Live chat over a websocket',
      description: 'Upgrade to a websocket (go-chatty\'s protocol): the server sends {"type":"connected"}; ' +
        'the client sends join / leave / message / edit / delete / react / unreact / pin / unpin / read / delivered / typing frames and receives ' +
        'joined / left / message / sent / message_updated / message_deleted / edited / deleted / reaction_added / reaction_removed / reacted / unreacted / ' +
        'message_pinned / message_unpinned / pinned / unpinned / read / delivered / typing / error frames ' +
        '(and presence frames with ?presence=true). ' +
        'Opened with ?userId= instead of ?user_id=, the socket speaks go-chatty\'s camelCase dialect (conversationId, msgType, ...; null fields left out). ' +
        'See docs/protocol.md for every frame, resume with since_seq, limits and close codes. ' +
        'A request without an Upgrade header is answered 426.',
      tags: ['chat'],
      querystring: WsQuerySchema,
      response: {
        101: Type.Null({ description: 'Switching Protocols: the connection is now a websocket' }),
        400: ErrorSchema,
        401: ErrorSchema,
        403: ErrorSchema,
        426: ErrorSchema,
        429: ErrorSchema
      }
    },
    preHandler: async (request) => {
      // A browser always sends Origin; a page on another site must not use its visitor's session.
      // Clients that are not browsers send none and are let through.
      const origin = request.headers.origin
      if (allowedOrigins !== undefined && origin !== undefined && !allowedOrigins.has(normalizeOrigin(origin) ?? '')) {
        throw new HttpError(403, 'forbidden', 'this origin may not open the websocket')
      }
      const userId = actingUser(request, claimedUser(request.query).claimed)
      if (userId === undefined) {
        throw new HttpError(400, 'bad_request', 'querystring must have required property \'user_id\'')
      }
      if (config.WS_MAX_SOCKETS_PER_USER > 0 && request.ws) {
        const key = userId.toLowerCase()
        if ((socketsByUser.get(key) ?? 0) >= config.WS_MAX_SOCKETS_PER_USER) {
          throw new HttpError(429, 'rate_limited', `a user may hold at most ${config.WS_MAX_SOCKETS_PER_USER} websockets on one server; close one first`)
        }
        // Held from now, so concurrent upgrades cannot all pass the check; freed when the
        // connection ends, upgraded or not (before the websocket's own 'close').
        const release = holdSlot(key)
        const connection = request.raw.socket as Socket | undefined
        if (connection === undefined || connection.destroyed) release()
        else connection.once('close', release)
      }
      // The upgrade runs right after this hook, in the same turn: the TCP socket stays corked
      // until the turn ends, so the 101 answer and the `connected` frame leave in one write.
      const wire = request.raw.socket as Socket | undefined
      if (request.ws && wire !== undefined && !wire.destroyed) {
        wire.cork()
        process.nextTick(uncorkUpgrade, wire)
      }
    },
    handler: async (_request, reply) => {
      return reply.code(426).header('upgrade', 'websocket').send({ error: 'this endpoint is a websocket: connect with an Upgrade request', code: 'upgrade_required' })
    },
    wsHandler: (socket, request) => {
      const { claimed, dialect } = claimedUser(request.query)
      const userId = actingUser(request, claimed)!
      releaseUpgrade(socket, request)
      startSession(socket, sessionContext, {
        userId,
        requestId: request.id,
        expiresAt: request.identity?.expiresAt ?? null,
        presence: request.query.presence === true,
        dialect
      })
      fastify.presence.connect(userId)
    }
  })
}

export default routes
