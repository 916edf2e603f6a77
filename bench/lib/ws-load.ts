// A scenario's websocket load: several load processes (load/ws-clients.ts), each with its share
// of the sockets, driven together. Sockets are dealt round-robin, so each room's members and
// senders are spread over the processes; a run sends in all of them at once, then each waits for
// the deliveries of what all of them sent. Their CPU use is reported, so a figure bound by the
// load generators rather than by the server is visible as such.
import { spawnChild, type Child } from './child.ts'
import { Histogram } from './histogram.ts'
import type { ConnectResult, RunRequest, RunResult, SendResult, SocketSpec } from '../load/ws-clients.ts'

const LOAD = new URL('../load/ws-clients.ts', import.meta.url)

/** Load processes per websocket scenario (--generators). */
export let WS_GENERATORS = 2
export function setWsGenerators (n: number): void { WS_GENERATORS = n }

export interface GroupRun extends RunResult {
  /** CPU of each load process as a share of one core over the run (0..1). */
  cpuShares: number[]
}

export interface GroupConnect extends ConnectResult {
  cpuShares: number[]
}

export interface WsLoad {
  readonly processes: number
  connect (url: string, sockets: SocketSpec[], concurrency: number): Promise<GroupConnect>
  run (request: RunRequest): Promise<GroupRun>
  listen (): Promise<void>
  collect (drainMs: number, sentPerRoom: Record<string, number>): Promise<GroupRun>
  close (): Promise<void>
  stop (): Promise<void>
}

function merge (runs: RunResult[], elapsedMs: number): GroupRun {
  const histogram = new Histogram()
  for (const run of runs) histogram.merge(run.latency)
  const sum = (f: (r: RunResult) => number) => runs.reduce((n, r) => n + f(r), 0)
  const sentPerRoom: Record<string, number> = {}
  for (const run of runs) for (const [room, n] of Object.entries(run.sentPerRoom)) sentPerRoom[room] = (sentPerRoom[room] ?? 0) + n
  return {
    elapsedMs,
    sent: sum((r) => r.sent),
    sentPerRoom,
    deliveries: sum((r) => r.deliveries),
    expectedDeliveries: sum((r) => r.expectedDeliveries),
    missing: sum((r) => r.missing),
    duplicates: sum((r) => r.duplicates),
    outOfOrder: sum((r) => r.outOfOrder),
    errorFrames: sum((r) => r.errorFrames),
    errors: runs.flatMap((r) => r.errors).slice(0, 20),
    latency: histogram.toJSON(),
    drainedMs: Math.max(...runs.map((r) => r.drainedMs)),
    cpuMs: sum((r) => r.cpuMs),
    wallMs: Math.max(...runs.map((r) => r.wallMs)),
    cpuShares: runs.map((r) => r.cpuMs / Math.max(1, r.wallMs))
  }
}

export function wsLoad (processes = WS_GENERATORS): WsLoad {
  const children: Child[] = Array.from({ length: processes }, () => spawnChild(LOAD))
  return {
    processes,
    async connect (url, sockets, concurrency) {
      const started = performance.now()
      const parts = await Promise.all(children.map((child, g) => child.request<ConnectResult>('connect', {
        url,
        sockets: sockets.filter((_, i) => i % processes === g),
        concurrency: Math.max(1, Math.ceil(concurrency / processes)),
        indexBase: g * 1_000_000
      })))
      const wallMs = performance.now() - started
      return {
        connected: parts.reduce((n, p) => n + p.connected, 0),
        joined: parts.reduce((n, p) => n + p.joined, 0),
        connectMs: Math.max(...parts.map((p) => p.connectMs)),
        joinMs: Math.max(...parts.map((p) => p.joinMs)),
        errors: parts.flatMap((p) => p.errors).slice(0, 20),
        cpuMs: parts.reduce((n, p) => n + p.cpuMs, 0),
        cpuShares: parts.map((p) => p.cpuMs / Math.max(1, wallMs))
      }
    },
    async run (request) {
      await Promise.all(children.map((child) => child.request('listen')))
      const sends = await Promise.all(children.map((child) => child.request<SendResult>('run', { ...request, drain: false, armed: true })))
      const sentPerRoom: Record<string, number> = {}
      for (const part of sends) for (const [room, n] of Object.entries(part.sentPerRoom)) sentPerRoom[room] = (sentPerRoom[room] ?? 0) + n
      // Each process reports what it sent itself, and expects what all of them sent.
      const runs = await Promise.all(children.map((child) => child.request<RunResult>('collect', { drainMs: request.drainMs, sentPerRoom })))
      return merge(runs, Math.max(...sends.map((s) => s.elapsedMs)))
    },
    async listen () {
      await Promise.all(children.map((child) => child.request('listen')))
    },
    async collect (drainMs, sentPerRoom) {
      const runs = await Promise.all(children.map((child) => child.request<RunResult>('collect', { drainMs, sentPerRoom })))
      return merge(runs, Math.max(...runs.map((r) => r.elapsedMs)))
    },
    async close () {
      await Promise.all(children.map((child) => child.request('close')))
    },
    async stop () {
      await Promise.all(children.map((child) => child.stop()))
    }
  }
}

/** A load process at or above this share of one core may be what limits the figure. */
export const GENERATOR_BUSY = 0.9

/** "2 load processes, CPU 41%, 44% of a core" for the log. */
export function loadCpu (shares: number[]): string {
  return `${shares.length} load process${shares.length === 1 ? '' : 'es'}, CPU ${shares.map((s) => `${Math.round(100 * s)}%`).join(', ')} of a core`
}

/** A note for the table when a load process was near a full core during a measured run. */
export function busyGeneratorNote (label: string, shares: number[]): string[] {
  const max = Math.max(...shares)
  return max >= GENERATOR_BUSY ? [`${label}: a load process used ${Math.round(100 * max)}% of a core; the figure may be bound by the load generator`] : []
}

/** What a run got wrong: deliveries missing, duplicated or out of seq order, error frames. */
export function problemsOf (label: string, run: GroupRun): string[] {
  const problems: string[] = []
  if (run.missing > 0) problems.push(`${label}: ${run.missing} of ${run.expectedDeliveries} deliveries missing`)
  if (run.duplicates > 0) problems.push(`${label}: ${run.duplicates} duplicate deliveries`)
  if (run.outOfOrder > 0) problems.push(`${label}: ${run.outOfOrder} deliveries out of seq order`)
  if (run.errorFrames > 0) problems.push(`${label}: ${run.errorFrames} error frames (${run.errors[0] ?? ''})`)
  return problems
}
