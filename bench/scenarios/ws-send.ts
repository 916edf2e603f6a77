// Scenario 1, the websocket send path: S senders in rooms of R members, every member a socket
// joined to its room, every message stored and broadcast to the room (the sender's own socket
// included). Measured at the maximum rate (each sender keeps a few messages outstanding), again
// at half that rate for latency, and (rooms of 2) at a fixed 1,000 msg/s; then every delivery and
// every stored row is counted. The load comes from several load processes (lib/ws-load.ts).
// Baseline: the bare ws broadcast server, same rooms, same frames, same load generator.
import { spawnChild } from '../lib/child.ts'
import { checkStored, createRooms, type Room } from '../lib/fixtures.ts'
import { Histogram } from '../lib/histogram.ts'
import { atLeast, atMost, ratioRow, type Row, type ScenarioResult, type Target } from '../lib/report.ts'
import { busyGeneratorNote, loadCpu, problemsOf, wsLoad, type GroupConnect, type GroupRun } from '../lib/ws-load.ts'
import type { BenchContext } from '../lib/context.ts'
import type { SocketSpec } from '../load/ws-clients.ts'

export interface WsSendOptions {
  roomSize: number
  rooms: number
  sendersPerRoom: number
  /** Messages each sender keeps outstanding in the maximum-rate run. */
  window: number
  bodyBytes: number
  /** Also measure latency at this fixed overall rate (msg/s). */
  fixedRate?: number
}

const BARE = new URL('../load/bare-ws-server.ts', import.meta.url)

function socketsFor (rooms: Room[], sendersPerRoom: number): SocketSpec[] {
  return rooms.flatMap((room) => room.members.map((userId, i) => ({
    userId,
    rooms: [room.id],
    ...(i < sendersPerRoom ? { sendTo: room.id } : {})
  })))
}

interface Measured {
  connect: GroupConnect
  warmup: GroupRun
  max: GroupRun
  latency?: GroupRun
  fixed?: GroupRun
  sentPerRoom: Map<string, number>
  processes: number
}

function rate (run: GroupRun): { messages: number, deliveries: number } {
  // Until the last delivery: messages still in flight when sending stopped count only once delivered.
  const seconds = (run.elapsedMs + run.drainedMs) / 1000
  return { messages: run.sent / seconds, deliveries: run.deliveries / seconds }
}

async function measure (ctx: BenchContext, url: string, sockets: SocketSpec[], options: WsSendOptions, withLatency: boolean): Promise<Measured> {
  const load = wsLoad()
  try {
    const connect = await load.connect(url, sockets, 50)
    if (connect.connected !== sockets.length || connect.joined !== sockets.length) {
      throw new Error(`only ${connect.connected} of ${sockets.length} sockets connected and ${connect.joined} joined: ${connect.errors.join('; ')}`)
    }
    const senders = sockets.filter((s) => s.sendTo !== undefined).length
    const drainMs = 15_000
    const warmup = await load.run({ durationMs: Math.min(1000, ctx.durationMs), mode: 'closed', window: options.window, bodyBytes: options.bodyBytes, drainMs })
    const max = await load.run({ durationMs: ctx.durationMs, mode: 'closed', window: options.window, bodyBytes: options.bodyBytes, drainMs })
    let latency: GroupRun | undefined
    let fixed: GroupRun | undefined
    if (withLatency) {
      const half = rate(max).messages / 2
      latency = await load.run({ durationMs: ctx.latencyMs, mode: 'rate', ratePerSender: half / senders, bodyBytes: options.bodyBytes, drainMs })
      if (options.fixedRate !== undefined) {
        fixed = await load.run({ durationMs: ctx.latencyMs, mode: 'rate', ratePerSender: options.fixedRate / senders, bodyBytes: options.bodyBytes, drainMs })
      }
    }
    const sentPerRoom = new Map<string, number>()
    for (const run of [warmup, max, latency, fixed]) {
      for (const [room, n] of Object.entries(run?.sentPerRoom ?? {})) sentPerRoom.set(room, (sentPerRoom.get(room) ?? 0) + n)
    }
    await load.close()
    return { connect, warmup, max, latency, fixed, sentPerRoom, processes: load.processes }
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
  for (const [label, run] of [['warm-up', chatty.warmup], ['max rate', chatty.max], ['half rate', chatty.latency!], ['fixed rate', chatty.fixed]] as const) {
    if (run !== undefined) problems.push(...problemsOf(`chatty ${label}`, run))
  }
  ctx.log(`${name}: chatty max rate ${Math.round(rate(chatty.max).messages)} msg/s; ${loadCpu(chatty.max.cpuShares)}`)
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
  ctx.log(`${name}: bare ws max rate ${Math.round(rate(bare.max).messages)} msg/s; ${loadCpu(bare.max.cpuShares)}`)

  const max = rate(chatty.max)
  const bareMax = rate(bare.max)
  const maxLatency = Histogram.from(chatty.max.latency).summary()
  const halfLatency = Histogram.from(chatty.latency!.latency).summary()
  const halfRate = rate(chatty.latency!)
  const bareLatency = Histogram.from(bare.max.latency).summary()
  const rawInsert = ctx.baselines.rawInsertTps ?? Number.NaN

  // The targets: rooms of 2 store and deliver at least as fast as Postgres takes single-row
  // INSERTs, rooms of 10 at 0.8x of it; fan-out (rooms of 10 and 100) at 0.7x of the bare server.
  const storeTarget: Target | undefined = options.roomSize === 2 ? atLeast(1.0) : options.roomSize === 10 ? atLeast(0.8) : undefined
  const fanOutTarget: Target | undefined = options.roomSize >= 10 ? atLeast(0.7) : undefined
  const rows: Row[] = [
    ratioRow('stored+delivered msg/s (max)', max.messages, rawInsert, 'pg INSERT tps @16', '/s', storeTarget),
    ratioRow('deliveries/s (max)', max.deliveries, bareMax.deliveries, 'bare ws', '/s', fanOutTarget),
    { metric: 'p99 ms at max rate', value: maxLatency.p99, unit: 'ms', baseline: bareLatency.p99, baselineName: 'bare ws' },
    { metric: 'msg/s at half rate', value: halfRate.messages, unit: '/s' },
    { metric: 'p99 ms at half rate', value: halfLatency.p99, unit: 'ms', ...(options.roomSize <= 10 ? { target: atMost(15, 'value') } : {}) }
  ]
  let fixedLatency: ReturnType<Histogram['summary']> | undefined
  if (chatty.fixed !== undefined && options.fixedRate !== undefined) {
    fixedLatency = Histogram.from(chatty.fixed.latency).summary()
    rows.push({ metric: `p99 ms at ${options.fixedRate.toLocaleString('en-US')} msg/s`, value: fixedLatency.p99, unit: 'ms', target: atMost(5, 'value') })
  }
  const notes = [
    ...busyGeneratorNote('chatty max rate', chatty.max.cpuShares),
    ...busyGeneratorNote('bare ws max rate', bare.max.cpuShares)
  ]
  return {
    name,
    rows,
    problems,
    notes,
    details: {
      options,
      sockets: sockets.length,
      senders,
      loadProcesses: chatty.processes,
      loadCpuShare: { chattyMax: chatty.max.cpuShares, chattyHalf: chatty.latency!.cpuShares, bareMax: bare.max.cpuShares },
      connect: chatty.connect,
      chatty: {
        maxRate: { messagesPerSecond: max.messages, deliveriesPerSecond: max.deliveries, latencyMs: maxLatency, run: { ...chatty.max, latency: undefined, sentPerRoom: undefined } },
        halfRate: { messagesPerSecond: halfRate.messages, deliveriesPerSecond: halfRate.deliveries, latencyMs: halfLatency, run: { ...chatty.latency, latency: undefined, sentPerRoom: undefined } },
        ...(chatty.fixed === undefined ? {} : { fixedRate: { messagesPerSecond: rate(chatty.fixed).messages, latencyMs: fixedLatency } }),
        sentTotal,
        storedTotal
      },
      bare: { maxRate: { messagesPerSecond: bareMax.messages, deliveriesPerSecond: bareMax.deliveries, latencyMs: bareLatency } },
      baselines: { rawInsertTps: rawInsert }
    }
  }
}
