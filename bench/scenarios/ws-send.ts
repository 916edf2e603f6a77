// Scenario 1, the websocket send path: S senders in rooms of R members, every member a socket
// joined to its room, every message stored and broadcast to the room (the sender's own socket
// included). Measured at the maximum rate (each sender keeps a few messages outstanding) and
// again at half that rate for latency; then every delivery and every stored row is counted.
// Baseline: the bare ws broadcast server, same rooms, same frames, same load generator.
import { spawnChild, type Child } from '../lib/child.ts'
import { checkStored, createRooms, type Room } from '../lib/fixtures.ts'
import { Histogram } from '../lib/histogram.ts'
import { ratioRow, type Row, type ScenarioResult } from '../lib/report.ts'
import type { BenchContext } from '../lib/context.ts'
import type { ConnectResult, RunResult, SocketSpec } from '../load/ws-clients.ts'

export interface WsSendOptions {
  roomSize: number
  rooms: number
  sendersPerRoom: number
  /** Messages each sender keeps outstanding in the maximum-rate run. */
  window: number
  bodyBytes: number
}

const LOAD = new URL('../load/ws-clients.ts', import.meta.url)
const BARE = new URL('../load/bare-ws-server.ts', import.meta.url)

function socketsFor (rooms: Room[], sendersPerRoom: number): SocketSpec[] {
  return rooms.flatMap((room) => room.members.map((userId, i) => ({
    userId,
    rooms: [room.id],
    ...(i < sendersPerRoom ? { sendTo: room.id } : {})
  })))
}

interface Measured {
  connect: ConnectResult
  warmup: RunResult
  max: RunResult
  latency?: RunResult
  sentPerRoom: Map<string, number>
}

function rate (run: RunResult): { messages: number, deliveries: number } {
  // Until the last delivery: messages still in flight when sending stopped count only once delivered.
  const seconds = (run.elapsedMs + run.drainedMs) / 1000
  return { messages: run.sent / seconds, deliveries: run.deliveries / seconds }
}

function problemsOf (label: string, run: RunResult): string[] {
  const problems: string[] = []
  if (run.missing > 0) problems.push(`${label}: ${run.missing} of ${run.expectedDeliveries} deliveries missing`)
  if (run.duplicates > 0) problems.push(`${label}: ${run.duplicates} duplicate deliveries`)
  if (run.outOfOrder > 0) problems.push(`${label}: ${run.outOfOrder} deliveries out of seq order`)
  if (run.errorFrames > 0) problems.push(`${label}: ${run.errorFrames} error frames (${run.errors[0] ?? ''})`)
  return problems
}

async function measure (ctx: BenchContext, url: string, sockets: SocketSpec[], options: WsSendOptions, withLatency: boolean): Promise<Measured> {
  const load: Child = spawnChild(LOAD)
  try {
    const connect = await load.request<ConnectResult>('connect', { url, sockets, concurrency: 50 })
    if (connect.connected !== sockets.length || connect.joined !== sockets.length) {
      throw new Error(`only ${connect.connected} of ${sockets.length} sockets connected and ${connect.joined} joined: ${connect.errors.join('; ')}`)
    }
    const senders = sockets.filter((s) => s.sendTo !== undefined).length
    const drainMs = 15_000
    const warmup = await load.request<RunResult>('run', { durationMs: Math.min(2000, ctx.durationMs), mode: 'closed', window: options.window, bodyBytes: options.bodyBytes, drainMs })
    const max = await load.request<RunResult>('run', { durationMs: ctx.durationMs, mode: 'closed', window: options.window, bodyBytes: options.bodyBytes, drainMs })
    let latency: RunResult | undefined
    if (withLatency) {
      const half = rate(max).messages / 2
      latency = await load.request<RunResult>('run', { durationMs: ctx.durationMs, mode: 'rate', ratePerSender: half / senders, bodyBytes: options.bodyBytes, drainMs })
    }
    const sentPerRoom = new Map<string, number>()
    for (const run of [warmup, max, latency]) {
      for (const [room, n] of Object.entries(run?.sentPerRoom ?? {})) sentPerRoom.set(room, (sentPerRoom.get(room) ?? 0) + n)
    }
    await load.request('close')
    return { connect, warmup, max, latency, sentPerRoom }
  } finally {
    await load.stop()
  }
}

export async function runWsSend (ctx: BenchContext, options: WsSendOptions): Promise<ScenarioResult> {
  const name = `ws send, rooms of ${options.roomSize}`
  const senders = options.rooms * options.sendersPerRoom
  ctx.log(`${name}: ${options.rooms} rooms, ${senders} senders, ${options.rooms * options.roomSize} sockets`)
  const rooms = await createRooms(ctx.chatty.apiUrl, options.rooms, options.roomSize)
  const sockets = socketsFor(rooms, options.sendersPerRoom)
  const problems: string[] = []

  const chatty = await measure(ctx, ctx.chatty.wsUrl, sockets, options, true)
  for (const [label, run] of [['warm-up', chatty.warmup], ['max rate', chatty.max], ['half rate', chatty.latency!]] as const) problems.push(...problemsOf(`chatty ${label}`, run))
  // Every message a sender sent was stored exactly once, with seqs 1..n.
  const stored = await checkStored(ctx.dbUrl, rooms.map((room) => room.id))
  let storedTotal = 0
  let sentTotal = 0
  for (const room of rooms) {
    const sent = chatty.sentPerRoom.get(room.id) ?? 0
    const rows = stored.stored[room.id] ?? 0
    sentTotal += sent
    storedTotal += rows
    if (rows !== sent) problems.push(`conversation ${room.id}: ${sent} sent, ${rows} stored`)
  }
  if (stored.seqProblems.length > 0) problems.push(`seq not 1..n in ${stored.seqProblems.length} conversations`)

  ctx.log(`${name}: bare ws baseline`)
  const bareServer = spawnChild(BARE)
  let bare: Measured
  try {
    const { port } = await bareServer.request<{ port: number }>('start')
    bare = await measure(ctx, `ws://127.0.0.1:${port}/`, sockets, options, false)
  } finally {
    await bareServer.stop()
  }
  for (const [label, run] of [['warm-up', bare.warmup], ['max rate', bare.max]] as const) problems.push(...problemsOf(`bare ws ${label}`, run))

  const max = rate(chatty.max)
  const bareMax = rate(bare.max)
  const maxLatency = Histogram.from(chatty.max.latency).summary()
  const halfLatency = Histogram.from(chatty.latency!.latency).summary()
  const halfRate = rate(chatty.latency!)
  const bareLatency = Histogram.from(bare.max.latency).summary()
  const rawInsert = ctx.baselines.rawInsertTps ?? Number.NaN

  const rows: Row[] = [
    ratioRow('stored+delivered msg/s (max)', max.messages, rawInsert, 'pg INSERT tps @16', '/s', options.roomSize === 2 ? { min: 1.0 } : undefined),
    ratioRow('deliveries/s (max)', max.deliveries, bareMax.deliveries, 'bare ws', '/s', options.roomSize === 100 ? { min: 0.7 } : undefined),
    { metric: 'p99 ms at max rate', value: maxLatency.p99, unit: 'ms', baseline: bareLatency.p99, baselineName: 'bare ws' },
    {
      metric: `p99 ms at half rate (${Math.round(halfRate.messages).toLocaleString('en-US')} msg/s)`,
      value: halfLatency.p99,
      unit: 'ms',
      target: '<= 15 ms',
      met: halfLatency.p99 <= 15
    }
  ]
  return {
    name,
    rows,
    problems,
    details: {
      options,
      sockets: sockets.length,
      senders,
      connect: chatty.connect,
      chatty: {
        maxRate: { messagesPerSecond: max.messages, deliveriesPerSecond: max.deliveries, latencyMs: maxLatency, run: { ...chatty.max, latency: undefined, sentPerRoom: undefined } },
        halfRate: { messagesPerSecond: halfRate.messages, deliveriesPerSecond: halfRate.deliveries, latencyMs: halfLatency, run: { ...chatty.latency, latency: undefined, sentPerRoom: undefined } },
        sentTotal,
        storedTotal
      },
      bare: { maxRate: { messagesPerSecond: bareMax.messages, deliveriesPerSecond: bareMax.deliveries, latencyMs: bareLatency } },
      baselines: { rawInsertTps: rawInsert }
    }
  }
}
