// Scenario 3, history reads: GET /api/v1/chat/:id/messages pages of 50 (half the newest page,
// half a page at a random before_seq cursor) from a conversation of 10,000 messages, read by a
// member (X-User-Id), with autocannon. Baseline: the same page query straight on Postgres at the
// same concurrency (pgbench), so the ratio is what the api adds on top of the query. The api's CPU
// time per page is reported too (steadier than req/s on a shared machine), and the same load on
// GET /healthz, a route that does nothing: the HTTP server's and hooks' fixed cost per request.
import pg from 'pg'
import { spawnChild } from '../lib/child.ts'
import { createRooms } from '../lib/fixtures.ts'
import { atLeast, ratioRow, type ScenarioResult } from '../lib/report.ts'
import { busyGeneratorNote, loadCpu } from '../lib/ws-load.ts'
import type { BenchContext } from '../lib/context.ts'
import type { HttpLoadResult } from '../load/http.ts'
import { runPgbench } from './pg-insert.ts'

const HTTP = new URL('../load/http.ts', import.meta.url)
const MESSAGES = 10_000
const LIMIT = 50
const CONNECTIONS = 16

function cpuUs (from: NodeJS.CpuUsage, to: NodeJS.CpuUsage): number {
  return (to.user + to.system) - (from.user + from.system)
}

export async function runHistory (ctx: BenchContext): Promise<ScenarioResult> {
  const name = 'history reads'
  const problems: string[] = []
  const [room] = await createRooms(ctx.chatty.apiUrl, 1, 2)
  const conversationId = room!.id
  const client = new pg.Client({ connectionString: ctx.dbUrl })
  await client.connect()
  try {
    await client.query(`
      INSERT INTO chat.message (conversation_id, sender_id, seq, body, msg_type)
      SELECT $1, (ARRAY[$2::uuid, $3::uuid])[1 + g % 2], g, 'history message ' || g || ' ' || repeat('x', 40), 0
        FROM generate_series(1, $4::int) AS g`, [conversationId, room!.members[0], room!.members[1], MESSAGES])
    await client.query('UPDATE chat.conversation SET last_seq = $2 WHERE id = $1', [conversationId, MESSAGES])
    await client.query('ANALYZE chat.message')
  } finally {
    await client.end()
  }

  ctx.log(`${name}: ${CONNECTIONS} connections reading pages of ${LIMIT}`)
  const http = spawnChild(HTTP)
  let load: HttpLoadResult
  let trivial: HttpLoadResult
  let apiCpuUs: number
  let trivialCpuUs: number
  try {
    // A short warm-up, then the measured run.
    await http.request('fire', { kind: 'history', url: ctx.chatty.apiUrl, conversationId, readerId: room!.members[0], lastSeq: MESSAGES, limit: LIMIT, connections: CONNECTIONS, durationMs: 1000 })
    const before = await ctx.chatty.api.probe()
    load = await http.request<HttpLoadResult>('fire', { kind: 'history', url: ctx.chatty.apiUrl, conversationId, readerId: room!.members[0], lastSeq: MESSAGES, limit: LIMIT, connections: CONNECTIONS, durationMs: ctx.durationMs })
    const after = await ctx.chatty.api.probe()
    apiCpuUs = cpuUs(before.cpu, after.cpu) / Math.max(1, load.requests)
    ctx.log(`${name}: the same load on GET /healthz (the fixed cost of a request)`)
    trivial = await http.request<HttpLoadResult>('fire', { kind: 'trivial', url: ctx.chatty.apiUrl, path: '/healthz', connections: CONNECTIONS, durationMs: Math.min(ctx.durationMs, 5000) })
    const end = await ctx.chatty.api.probe()
    trivialCpuUs = cpuUs(after.cpu, end.cpu) / Math.max(1, trivial.requests)
  } finally {
    await http.stop()
  }
  const loadShare = load.cpuMs / load.elapsedMs
  ctx.log(`${name}: ${Math.round(load.perSecond)} req/s, api CPU ${Math.round(apiCpuUs)} us per page; ${loadCpu([loadShare])} (autocannon)`)
  ctx.log(`${name}: GET /healthz ${Math.round(trivial.perSecond)} req/s, api CPU ${Math.round(trivialCpuUs)} us per request`)
  const ok = load.statuses['2xx'] ?? 0
  if (ok !== load.requests || load.errors > 0) problems.push(`${load.requests - ok} reads failed, ${load.errors} errors (${JSON.stringify(load.statuses)})`)
  if ((trivial.statuses['2xx'] ?? 0) !== trivial.requests || trivial.errors > 0) problems.push(`GET /healthz: ${trivial.errors} errors (${JSON.stringify(trivial.statuses)})`)

  ctx.log(`${name}: baseline, the page query on Postgres`)
  const raw = await runPgbench(ctx.dbUrl,
    `SELECT * FROM chat.message WHERE conversation_id = '${conversationId}' AND seq < :random ORDER BY seq DESC LIMIT ${LIMIT}`,
    { connections: CONNECTIONS, durationMs: ctx.durationMs, randomMax: MESSAGES + 1 })

  return {
    name,
    rows: [
      ratioRow(`req/s (pages of ${LIMIT})`, load.perSecond, raw.tps, `pg page query @${CONNECTIONS}`, '/s', atLeast(0.5)),
      { metric: 'p50 ms', value: load.latencyMs.p50, unit: 'ms' },
      { metric: 'p99 ms', value: load.latencyMs.p99, unit: 'ms' },
      { metric: 'api CPU us per page', value: apiCpuUs, unit: 'us' },
      { metric: 'req/s, GET /healthz (fixed cost)', value: trivial.perSecond, unit: '/s' },
      { metric: 'api CPU us per GET /healthz', value: trivialCpuUs, unit: 'us' }
    ],
    problems,
    notes: busyGeneratorNote('reads', [loadShare]),
    details: { loadProcesses: 1, loadCpuShare: loadShare, load, raw, apiCpuUs, trivial, trivialCpuUs, messages: MESSAGES, limit: LIMIT, connections: CONNECTIONS }
  }
}
