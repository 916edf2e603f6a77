// Scenario 5, reactions: `react` frames over websocket in rooms of 10, each stored (a reaction
// row, the message's aggregate, an event with the conversation's next seq) and broadcast as
// `reaction_added` to every member's socket, the reactor's own included. Measured at the maximum
// rate (each reactor keeps a few frames outstanding), from the same load processes as the send
// path (lib/ws-load.ts). Baseline: the message send path (`message` frames, rooms of 10) on the
// same sockets, in the same rooms, right after, so the ratio is what a reaction costs against a
// message. Then every delivery, every reaction row and every seq is counted.
import pg from 'pg'
import { createRooms, type Room } from '../lib/fixtures.ts'
import { Histogram } from '../lib/histogram.ts'
import { ratioRow, type Row, type ScenarioResult } from '../lib/report.ts'
import { busyGeneratorNote, loadCpu, problemsOf, wsLoad, type GroupRun } from '../lib/ws-load.ts'
import type { BenchContext } from '../lib/context.ts'
import type { SocketSpec } from '../load/ws-clients.ts'

const ROOM_SIZE = 10
const ROOMS = 32
const REACTORS_PER_ROOM = 2
const WINDOW = 4
/**
 * Stored messages per room that the reactors react to, in turn. A reactor's marker is new on
 * every frame, and it comes back to a message only after all of them: with 200 messages it stays
 * under the 20 reactions per user per message until 4,000 frames, far beyond a run.
 */
const MESSAGES_PER_ROOM = 200

/** The rooms' first messages, stored directly (the reactions are what is measured). */
async function seedMessages (dbUrl: string, rooms: Room[]): Promise<Map<string, string[]>> {
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ conversation_id: string, id: string }>(`
      INSERT INTO chat.message (conversation_id, sender_id, seq, body)
      SELECT r.id, r.sender, g, 'react to message ' || g
        FROM unnest($1::uuid[], $2::uuid[]) AS r (id, sender), generate_series(1, $3::int) AS g
      RETURNING conversation_id, id`, [rooms.map((r) => r.id), rooms.map((r) => r.members[0]), MESSAGES_PER_ROOM])
    await client.query('UPDATE chat.conversation SET last_seq = $2 WHERE id = ANY ($1::uuid[])', [rooms.map((r) => r.id), MESSAGES_PER_ROOM])
    const byRoom = new Map<string, string[]>()
    for (const row of rows) {
      const list = byRoom.get(row.conversation_id) ?? []
      list.push(row.id)
      byRoom.set(row.conversation_id, list)
    }
    return byRoom
  } finally {
    await client.end()
  }
}

interface Counted {
  reactions: Record<string, number>
  messages: Record<string, number>
  /** Conversations whose message and event seqs are not exactly 1..last_seq, each once. */
  seqProblems: string[]
}

/** Reaction rows and messages per room, and whether messages and events share 1..last_seq without gap or repeat. */
async function countStored (dbUrl: string, ids: string[]): Promise<Counted> {
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ id: string, reactions: string, messages: string, seqs: string, distinct_seqs: string, max_seq: string | null, last_seq: string }>(`
      SELECT c.id, c.last_seq,
             (SELECT count(*) FROM chat.reaction r JOIN chat.message m ON m.id = r.message_id WHERE m.conversation_id = c.id) AS reactions,
             (SELECT count(*) FROM chat.message m WHERE m.conversation_id = c.id) AS messages,
             count(s.seq) AS seqs, count(DISTINCT s.seq) AS distinct_seqs, max(s.seq) AS max_seq
        FROM chat.conversation c
        LEFT JOIN (SELECT conversation_id, seq FROM chat.message UNION ALL SELECT conversation_id, seq FROM chat.message_event) s ON s.conversation_id = c.id
       WHERE c.id = ANY ($1::uuid[]) GROUP BY c.id`, [ids])
    const counted: Counted = { reactions: {}, messages: {}, seqProblems: [] }
    for (const row of rows) {
      counted.reactions[row.id] = Number(row.reactions)
      counted.messages[row.id] = Number(row.messages)
      const last = Number(row.last_seq)
      if (Number(row.seqs) !== last || Number(row.distinct_seqs) !== last || Number(row.max_seq ?? 0) !== last) counted.seqProblems.push(row.id)
    }
    return counted
  } finally {
    await client.end()
  }
}

function rate (run: GroupRun): { frames: number, deliveries: number } {
  // Until the last delivery, as in the send path's scenario.
  const seconds = (run.elapsedMs + run.drainedMs) / 1000
  return { frames: run.sent / seconds, deliveries: run.deliveries / seconds }
}

export async function runReactions (ctx: BenchContext): Promise<ScenarioResult> {
  const name = `reactions, rooms of ${ROOM_SIZE}`
  // Short: two measured runs of a few seconds each keep the whole `pnpm bench` within its time.
  const durationMs = ctx.quick ? 1500 : 2500
  const drainMs = 15_000
  ctx.log(`${name}: ${ROOMS} rooms, ${ROOMS * REACTORS_PER_ROOM} reactors, ${ROOMS * ROOM_SIZE} sockets, ${MESSAGES_PER_ROOM} messages per room to react to`)
  const rooms = await createRooms(ctx.chatty.apiUrl, ROOMS, ROOM_SIZE)
  const targets = await seedMessages(ctx.dbUrl, rooms)
  const sockets: SocketSpec[] = rooms.flatMap((room) => room.members.map((userId, i) => ({
    userId,
    rooms: [room.id],
    // Each reactor starts at its own place in the room's messages.
    ...(i < REACTORS_PER_ROOM ? { sendTo: room.id, reactTo: rotate(targets.get(room.id)!, i * (MESSAGES_PER_ROOM / REACTORS_PER_ROOM)) } : {})
  })))
  const problems: string[] = []
  const load = wsLoad()
  let warmup: GroupRun, reactions: GroupRun, messages: GroupRun
  try {
    const connect = await load.connect(ctx.chatty.wsUrl, sockets, 50)
    if (connect.connected !== sockets.length || connect.joined !== sockets.length) {
      throw new Error(`only ${connect.connected} of ${sockets.length} sockets connected and ${connect.joined} joined: ${connect.errors.join('; ')}`)
    }
    const run = { mode: 'closed' as const, window: WINDOW, bodyBytes: 64, drainMs }
    warmup = await load.run({ ...run, frame: 'react', durationMs: 500 })
    reactions = await load.run({ ...run, frame: 'react', durationMs })
    messages = await load.run({ ...run, frame: 'message', durationMs })
    await load.close()
  } finally {
    await load.stop()
  }
  for (const [label, r] of [['reactions warm-up', warmup], ['reactions max rate', reactions], ['messages max rate', messages]] as const) problems.push(...problemsOf(label, r))
  const react = rate(reactions)
  const send = rate(messages)
  ctx.log(`${name}: ${Math.round(react.frames)} reactions/s (${loadCpu(reactions.cpuShares)}); message send path ${Math.round(send.frames)} msg/s (${loadCpu(messages.cpuShares)})`)

  // Every react frame stored once as a reaction row; every message once; every seq once.
  const stored = await countStored(ctx.dbUrl, rooms.map((r) => r.id))
  let reactionsSent = 0
  let reactionRows = 0
  for (const room of rooms) {
    const sentReactions = (warmup.sentPerRoom[room.id] ?? 0) + (reactions.sentPerRoom[room.id] ?? 0)
    const sentMessages = messages.sentPerRoom[room.id] ?? 0
    reactionsSent += sentReactions
    reactionRows += stored.reactions[room.id] ?? 0
    if ((stored.reactions[room.id] ?? 0) !== sentReactions) problems.push(`conversation ${room.id}: ${sentReactions} reactions sent, ${stored.reactions[room.id] ?? 0} stored`)
    if ((stored.messages[room.id] ?? 0) !== MESSAGES_PER_ROOM + sentMessages) problems.push(`conversation ${room.id}: ${sentMessages} messages sent, ${(stored.messages[room.id] ?? 0) - MESSAGES_PER_ROOM} stored`)
  }
  if (stored.seqProblems.length > 0) problems.push(`messages and events do not hold seq 1..last_seq once each in ${stored.seqProblems.length} conversations`)

  const reactLatency = Histogram.from(reactions.latency).summary()
  const sendLatency = Histogram.from(messages.latency).summary()
  const rows: Row[] = [
    ratioRow('reactions/s (max)', react.frames, send.frames, `ws send msg/s, rooms of ${ROOM_SIZE}`, '/s'),
    ratioRow('reaction_added deliveries/s (max)', react.deliveries, send.deliveries, 'ws send deliveries/s', '/s'),
    ratioRow('p99 ms at max rate', reactLatency.p99, sendLatency.p99, 'ws send p99', 'ms'),
    { metric: 'p50 ms at max rate', value: reactLatency.p50, unit: 'ms', baseline: sendLatency.p50, baselineName: 'ws send p50' }
  ]
  return {
    name,
    rows,
    problems,
    notes: [...busyGeneratorNote('reactions', reactions.cpuShares), ...busyGeneratorNote('message send path', messages.cpuShares)],
    details: {
      rooms: ROOMS,
      roomSize: ROOM_SIZE,
      reactors: ROOMS * REACTORS_PER_ROOM,
      window: WINDOW,
      durationMs,
      loadCpuShare: { reactions: reactions.cpuShares, messages: messages.cpuShares },
      reactions: { perSecond: react.frames, deliveriesPerSecond: react.deliveries, latencyMs: reactLatency, sent: reactionsSent, stored: reactionRows, run: { ...reactions, latency: undefined, sentPerRoom: undefined } },
      messages: { perSecond: send.frames, deliveriesPerSecond: send.deliveries, latencyMs: sendLatency, run: { ...messages, latency: undefined, sentPerRoom: undefined } }
    }
  }
}

function rotate<T> (list: T[], by: number): T[] {
  return [...list.slice(by), ...list.slice(0, by)]
}
