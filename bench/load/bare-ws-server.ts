// Baseline: a bare `ws` broadcast server speaking the same frames as chatty's websocket (connected,
// join/joined, message broadcast with a full message object) with rooms in a Map and no database,
// no bus, no checks. What chatty's websocket path costs is measured against this.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'
import { serveRequests } from '../lib/child.ts'

interface Room { seq: number, members: Set<WebSocket> }

const rooms = new Map<string, Room>()
let sockets = 0

function start (): Promise<{ port: number }> {
  const server = createServer((_request, response) => { response.statusCode = 426; response.end() })
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 65536 })
  wss.on('connection', (socket, request) => {
    sockets++
    const userId = new URL(request.url ?? '/', 'http://x').searchParams.get('user_id') ?? ''
    const joined = new Set<Room>()
    socket.send('{"type":"connected"}')
    socket.on('message', (data: Buffer) => {
      let frame: { type?: string, conversation_id?: string, body?: string }
      try {
        frame = JSON.parse(data.toString())
      } catch {
        socket.send(JSON.stringify({ type: 'error', code: 'bad_request', error: 'invalid JSON' }))
        return
      }
      const conversationId = frame.conversation_id ?? ''
      if (frame.type === 'join') {
        let room = rooms.get(conversationId)
        if (room === undefined) rooms.set(conversationId, room = { seq: 0, members: new Set() })
        room.members.add(socket)
        joined.add(room)
        socket.send(JSON.stringify({ type: 'joined', conversation_id: conversationId, last_seq: room.seq }))
      } else if (frame.type === 'message') {
        const room = rooms.get(conversationId)
        if (room === undefined) return
        const message = {
          id: randomUUID(),
          conversation_id: conversationId,
          sender_id: userId,
          seq: ++room.seq,
          created_at: new Date().toISOString(),
          body: frame.body ?? null,
          msg_type: 0,
          attachment_url: null,
          attachment_meta: null,
          dedupe_key: null
        }
        // Serialised once for all receivers, as chatty does.
        const out = Buffer.from(JSON.stringify({ type: 'message', conversation_id: conversationId, message }))
        for (const member of room.members) member.send(out, { binary: false })
      }
    })
    socket.on('close', () => {
      sockets--
      for (const room of joined) room.members.delete(socket)
    })
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as { port: number }).port }))
  })
}

serveRequests({
  start,
  memory: (gc: boolean) => {
    const collect = (globalThis as { gc?: () => void }).gc
    if (gc && collect !== undefined) { collect(); collect() }
    return { memory: process.memoryUsage(), sockets, rooms: rooms.size }
  }
})
