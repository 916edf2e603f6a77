// Scenario 2, the HTTP send path: POST /api/v1/chat/:id (checked, queued, 202) through the jobs
// service (stored, published) to the conversation's live sockets. First at full speed to find
// what the jobs service drains; then at 90% of that, where the backlog must stay flat. Every
// accepted send must be stored once and delivered to every member's socket.
// Baseline: graphile-worker's own runner draining no-op jobs at the jobs service's concurrency.
import pg from 'pg'
import { spawnChild } from '../lib/child.ts'
import { checkStored, createRooms } from '../lib/fixtures.ts'
import { Histogram } from '../lib/histogram.ts'
import { atLeast, atMost, ratioRow, type ScenarioResult } from '../lib/report.ts'
import { sleep, type BenchContext } from '../lib/context.ts'
import { busyGeneratorNote, loadCpu, wsLoad } from '../lib/ws-load.ts'
import type { DrainResult } from '../load/graphile-drain.ts'
import type { HttpLoadResult } from '../load/http.ts'

const HTTP = new URL('../load/http.ts', import.meta.url)
const DRAIN = new URL('../load/graphile-drain.ts', import.meta.url)
const CONNECTIONS = 32

interface Sample { atMs: number, backlog: number, stored: number }

/** Samples the queue's backlog and the stored count every 250 ms until stopped. */
function sampler (dbUrl: string, conversationIds: string[]) {
  const client = new pg.Client({ connectionString: dbUrl })
  const samples: Sample[] = []
  let stopped = false
  const started = performance.now()
  const read = async (): Promise<Sample> => {
    const { rows: [row] } = await client.query<{ backlog: string, stored: string }>(`
      SELECT (SELECT count(*) FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
               WHERE t.identifier = 'chat:send_message') AS backlog,
             (SELECT coalesce(sum(last_seq), 0) FROM chat.conversation WHERE id = ANY ($1::uuid[])) AS stored`, [conversationIds])
    return { atMs: performance.now() - started, backlog: Number(row!.backlog), stored: Number(row!.stored) }
  }
  const loop = (async () => {
    await client.connect()
    while (!stopped) {
      samples.push(await read())
      await sleep(250)
    }
  })()
  return {
    samples,
    read,
    async stop () {
      stopped = true
      await loop
      await client.end()
    }
  }
}

function storedRate (samples: Sample[], fromMs: number, toMs: number): number {
  const inside = samples.filter((s) => s.atMs >= fromMs && s.atMs <= toMs)
  if (inside.length < 2) return Number.NaN
  const first = inside[0]!
  const last = inside.at(-1)!
  return (last.stored - first.stored) / ((last.atMs - first.atMs) / 1000)
}

export async function runHttpSend (ctx: BenchContext): Promise<ScenarioResult> {
  const name = 'HTTP send (queue)'
  const problems: string[] = []
  const concurrency = 10

  ctx.log(`${name}: baseline, graphile-worker draining no-op jobs at concurrency ${concurrency}`)
  const drainer = spawnChild(DRAIN)
  let drain: DrainResult
  try {
    drain = await drainer.request<DrainResult>('drain', { url: ctx.dbUrl, jobs: ctx.quick ? 5000 : 8000, concurrency })
  } finally {
    await drainer.stop()
  }
  if (drain.completed !== drain.jobs) problems.push(`graphile-worker drained ${drain.completed} of ${drain.jobs} jobs`)
  ctx.log(`${name}: graphile-worker drains ${Math.round(drain.jobsPerSecond)} no-op jobs/s`)

  const rooms = await createRooms(ctx.chatty.apiUrl, 32, 2)
  const ids = rooms.map((room) => room.id)
  const targets = rooms.flatMap((room) => room.members.map((senderId) => ({ conversationId: room.id, senderId })))
  const listeners = wsLoad()
  const http = spawnChild(HTTP)
  const samples = sampler(ctx.dbUrl, ids)
  try {
    const sockets = rooms.flatMap((room) => room.members.map((userId) => ({ userId, rooms: [room.id] })))
    const connected = await listeners.connect(ctx.chatty.wsUrl, sockets, 50)
    if (connected.joined !== sockets.length) throw new Error(`only ${connected.joined} of ${sockets.length} listeners joined: ${connected.errors.join('; ')}`)

    let storedBefore: Record<string, number> = {}
    const phase = async (label: string, overallRate: number | undefined) => {
      await listeners.listen()
      const from = performance.now()
      const fromMs = samples.samples.at(-1)?.atMs ?? 0
      const load = await http.request<HttpLoadResult>('fire', {
        kind: 'send', url: ctx.chatty.apiUrl, targets, connections: CONNECTIONS, durationMs: ctx.durationMs, bodyBytes: 64,
        ...(overallRate === undefined ? {} : { overallRate })
      })
      const loadEndMs = fromMs + (performance.now() - from)
      // The backlog must drain once the load stops.
      const deadline = performance.now() + 120_000
      let last = await samples.read()
      while (last.backlog > 0 && performance.now() < deadline) {
        await sleep(100)
        last = await samples.read()
      }
      const drainedAtMs = fromMs + (performance.now() - from)
      // Every stored message must reach every member. What was stored is the database's count: a
      // send still in flight when autocannon stopped is stored without its 202 being counted.
      const stored = await checkStored(ctx.dbUrl, ids)
      const storedPerRoom = Object.fromEntries(ids.map((id) => [id, (stored.stored[id] ?? 0) - (storedBefore[id] ?? 0)]))
      storedBefore = stored.stored
      const storedNow = Object.values(storedPerRoom).reduce((a, b) => a + b, 0)
      const delivered = await listeners.collect(15_000, storedPerRoom)
      const accepted = load.statuses['2xx'] ?? 0
      if (load.requests !== accepted || load.errors > 0) problems.push(`${label}: ${load.requests - accepted} sends not accepted, ${load.errors} errors (${JSON.stringify(load.statuses)})`)
      if (storedNow < accepted || storedNow > accepted + CONNECTIONS) problems.push(`${label}: ${accepted} sends answered 202, ${storedNow} stored`)
      for (const [room, n] of Object.entries(load.acceptedPerRoom)) {
        if ((storedPerRoom[room] ?? 0) < n) problems.push(`${label}: conversation ${room}: ${n} accepted, ${storedPerRoom[room] ?? 0} stored`)
      }
      if (stored.seqProblems.length > 0) problems.push(`${label}: seq not 1..n in ${stored.seqProblems.length} conversations`)
      if (delivered.missing > 0) problems.push(`${label}: ${delivered.missing} of ${delivered.expectedDeliveries} deliveries missing`)
      if (delivered.duplicates > 0 || delivered.outOfOrder > 0) problems.push(`${label}: ${delivered.duplicates} duplicate and ${delivered.outOfOrder} out-of-order deliveries`)
      if (last.backlog > 0) problems.push(`${label}: ${last.backlog} jobs still queued 120 s after the load stopped`)
      const during = samples.samples.filter((s) => s.atMs >= fromMs && s.atMs <= loadEndMs)
      const loadShares = [load.cpuMs / load.elapsedMs, ...delivered.cpuShares]
      ctx.log(`${name}: ${label}: ${Math.round(accepted / (ctx.durationMs / 1000))} accepted/s; autocannon and ${listeners.processes} listeners: ${loadCpu(loadShares)}`)
      return {
        loadShares,
        accepted,
        acceptedPerSecond: accepted / (ctx.durationMs / 1000),
        // Whole phase, until the backlog was gone: what the jobs service actually stores per second.
        storedPerSecond: accepted / ((drainedAtMs - fromMs) / 1000),
        storedPerSecondDuringLoad: storedRate(samples.samples, fromMs, loadEndMs),
        backlog: during.map((s) => ({ t: Math.round(s.atMs - fromMs), backlog: s.backlog })),
        backlogMax: Math.max(0, ...during.map((s) => s.backlog)),
        backlogAtEnd: during.at(-1)?.backlog ?? 0,
        drainAfterLoadMs: drainedAtMs - loadEndMs,
        httpLatencyMs: load.latencyMs,
        deliverLatencyMs: Histogram.from(delivered.latency).summary(),
        load,
        delivered: { ...delivered, latency: undefined, sentPerRoom: undefined, cpuShares: delivered.cpuShares }
      }
    }

    ctx.log(`${name}: full speed`)
    const full = await phase('full speed', undefined)
    const sustainedRate = Math.max(50, Math.floor(full.storedPerSecond * 0.9))
    ctx.log(`${name}: full speed accepted ${Math.round(full.acceptedPerSecond)}/s, stored ${Math.round(full.storedPerSecond)}/s; now ${sustainedRate}/s`)
    const sustained = await phase('sustained', sustainedRate)
    // Bounded: what is queued at the end of the sustained run is under a second of sends.
    const backlogSeconds = sustained.backlogAtEnd / sustainedRate
    const bounded = backlogSeconds <= 1
    if (!bounded) problems.push(`backlog grew to ${sustained.backlogAtEnd} at ${sustainedRate}/s`)

    const acceptedTotal = full.accepted + sustained.accepted
    const storedTotal = Object.values(storedBefore).reduce((a, b) => a + b, 0)

    return {
      name,
      rows: [
        { metric: 'accepted/s (full speed)', value: full.acceptedPerSecond, unit: '/s' },
        ratioRow('stored msg/s (full speed, until drained)', full.storedPerSecond, drain.jobsPerSecond, 'graphile-worker no-op drain', '/s'),
        ratioRow('stored msg/s (sustained at 90% of it)', sustained.storedPerSecondDuringLoad, drain.jobsPerSecond, 'graphile-worker no-op drain', '/s', atLeast(0.5)),
        { metric: 'backlog max (sustained)', value: sustained.backlogMax, unit: 'jobs' },
        { metric: 'backlog at end (sustained), s of sends', value: backlogSeconds, unit: 's', target: atMost(1, 'value') },
        { metric: 'p99 ms POST 202 (sustained)', value: sustained.httpLatencyMs.p99, unit: 'ms' },
        { metric: 'p99 ms POST to delivery (sustained)', value: sustained.deliverLatencyMs.p99, unit: 'ms', target: atMost(100, 'value') }
      ],
      problems,
      notes: [...busyGeneratorNote('full speed', full.loadShares), ...busyGeneratorNote('sustained', sustained.loadShares)],
      details: { drain, full, sustained, sustainedRate, acceptedTotal, storedTotal, loadProcesses: 1 + listeners.processes }
    }
  } finally {
    await samples.stop()
    await http.stop()
    await listeners.stop()
  }
}
