// Scenario 1, the websocket send path: S senders in rooms of R members, every member a socket
// joined to its room, every message stored and broadcast to the room (the sender's own socket
// included). Measured at the maximum rate (each sender keeps a few messages outstanding), again
// at half that rate for latency, and (rooms of 2) at a fixed 1,000 msg/s; then every delivery and
// every stored row is counted. The load comes from several load processes (lib/ws-load.ts).
// Baselines: the bare ws broadcast server, same rooms, same frames, same load generator; and the
// store alone (load/pg-store.ts), the api's group commit on Postgres with the same senders, which
// bounds the stored msg/s (and so the deliveries) the send path can reach. Also the api's CPU time
// per message over the maximum-rate run.
import { spawnChild } from '../lib/child.ts'
import { checkStored, createRooms, type Room } from '../lib/fixtures.ts'
import { Histogram } from '../lib/histogram.ts'
import { atLeast, atMost, ratioRow, type Row, type ScenarioResult, type Target } from '../lib/report.ts'
import { busyGeneratorNote, loadCpu, problemsOf, wsLoad, type GroupConnect, type GroupRun } from '../lib/ws-load.ts'
import type { BenchContext } from '../lib/context.ts'
import type { SocketSpec } from '../load/ws-clients.ts'
import type { StoreLoad, StoreResult } from '../load/pg-store.ts'

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
const STORE = new URL('../load/pg-store.ts', import.meta.url)

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
  /** The server's CPU time during the maximum-rate run, in us (when measure was given a way to read it). */
  maxCpuUs?: number
}

function rate (run: GroupRun): { messages: number, deliveries: number } {
  // Until the last delivery: messages still in flight when sending stopped count only once delivered.
  const seconds = (run.elapsedMs + run.drainedMs) / 1000
  return { messages: run.sent / seconds, deliveries: run.deliveries / seconds }
}

async function measure (ctx: BenchContext, url: string, sockets: SocketSpec[], options: WsSendOptions, withLatency: boolean, cpuUs?: () => Promise<number>): Promise<Measured> {
  const load = wsLoad()
  try {
    const connect = await load.connect(url, sockets, 50)
    if (connect.connected !== sockets.length || connect.joined !== sockets.length) {
      throw new Error(`only ${connect.connected} of ${sockets.length} sockets connected and ${connect.joined} joined: ${connect.errors.join('; ')}`)
    }
    const senders = sockets.filter((s) => s.sendTo !== undefined).length
    const drainMs = 15_000
    const warmup = await load.run({ durationMs: Math.min(1000, ctx.durationMs), mode: 'closed', window: options.window, bodyBytes: options.bodyBytes, drainMs })
    const cpuBefore = await cpuUs?.()
    const max = await load.run({ durationMs: ctx.durationMs, mode: 'closed', window: options.window, bodyBytes: options.bodyBytes, drainMs })
    const maxCpuUs = cpuBefore === undefined ? undefined : (await cpuUs!()) - cpuBefore
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
    return { connect, warmup, max, latency, fixed, sentPerRoom, processes: load.processes, maxCpuUs }
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

  const apiCpuUs = async () => {
    const { cpu } = await ctx.chatty.api.probe()
    return cpu.user + cpu.system
  }
  const chatty = await measure(ctx, ctx.chatty.wsUrl, sockets, options, true, apiCpuUs)
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

  // The store alone: the same senders through the group commit on Postgres, no api in the way.
  ctx.log(`${name}: the store alone (group commit on Postgres)`)
  const storeLoad = spawnChild(STORE)
  let store: StoreResult
  try {
    const senderSpecs = sockets.filter((s) => s.sendTo !== undefined).map((s) => ({ conversationId: s.sendTo!, senderId: s.userId }))
    const request: StoreLoad = { url: ctx.dbUrl, senders: senderSpecs, outstanding: 1, bodyBytes: options.bodyBytes, durationMs: Math.min(ctx.durationMs, 4000) }
    store = await storeLoad.request<StoreResult>('run', request)
  } finally {
    await storeLoad.stop()
  }
  const storeRate = store.stored / (store.elapsedMs / 1000)
  ctx.log(`${name}: the store alone ${Math.round(storeRate)} msg/s in ${store.batches} batches, ${store.cpuUsPerMessage.toFixed(1)} us of its client's CPU per message`)
  const storedAfter = await checkStored(ctx.dbUrl, rooms.map((room) => room.id))
  for (const room of rooms) {
    const expected = (chatty.sentPerRoom.get(room.id) ?? 0) + (store.storedPerConversation[room.id] ?? 0)
    if ((storedAfter.stored[room.id] ?? 0) !== expected) problems.push(`the store alone: conversation ${room.id}: ${expected} stored, ${storedAfter.stored[room.id] ?? 0} rows`)
  }
  if (storedAfter.seqProblems.length > 0) problems.push(`the store alone: seq not 1..n in ${storedAfter.seqProblems.length} conversations`)

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
    { metric: 'api CPU us per message (max rate)', value: (chatty.maxCpuUs ?? Number.NaN) / chatty.max.sent, unit: 'us' },
    ratioRow('stored msg/s (max) vs the store alone', max.messages, storeRate, 'group commit alone on pg', '/s'),
    ratioRow('deliveries/s the store allows (room size x store alone)', options.roomSize * storeRate, bareMax.deliveries, 'bare ws', '/s'),
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
      storeAlone: { messagesPerSecond: storeRate, batches: store.batches, clientCpuUsPerMessage: store.cpuUsPerMessage, stored: store.stored, elapsedMs: store.elapsedMs },
      baselines: { rawInsertTps: rawInsert }
    }
  }
}
