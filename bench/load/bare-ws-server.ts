// Baseline: a bare `ws` broadcast server speaking the same frames as chatty's websocket (connected,
// join/joined, message broadcast with a full message object) with rooms in a Map and no database,
// no bus, no checks. What chatty's websocket path costs is measured against this.
//
// It is the fan-out a skilled engineer writes without a database, not a naive one: each message
// is serialised and framed once (one websocket frame, unmasked, the same bytes for every member,
// written straight to each TCP socket, as chatty's rooms do), and writes are corked per
// event-loop turn: a socket's first write in a turn corks its TCP socket, and one setImmediate
// after the turn's I/O uncorks them all, so every frame a socket gets in one turn (the messages
// of all the senders read in that turn) leaves in one writev.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { Socket } from 'node:net'
import * as wsModule from 'ws'
import { WebSocketServer, type WebSocket } from 'ws'
import { serveRequests } from '../lib/child.ts'

/** The TCP sockets corked in this turn. */
const corked = new Set<Socket>()
let uncorkScheduled = false

function uncorkAll (): void {
  uncorkScheduled = false
  for (const wire of corked) wire.uncork()
  corked.clear()
}

const TEXT_FRAME = { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }
// ws' own framing (its Sender is a named export, not typed).
const frameOf = (wsModule as unknown as { Sender: { frame (data: Buffer, options: typeof TEXT_FRAME): Buffer[] } }).Sender.frame

/** A string is sent through ws; a Buffer is a frame already made, written to the TCP socket. */
function send (socket: WebSocket, data: Buffer | string): void {
  const wire = (socket as unknown as { _socket?: Socket })._socket
  if (wire !== undefined && !corked.has(wire)) {
    wire.cork()
    corked.add(wire)
    if (!uncorkScheduled) {
      uncorkScheduled = true
      setImmediate(uncorkAll)
    }
  }
  if (typeof data === 'string' || wire === undefined) socket.send(data, { binary: false })
  else wire.write(data)
}

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
    send(socket, '{"type":"connected"}')
    socket.on('message', (data: Buffer) => {
      let frame: { type?: string, conversation_id?: string, body?: string }
      try {
        frame = JSON.parse(data.toString())
      } catch {
        send(socket, JSON.stringify({ type: 'error', code: 'bad_request', error: 'invalid JSON' }))
        return
      }
      const conversationId = frame.conversation_id ?? ''
      if (frame.type === 'join') {
        let room = rooms.get(conversationId)
        if (room === undefined) rooms.set(conversationId, room = { seq: 0, members: new Set() })
        room.members.add(socket)
        joined.add(room)
        send(socket, JSON.stringify({ type: 'joined', conversation_id: conversationId, last_seq: room.seq }))
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
          dedupe_key: null,
          edited_at: null,
          deleted_at: null
        }
        // Serialised and framed once for all receivers, as chatty does.
        const out = Buffer.concat(frameOf(Buffer.from(JSON.stringify({ type: 'message', conversation_id: conversationId, message })), TEXT_FRAME))
        for (const member of room.members) send(member, out)
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
    return { memory: process.memoryUsage(), cpu: process.cpuUsage(), sockets, rooms: rooms.size }
  }
})
