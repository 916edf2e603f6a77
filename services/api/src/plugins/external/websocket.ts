// @fastify/websocket: upgrades GET /api/v1/chat/ws after the route's hooks and validation ran, so
// a refused upgrade is an ordinary JSON error. Frames over WS_MAX_PAYLOAD close with 1009 (ws does
// that itself); shutdown closes every socket with 1001 so clients reconnect to another process.
import fp from 'fastify-plugin'
import websocket, { type WebsocketPluginOptions } from '@fastify/websocket'

export const CLOSE_GOING_AWAY = 1001
export const CLOSE_INTERNAL_ERROR = 1011
/** How long a closing handshake may take before the socket is destroyed (ws' default is 30 s). */
const CLOSE_TIMEOUT_MS = 5_000

export default fp(async (fastify) => {
  // closeTimeout is ws >= 8.19; @types/ws does not list it yet.
  const serverOptions = {
    maxPayload: fastify.config.WS_MAX_PAYLOAD,
    // Frames are small JSON; compression would cost a zlib context per socket.
    perMessageDeflate: false,
    closeTimeout: CLOSE_TIMEOUT_MS
  }
  const options: WebsocketPluginOptions = {
    options: serverOptions,
    // A handler that throws gets 1011 rather than a silent terminate. Errors on an open chat
    // socket are the session's (socket/session.ts), which treats them the same way.
    errorHandler (error, socket, request) {
      request.log.debug({ err: error }, 'websocket error')
      if (socket.readyState === socket.OPEN) socket.close(CLOSE_INTERNAL_ERROR, 'internal error')
    },
    preClose (done) {
      const server = fastify.websocketServer
      for (const client of server.clients) client.close(CLOSE_GOING_AWAY, 'server shutting down')
      // Resolves once every socket is closed (or destroyed after CLOSE_TIMEOUT_MS).
      server.close(() => done())
    }
  }
  await fastify.register(websocket, options)
}, { name: 'websocket', dependencies: ['config'] })
