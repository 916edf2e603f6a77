// Sockets that never read, replaying a large history, cost the api a bounded amount of memory
// (docs/performance.md, memory under sockets that never read): each is cut with 1013 once it holds
// its budget, and other clients are served meanwhile. The api runs as a real process, so its RSS
// is its own.
import t from 'tap'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { testDatabase, users, waitFor } from '@chatty/db/testing'
import { query } from './helper.ts'
import { listen, openSocket, type RawSocket } from './ws-helper.ts'
import { startService } from './process-helper.ts'

const stalledUsers = [users.alice, users.bob]
const { carol, dave } = users
const CONVERSATIONS = 60
const MESSAGES = 300
/** The bound documented in docs/performance.md. */
const MAX_GROWTH_MB = 64

function rssMb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) / 1024
}

t.test('two sockets that never read, replaying 60 conversations each, grow the api by a bounded amount, are cut with 1013, and others are served meanwhile', async (t) => {
  const { url: dbUrl } = await testDatabase(t)
  const sql = await query(t, dbUrl)
  // 60 conversations of the two stalled users, 300 messages of about 4 KB each (72 MB in all).
  const conversations = (await sql<{ id: string }>(
    'INSERT INTO chat.conversation (created_at, last_seq) SELECT now(), $1 FROM generate_series(1, $2) RETURNING id',
    [MESSAGES, CONVERSATIONS]
  )).map((row) => row.id)
  await sql('INSERT INTO chat.participant (conversation_id, user_id) SELECT c, u FROM unnest($1::uuid[]) c, unnest($2::uuid[]) u', [conversations, stalledUsers])
  await sql(
    `INSERT INTO chat.message (conversation_id, sender_id, created_at, body, seq)
     SELECT c, $2, now(), repeat(md5(c::text || s), 125), s FROM unnest($1::uuid[]) c, generate_series(1, $3) s`,
    [conversations, stalledUsers[0], MESSAGES]
  )
  const [live] = await sql<{ id: string }>('INSERT INTO chat.conversation (created_at) VALUES (now()) RETURNING id')
  await sql('INSERT INTO chat.participant (conversation_id, user_id) VALUES ($1, $2), ($1, $3)', [live!.id, carol, dave])

  const api = await startService(t, 'services/api/src/server.ts', {
    DB_URL: dbUrl,
    // A frame a second would not do for 60 joins at once; the heartbeat must not cut first.
    WS_RATE_LIMIT_PER_SEC: '0',
    WS_PING_INTERVAL_MS: '600000',
    WS_REPLAY_DRAIN_TIMEOUT_MS: '5000'
  })
  const pid = api.child.pid!

  // Warm up: the healthy clients connect and exchange a message before the baseline is taken.
  const sender = await openSocket(t, api.url, carol)
  const receiver = await openSocket(t, api.url, dave)
  for (const socket of [sender, receiver]) {
    socket.send({ type: 'join', conversation_id: live!.id, since_seq: 0 })
    await socket.until((frame) => frame.type === 'joined')
  }
  sender.send({ type: 'message', conversation_id: live!.id, body: 'warm-up' })
  await receiver.until((frame) => frame.type === 'message' && frame.message.body === 'warm-up')
  const before = rssMb(pid)
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, rssMb(pid)) }, 20)
  t.teardown(() => clearInterval(sampler))

  // The stalled clients stop reading (their TCP sockets are paused), then ask for every message.
  const stalled: RawSocket[] = []
  for (const user of stalledUsers) {
    const socket = await openSocket(t, api.url, user)
    ;(socket.ws as unknown as { _socket: Socket })._socket.pause()
    for (const id of conversations) socket.send({ type: 'join', conversation_id: id, since_seq: 0 })
    stalled.push(socket)
  }

  // Meanwhile the others join, send and receive.
  for (let i = 0; i < 5; i++) {
    sender.send({ type: 'message', conversation_id: live!.id, body: `during the stall ${i}`, ref: i })
    t.match(await receiver.until((frame) => frame.type === 'message'), { message: { body: `during the stall ${i}` } })
    t.match(await sender.until((frame) => frame.type === 'sent'), { ref: i })
  }
  const late = await openSocket(t, api.url, dave)
  late.send({ type: 'join', conversation_id: live!.id, since_seq: 0, ref: 'late' })
  t.match(await late.until((frame) => frame.type === 'joined'), { ref: 'late' })
  t.same(late.frames.filter((frame) => frame.type === 'message').length, 6, 'a replay of its own, in full')

  // Each stalled socket is cut once its replay cannot get rid of its budget.
  const cut = (user: string) => api.output.some((line) => line.includes('closing a slow consumer') && line.includes(user))
  await waitFor(async () => stalledUsers.every(cut) ? true : undefined, { timeoutMs: 60_000 }).catch(() => {})
  clearInterval(sampler)
  const growth = peak - before
  t.comment(`api RSS ${before.toFixed(1)} MB before, ${peak.toFixed(1)} MB at the peak: +${growth.toFixed(1)} MB`)
  t.ok(growth < MAX_GROWTH_MB, `the api grew by ${growth.toFixed(1)} MB, under ${MAX_GROWTH_MB} MB`)
  if (!t.ok(stalledUsers.every(cut), 'both stalled sockets were cut')) return

  // Reading again, each stalled client finds what was buffered, then the close frame.
  for (const socket of stalled) {
    ;(socket.ws as unknown as { _socket: Socket })._socket.resume()
    t.same(await socket.closed, { code: 1013, reason: 'slow consumer' })
  }
  sender.send({ type: 'message', conversation_id: live!.id, body: 'after the cut' })
  t.match(await receiver.until((frame) => frame.type === 'message'), { message: { body: 'after the cut' } })
})

t.test('replays share WS_MAX_PROCESS_REPLAY_BYTES: a socket that holds its share without reading is cut with 1013 server busy, and the replay waiting behind it completes', async (t) => {
  const [alice, bob] = stalledUsers as [string, string]
  const { app, url, dbUrl } = await listen(t, { WS_MAX_PROCESS_REPLAY_BYTES: 262144, WS_REPLAY_DRAIN_TIMEOUT_MS: 3000, WS_PING_INTERVAL_MS: 600000 })
  const sql = await query(t, dbUrl)
  // 5000 messages of 4 KB (20 MB: more than the kernel buffers between the two ends), and 300.
  const [big, small] = (await sql<{ id: string }>(
    'INSERT INTO chat.conversation (created_at, last_seq) VALUES (now(), 5000), (now(), 300) RETURNING id'
  )).map((row) => row.id) as [string, string]
  await sql('INSERT INTO chat.participant (conversation_id, user_id) VALUES ($1, $3), ($2, $4)', [big, small, alice, bob])
  await sql(
    `INSERT INTO chat.message (conversation_id, sender_id, created_at, body, seq)
     SELECT $1, $2, now(), repeat(md5(s::text), 125), s FROM generate_series(1, $3) s`,
    [big, alice, 5000]
  )
  await sql(
    `INSERT INTO chat.message (conversation_id, sender_id, created_at, body, seq)
     SELECT $1, $2, now(), repeat(md5(s::text), 125), s FROM generate_series(1, $3) s`,
    [small, bob, 300]
  )

  const stalled = await openSocket(t, url, alice)
  const tcp = (stalled.ws as unknown as { _socket: Socket })._socket
  tcp.pause()
  stalled.send({ type: 'join', conversation_id: big, since_seq: 0 })
  const reader = await openSocket(t, url, bob)
  reader.send({ type: 'join', conversation_id: small, since_seq: 0, ref: 'r' })
  t.match(await reader.until((frame) => frame.type === 'joined', 30_000), { conversation_id: small, last_seq: 300, ref: 'r' })
  t.same(reader.frames.filter((frame) => frame.type === 'message').map((frame) => frame.message.seq), Array.from({ length: 300 }, (_, i) => i + 1),
    'the reader got its whole replay, in order')

  await waitFor(async () => app.rooms.stats().members === 1 ? true : undefined, { timeoutMs: 30_000 })
  tcp.resume()
  t.same(await stalled.closed, { code: 1013, reason: 'server busy' })
})
