// Scenario 4, idle sockets: 10,000 sockets connected to one fresh api process, each joined to one
// conversation (rooms of 10), then left idle. Memory per socket is the process's growth after a
// full GC (RSS and V8 heap), divided by the sockets; connect and join rates are the load
// generators' (several processes, lib/ws-load.ts). Baseline: the bare ws server holding the same
// sockets in the same rooms.
import { spawnChild } from '../lib/child.ts'
import { createRooms, type Room } from '../lib/fixtures.ts'
import { atLeast, atMost, ratioRow, type ScenarioResult } from '../lib/report.ts'
import { startChatty } from '../lib/services.ts'
import { sleep, type BenchContext } from '../lib/context.ts'
import { busyGeneratorNote, loadCpu, wsLoad, type GroupConnect } from '../lib/ws-load.ts'
import type { SocketSpec } from '../load/ws-clients.ts'

const BARE = new URL('../load/bare-ws-server.ts', import.meta.url)
const ROOM_SIZE = 10

/** The conversations of the first run, joined again by the later ones (the api process is new each time). */
let roomsOfEarlierRun: Room[] | undefined

interface Footprint { rss: number, heapUsed: number, external: number, cpuMs: number }

/** What the server reports: its memory, and its CPU time so far. */
interface Reading { memory: NodeJS.MemoryUsage, cpu: NodeJS.CpuUsage }

interface Held {
  connect: GroupConnect
  before: Footprint
  after: Footprint
  perSocket: { rss: number, heap: number, cpuMs: number }
}

function footprint ({ memory, cpu }: Reading): Footprint {
  return { rss: memory.rss, heapUsed: memory.heapUsed, external: memory.external + memory.arrayBuffers, cpuMs: (cpu.user + cpu.system) / 1000 }
}

async function hold (url: string, sockets: SocketSpec[], measure: () => Promise<Reading>): Promise<Held> {
  const load = wsLoad()
  try {
    await sleep(500)
    const before = footprint(await measure())
    const connect = await load.connect(url, sockets, 200)
    // Let the server settle (timers, buffers) before the after-GC reading.
    await sleep(1000)
    const after = footprint(await measure())
    const n = Math.max(1, connect.joined)
    await load.close()
    return { connect, before, after, perSocket: { rss: (after.rss - before.rss) / n, heap: (after.heapUsed - before.heapUsed) / n, cpuMs: (after.cpuMs - before.cpuMs) / n } }
  } finally {
    await load.stop()
  }
}

export async function runIdleSockets (ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.quick ? 2000 : 10_000
  const name = `idle sockets (${count.toLocaleString('en-US')})`
  const problems: string[] = []
  // A fresh api process, so what it holds is the sockets and little else.
  const chatty = await startChatty({ dbUrl: ctx.dbUrl, redisUrl: ctx.redisUrl, env: ctx.env, log: ctx.serviceLog })
  let held: Held
  let sockets: SocketSpec[]
  try {
    if (roomsOfEarlierRun?.length !== count / ROOM_SIZE) {
      ctx.log(`${name}: ${count / ROOM_SIZE} conversations of ${ROOM_SIZE}`)
      roomsOfEarlierRun = await createRooms(chatty.apiUrl, count / ROOM_SIZE, ROOM_SIZE)
    }
    const rooms = roomsOfEarlierRun
    sockets = rooms.flatMap((room) => room.members.map((userId) => ({ userId, rooms: [room.id] })))
    ctx.log(`${name}: connecting and joining`)
    held = await hold(chatty.wsUrl, sockets, async () => await chatty.api.probe(true))
  } finally {
    await chatty.stop()
  }
  ctx.log(`${name}: chatty ${Math.round(count / (held.connect.connectMs / 1000))} connects/s; ${loadCpu(held.connect.cpuShares)}`)
  if (held.connect.joined !== count) problems.push(`chatty: ${held.connect.connected} of ${count} connected, ${held.connect.joined} joined (${held.connect.errors[0] ?? ''})`)

  ctx.log(`${name}: bare ws baseline`)
  const bare = spawnChild(BARE, { execArgv: ['--expose-gc'] })
  let bareHeld: Held
  try {
    const { port } = await bare.request<{ port: number }>('start')
    bareHeld = await hold(`ws://127.0.0.1:${port}/`, sockets, async () => await bare.request<Reading>('memory', true))
  } finally {
    await bare.stop()
  }
  ctx.log(`${name}: bare ws ${Math.round(count / (bareHeld.connect.connectMs / 1000))} connects/s; ${loadCpu(bareHeld.connect.cpuShares)}`)
  if (bareHeld.connect.joined !== count) problems.push(`bare ws: ${bareHeld.connect.joined} of ${count} joined`)

  const kb = (bytes: number) => bytes / 1024
  return {
    name,
    rows: [
      ratioRow('RSS KB per socket', kb(held.perSocket.rss), kb(bareHeld.perSocket.rss), 'bare ws', 'KB', atMost(1.5)),
      ratioRow('heap KB per socket', kb(held.perSocket.heap), kb(bareHeld.perSocket.heap), 'bare ws', 'KB'),
      ratioRow('connects/s', count / (held.connect.connectMs / 1000), count / (bareHeld.connect.connectMs / 1000), 'bare ws', '/s', atLeast(0.7)),
      ratioRow('joins/s', count / (held.connect.joinMs / 1000), count / (bareHeld.connect.joinMs / 1000), 'bare ws', '/s'),
      // The server's CPU time from before the first connect to after the last join had settled:
      // less at the mercy of a busy machine than the rates above.
      ratioRow('server CPU ms per socket (connect + join)', held.perSocket.cpuMs, bareHeld.perSocket.cpuMs, 'bare ws', 'ms')
    ],
    problems,
    notes: [...busyGeneratorNote('chatty connects', held.connect.cpuShares), ...busyGeneratorNote('bare ws connects', bareHeld.connect.cpuShares)],
    details: { loadProcesses: held.connect.cpuShares.length, count, roomSize: ROOM_SIZE, chatty: held, bare: bareHeld }
  }
}
