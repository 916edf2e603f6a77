// Websocket load generator (a child process of bench/run.ts): opens the sockets it is given,
// joins their rooms, then has the senders send for a bounded time, either as fast as their own
// broadcasts come back (closed loop) or at a fixed rate (open loop). Every socket counts what it
// receives per room and checks seq is consecutive; latency is send to each delivery.
// The same generator drives chatty and the bare ws baseline server: the frames are the same.
// Several of these processes can share one scenario (each with a part of the sockets): the
// scenario sums what they send per room before asking each to wait for its deliveries.
import { WebSocket } from 'ws'
import { monoMs } from '../lib/clock.ts'
import { Histogram } from '../lib/histogram.ts'
import { serveRequests } from '../lib/child.ts'

export interface SocketSpec {
  userId: string
  rooms: string[]
  /** The room this socket sends to, if it is a sender. */
  sendTo?: string
  /** Messages of `sendTo` this socket reacts to, in turn, when a run sends `react` frames. */
  reactTo?: string[]
}

export interface ConnectRequest {
  url: string
  sockets: SocketSpec[]
  /** Connections opened at once. */
  concurrency: number
  /** First sender index of this process (indexes are unique across the load processes). */
  indexBase?: number
}

export interface ConnectResult {
  connected: number
  connectMs: number
  joined: number
  joinMs: number
  errors: string[]
  /** CPU time this process used while connecting and joining. */
  cpuMs: number
}

export interface RunRequest {
  durationMs: number
  /** closed: each sender keeps `window` messages outstanding; rate: each sends `ratePerSender`/s. */
  mode: 'closed' | 'rate'
  window?: number
  ratePerSender?: number
  bodyBytes: number
  /**
   * message (default): `message` frames, delivered as `message`; react: `react` frames, each with
   * a reaction never used before on its message (the marker), delivered as `reaction_added`.
   */
  frame?: 'message' | 'react'
  /** How long to wait after the last send for every delivery. */
  drainMs: number
  /**
   * false: answer when sending stops (elapsedMs, sentPerRoom) and keep counting; the scenario
   * then sends `collect` with what every load process sent. Default true: wait for the deliveries.
   */
  drain?: boolean
  /**
   * Count from the last `listen` instead of from now: with several load processes, every one
   * starts counting before any starts sending, so no early delivery goes uncounted.
   */
  armed?: boolean
}

export interface SendResult {
  elapsedMs: number
  sentPerRoom: Record<string, number>
}

export interface RunResult {
  elapsedMs: number
  sent: number
  /** Per room: messages sent into it. */
  sentPerRoom: Record<string, number>
  deliveries: number
  expectedDeliveries: number
  missing: number
  duplicates: number
  outOfOrder: number
  errorFrames: number
  errors: string[]
  latency: ReturnType<Histogram['toJSON']>
  drainedMs: number
  /** CPU time this process used from the start of sending to the last delivery, and the wall time. */
  cpuMs: number
  wallMs: number
}

interface Client {
  spec: SocketSpec
  index: number
  ws: WebSocket
  /** Per room: last seq seen, messages received. */
  lastSeq: Map<string, number>
  received: Map<string, number>
  outstanding: number
  sent: number
}

const clients: Client[] = []
const members = new Map<string, Client[]>()
let running: { histogram: Histogram, sentPerRoom: Map<string, number>, stats: { deliveries: number, duplicates: number, outOfOrder: number, errorFrames: number }, errors: string[], onAck?: (client: Client) => void } | undefined

const now = monoMs
let indexBase = 0

// Frames are read with indexOf rather than JSON.parse: the generator must stay cheaper than the
// servers it measures. The body (of a message) or the reaction (of a reaction_added event)
// carries "~<sender index>~<sent at>~"; both frames have the conversation's seq.
const MESSAGE_FRAME = '{"type":"message"'
const REACTION_FRAME = '{"type":"reaction_added"'

function onFrame (client: Client, data: string): void {
  const run = running
  const isMessage = data.startsWith(MESSAGE_FRAME)
  if (isMessage || data.startsWith(REACTION_FRAME)) {
    const room = data.slice(data.indexOf('"conversation_id":"') + 19, data.indexOf('"conversation_id":"') + 19 + 36)
    const seqAt = data.indexOf('"seq":')
    const seq = Number(data.slice(seqAt + 6, data.indexOf(',', seqAt)))
    const last = client.lastSeq.get(room)
    if (run !== undefined) {
      if (last !== undefined && seq <= last) run.stats.duplicates++
      else if (last !== undefined && seq !== last + 1) run.stats.outOfOrder++
    }
    if (last === undefined || seq > last) client.lastSeq.set(room, seq)
    client.received.set(room, (client.received.get(room) ?? 0) + 1)
    const field = isMessage ? '"body":"~' : '"reaction":"~'
    const marker = data.indexOf(field)
    if (run !== undefined && marker !== -1) {
      const start = marker + field.length
      const mid = data.indexOf('~', start)
      const end = data.indexOf('~', mid + 1)
      const sender = Number(data.slice(start, mid))
      const sentAt = Number(data.slice(mid + 1, end))
      run.histogram.record(now() - sentAt)
      run.stats.deliveries++
      if (sender === client.index) {
        client.outstanding--
        run.onAck?.(client)
      }
    }
    return
  }
  if (data.includes('"type":"error"') && run !== undefined) {
    run.stats.errorFrames++
    if (run.errors.length < 20) run.errors.push(data)
  }
}

async function connect (request: ConnectRequest): Promise<ConnectResult> {
  const errors: string[] = []
  indexBase = request.indexBase ?? 0
  const cpuAtStart = process.cpuUsage()
  const started = now()
  let next = 0
  const open = async (): Promise<void> => {
    for (let i = next++; i < request.sockets.length; i = next++) {
      const spec = request.sockets[i]!
      const client: Client = { spec, index: indexBase + clients.length, ws: undefined as unknown as WebSocket, lastSeq: new Map(), received: new Map(), outstanding: 0, sent: 0 }
      clients.push(client)
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(`${request.url}?user_id=${spec.userId}`, { perMessageDeflate: false, skipUTF8Validation: true })
        client.ws = ws
        let done = false
        const finish = (error?: string) => {
          if (done) return
          done = true
          if (error !== undefined && errors.length < 20) errors.push(error)
          resolve()
        }
        ws.on('message', (data: Buffer) => {
          const text = data.toString()
          if (!done && text.includes('"type":"connected"')) finish()
          else onFrame(client, text)
        })
        ws.on('error', (error) => finish(error.message))
        ws.on('close', (code) => finish(`closed ${code}`))
      })
    }
  }
  await Promise.all(Array.from({ length: request.concurrency }, open))
  const connectMs = now() - started
  const connected = clients.filter((c) => c.ws.readyState === WebSocket.OPEN).length

  const joinStarted = now()
  let joined = 0
  let joinNext = 0
  const joinOne = async (): Promise<void> => {
    for (let i = joinNext++; i < clients.length; i = joinNext++) {
      const client = clients[i]!
      for (const room of client.spec.rooms) {
        let list = members.get(room)
        if (list === undefined) members.set(room, list = [])
        list.push(client)
        const ok = await new Promise<boolean>((resolve) => {
          const onMessage = (data: Buffer) => {
            const text = data.toString()
            if (text.includes('"type":"joined"') && text.includes(room)) { cleanup(); resolve(true) } else if (text.includes('"type":"error"')) { cleanup(); if (errors.length < 20) errors.push(text); resolve(false) }
          }
          const onClose = () => { cleanup(); resolve(false) }
          const cleanup = () => { client.ws.off('message', onMessage); client.ws.off('close', onClose) }
          client.ws.on('message', onMessage)
          client.ws.on('close', onClose)
          client.ws.send(JSON.stringify({ type: 'join', conversation_id: room }))
        })
        if (ok) joined++
      }
    }
  }
  await Promise.all(Array.from({ length: request.concurrency }, joinOne))
  const cpu = process.cpuUsage(cpuAtStart)
  return { connected, connectMs, joined, joinMs: now() - joinStarted, errors, cpuMs: (cpu.user + cpu.system) / 1000 }
}

function frameFor (client: Client, bodyBytes: number, kind: 'message' | 'react' = 'message'): string {
  const head = `~${client.index}~${now().toFixed(3)}~`
  if (kind === 'react') {
    // The socket's messages in turn; the marker (at most 32 characters, as a reaction must be)
    // differs on every send, so no react is a repeat that the server would not broadcast.
    const targets = client.spec.reactTo!
    return `{"type":"react","conversation_id":"${client.spec.sendTo}","message_id":"${targets[client.sent % targets.length]}","reaction":"${head}"}`
  }
  const body = head + 'x'.repeat(Math.max(0, bodyBytes - head.length))
  return `{"type":"message","conversation_id":"${client.spec.sendTo}","body":"${body}"}`
}

interface Recording {
  started: number
  cpu: NodeJS.CpuUsage
  before: Map<Client, Map<string, number>>
  state: NonNullable<typeof running>
}

let recording: Recording | undefined
/** How long the last run without drain sent for. */
let sendingElapsedMs: number | undefined

/** Starts counting deliveries (and latency from the body's marker) on every socket. */
function begin (): Recording {
  const state = { histogram: new Histogram(), sentPerRoom: new Map<string, number>(), stats: { deliveries: 0, duplicates: 0, outOfOrder: 0, errorFrames: 0 }, errors: [] as string[], onAck: undefined as ((client: Client) => void) | undefined }
  running = state
  recording = { started: now(), cpu: process.cpuUsage(), before: new Map(clients.map((c) => [c, new Map(c.received)])), state }
  return recording
}

/**
 * Waits until every member of every room has received every message sent into it since begin()
 * (at most drainMs), then reports. `totalPerRoom`: what was sent into each room by every sender
 * (other load processes, the HTTP path), instead of this process's own count.
 */
async function finish (rec: Recording, elapsedMs: number, drainMs: number, totalPerRoom?: Record<string, number>): Promise<RunResult> {
  const { state, before } = rec
  const sentPerRoom = totalPerRoom === undefined ? new Map(state.sentPerRoom) : new Map(Object.entries(totalPerRoom))
  const expectedFor = (client: Client) => client.spec.rooms.reduce((n, room) => n + (sentPerRoom.get(room) ?? 0), 0)
  const receivedFor = (client: Client) => client.spec.rooms.reduce((n, room) => n + (client.received.get(room) ?? 0) - (before.get(client)!.get(room) ?? 0), 0)
  const drainStart = now()
  while (now() - drainStart < drainMs) {
    if (clients.every((c) => receivedFor(c) >= expectedFor(c))) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  // From when sending stopped (the answer to `run` may have come earlier than this collect).
  const drainedMs = Math.max(0, now() - (rec.started + elapsedMs))
  running = undefined
  recording = undefined
  let expectedDeliveries = 0
  let missing = 0
  for (const client of clients) {
    const expected = expectedFor(client)
    expectedDeliveries += expected
    missing += Math.max(0, expected - receivedFor(client))
  }
  for (const client of clients) client.outstanding = 0
  const cpu = process.cpuUsage(rec.cpu)
  return {
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs: now() - rec.started,
    elapsedMs,
    sent: [...state.sentPerRoom.values()].reduce((a, b) => a + b, 0),
    sentPerRoom: Object.fromEntries(state.sentPerRoom),
    deliveries: state.stats.deliveries,
    expectedDeliveries,
    missing,
    duplicates: state.stats.duplicates,
    outOfOrder: state.stats.outOfOrder,
    errorFrames: state.stats.errorFrames,
    errors: state.errors,
    latency: state.histogram.toJSON(),
    drainedMs
  }
}

async function run (request: RunRequest): Promise<RunResult | SendResult> {
  const senders = clients.filter((c) => c.spec.sendTo !== undefined && c.ws.readyState === WebSocket.OPEN)
  const rec = request.armed === true && recording !== undefined ? recording : begin()
  rec.started = now()
  const { state } = rec
  const sentPerRoom = state.sentPerRoom
  let sending = true
  const send = (client: Client) => {
    const frame = frameFor(client, request.bodyBytes, request.frame)
    client.outstanding++
    client.sent++
    sentPerRoom.set(client.spec.sendTo!, (sentPerRoom.get(client.spec.sendTo!) ?? 0) + 1)
    client.ws.send(frame)
  }
  const started = rec.started
  let timer: NodeJS.Timeout | undefined
  if (request.mode === 'closed') {
    const window = request.window ?? 1
    state.onAck = (client) => { if (sending && client.outstanding < window) send(client) }
    for (const client of senders) for (let i = 0; i < window; i++) send(client)
  } else {
    // Each sender's sends are spread evenly from a random phase; a 1 ms tick sends what is due.
    const interval = 1000 / request.ratePerSender!
    const due = senders.map(() => started + Math.random() * interval)
    const tick = () => {
      const t = now()
      for (let i = 0; i < senders.length; i++) {
        while (due[i]! <= t) {
          send(senders[i]!)
          due[i]! += interval
        }
      }
      if (sending) timer = setTimeout(tick, 1)
    }
    tick()
  }
  await new Promise((resolve) => setTimeout(resolve, request.durationMs))
  sending = false
  clearTimeout(timer)
  if (request.drain === false) {
    sendingElapsedMs = now() - started
    return { elapsedMs: sendingElapsedMs, sentPerRoom: Object.fromEntries(sentPerRoom) }
  }
  return await finish(rec, now() - started, request.drainMs)
}

async function close (): Promise<number> {
  const n = clients.length
  await Promise.all(clients.map((c) => new Promise<void>((resolve) => {
    if (c.ws.readyState === WebSocket.CLOSED) return resolve()
    c.ws.once('close', () => resolve())
    c.ws.terminate()
  })))
  clients.length = 0
  members.clear()
  return n
}

serveRequests({
  connect,
  run,
  /** Counting without sending: the HTTP path's messages arrive from the jobs service. */
  listen: () => { sendingElapsedMs = undefined; begin() },
  /** After `listen`, or `run` without drain: waits for the deliveries of what was sent into each room. */
  collect: (request: { drainMs: number, sentPerRoom: Record<string, number> }) => {
    if (recording === undefined) throw new Error('collect without listen or run')
    return finish(recording, sendingElapsedMs ?? now() - recording.started, request.drainMs, request.sentPerRoom)
  },
  close,
  memory: () => process.memoryUsage()
})
