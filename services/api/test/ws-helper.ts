// Helpers of the websocket tests: a listening api, raw ws clients that record every frame, and
// @chatty/client sockets, all closed at teardown before the app.
import type { Test } from 'tap'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import WebSocket, { type ClientOptions } from 'ws'
import { onTeardown } from '@chatty/db/testing'
import { connectChat, type ChatSocket, type ChatSocketOptions, type Message } from '@chatty/client'
import { buildTestApp } from './helper.ts'

export interface ListeningApp {
  app: FastifyInstance
  dbUrl: string
  /** http://127.0.0.1:<port> */
  url: string
}

export async function listen (t: Test, config: Record<string, unknown> = {}, dbUrl?: string): Promise<ListeningApp> {
  const built = await buildTestApp(t, config, dbUrl)
  await built.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = built.app.server.address() as AddressInfo
  return { ...built, url: `http://127.0.0.1:${port}` }
}

export function wsUrl (url: string, query: Record<string, string> = {}): string {
  const target = new URL('/api/v1/chat/ws', url.replace(/^http/, 'ws'))
  for (const [key, value] of Object.entries(query)) target.searchParams.set(key, value)
  return target.toString()
}

// Frames are JSON objects of any shape here: the tests assert them whole.
export type Frame = Record<string, any>

/** A plain ws client that records every frame, for asserting the protocol byte for byte. */
export interface RawSocket {
  ws: WebSocket
  /** Every text frame received, as sent. */
  texts: string[]
  frames: Frame[]
  /** The next frame not yet taken (waits for it). */
  next (timeoutMs?: number): Promise<Frame>
  /** Skips frames until one matches. */
  until (match: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame>
  send (frame: unknown): void
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number, reason: string }>
  /** Resolves with the status and JSON body when the upgrade is refused. */
  refused: Promise<{ status: number, body: any }>
}

export function rawSocket (t: Test, url: string, query: Record<string, string>, options: ClientOptions = {}): RawSocket {
  const ws = new WebSocket(wsUrl(url, query), options)
  const texts: string[] = []
  const frames: Frame[] = []
  let cursor = 0
  let wake: (() => void) | undefined
  ws.on('message', (data) => {
    const text = data.toString()
    texts.push(text)
    frames.push(JSON.parse(text))
    wake?.()
  })
  ws.on('error', () => {})
  const closed = new Promise<{ code: number, reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() })
      wake?.()
    })
  })
  const refused = new Promise<{ status: number, body: any }>((resolve) => {
    ws.on('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk.toString() })
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body: JSON.parse(body) })
        // With this listener, ws leaves ending the refused handshake to us.
        ws.terminate()
      })
    })
  })
  onTeardown(t, () => ws.terminate())

  async function until (match: (frame: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      while (cursor < frames.length) {
        const frame = frames[cursor++]!
        if (match(frame)) return frame
      }
      const left = deadline - Date.now()
      if (left <= 0 || ws.readyState === WebSocket.CLOSED) {
        throw new Error(`no matching frame within ${timeoutMs} ms; received ${JSON.stringify(frames.slice(-5))}`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      wake = undefined
    }
  }

  return {
    ws,
    texts,
    frames,
    next: (timeoutMs) => until(() => true, timeoutMs),
    until,
    send (frame) {
      ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
    },
    closed,
    refused
  }
}

/** A raw socket past its `connected` frame. */
export async function openSocket (t: Test, url: string, userId: string, options: ClientOptions = {}): Promise<RawSocket> {
  const socket = rawSocket(t, url, { user_id: userId }, options)
  const first = await socket.next()
  if (first.type !== 'connected') throw new Error(`expected connected, got ${JSON.stringify(first)}`)
  return socket
}

/** An @chatty/client socket that collects every message it emits. */
export async function chatClient (t: Test, url: string, userId: string, options: Partial<ChatSocketOptions> = {}): Promise<ChatSocket & { received: Message[] }> {
  const chat = await connectChat({ url, userId, reconnect: { minDelayMs: 20, maxDelayMs: 200 }, ...options })
  const received: Message[] = []
  chat.on('message', (message) => received.push(message))
  onTeardown(t, () => chat.close())
  return Object.assign(chat, { received })
}

export async function createChat (app: FastifyInstance, participantIds: string[]): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: participantIds } })
  if (response.statusCode !== 201) throw new Error(`cannot create a chat: ${response.body}`)
  return response.json().id
}

/** The seqs of a message list, for asserting order and completeness at once. */
/** Sends a frame with ref 'x' and resolves with the reply that echoes it. */
export async function ack (socket: RawSocket, frame: object): Promise<Frame> {
  socket.send({ ...frame, ref: 'x' })
  return await socket.until((reply) => reply.ref === 'x')
}

export function seqs (messages: Array<{ seq: number }>): number[] {
  return messages.map((message) => message.seq)
}

export function range (from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, index) => from + index)
}
