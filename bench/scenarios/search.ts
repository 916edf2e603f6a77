// Scenario 6, search: GET /api/v1/search one-word queries over a conversation set of 1,000,000
// stored messages (1,000 conversations of 1,000 messages, the searching user a member of all of
// them), with autocannon: queries/s at 8 connections, and the p99 of one query at a time (the
// target: under 50 ms). The bodies are 5 to 15 words from a vocabulary of 20,000 drawn with
// Zipf-like frequencies (rank r with probability about 1/r: the commonest word is in about half
// the messages, most words in a few hundred), and the queries draw their word the same way.
// Baseline: the api's own search statement (compiled by its query builder from
// packages/chat/src/search.ts) with the same words, straight on Postgres with the pg client at
// the same concurrency, so the ratio is what the api adds on top of the query.
//
// The set is seeded once per `pnpm bench`, before the first run, in conversations of its own that
// no other scenario touches: one INSERT ... SELECT generate_series with the GIN indexes of
// chat.message dropped and rebuilt after (building is much faster than a million inserts into
// them), then VACUUM ANALYZE (no pending list, statistics for the planner) and a checkpoint, so
// that the writes do not land on the scenarios that follow.
import pg from 'pg'
import { searchQuery } from '@chatty/chat'
import { createDb } from '@chatty/db'
import { spawnChild } from '../lib/child.ts'
import { ratioRow, atMost, type ScenarioResult } from '../lib/report.ts'
import { busyGeneratorNote, loadCpu } from '../lib/ws-load.ts'
import type { BenchContext } from '../lib/context.ts'
import type { HttpLoadResult } from '../load/http.ts'
import type { PgQueryLoad, PgQueryResult } from '../load/pg-query.ts'

const HTTP = new URL('../load/http.ts', import.meta.url)
const PG_QUERY = new URL('../load/pg-query.ts', import.meta.url)

export const SEARCH_CONVERSATIONS = 1000
export const SEARCH_MESSAGES_PER_CONVERSATION = 1000
const VOCABULARY = 20_000
const LIMIT = 20
/** Connections for queries/s; the p99 target is on one query at a time. */
const CONNECTIONS = 8
const WORDS_PER_RUN = 512

/** Word of rank r (1..VOCABULARY): r in base 26, a letter a digit; the SQL below builds the same. */
export function word (rank: number): string {
  let text = ''
  let r = rank
  do {
    text += String.fromCharCode(97 + (r % 26))
    r = Math.floor(r / 26)
  } while (r > 0)
  return text
}

const WORD_SQL = (r: string) => `chr(97 + ${r} % 26) || CASE WHEN ${r} >= 26 THEN chr(97 + (${r} / 26) % 26) ELSE '' END
  || CASE WHEN ${r} >= 676 THEN chr(97 + (${r} / 676) % 26) ELSE '' END || CASE WHEN ${r} >= 17576 THEN chr(97 + (${r} / 17576) % 26) ELSE '' END`

/** A rank with probability about 1/r: log-uniform over 1..VOCABULARY. */
const zipfRank = (random: number) => Math.min(VOCABULARY - 1, Math.floor(Math.exp(random * Math.log(VOCABULARY))))

export interface SearchSet {
  userId: string
  conversations: number
  messages: number
  seedMs: number
  indexMs: number
  vacuumMs: number
}

let seeded: Promise<SearchSet> | undefined

/** Seeds the set the first time it is asked for (one bench invocation, every run). */
export function seedSearchSet (ctx: BenchContext): Promise<SearchSet> {
  seeded ??= seed(ctx)
  return seeded
}

async function seed (ctx: BenchContext): Promise<SearchSet> {
  const messages = SEARCH_CONVERSATIONS * SEARCH_MESSAGES_PER_CONVERSATION
  ctx.log(`search: seeding ${messages.toLocaleString('en-US')} messages in ${SEARCH_CONVERSATIONS} conversations`)
  const client = new pg.Client({ connectionString: ctx.dbUrl })
  await client.connect()
  try {
    const { rows: [user] } = await client.query<{ id: string }>('SELECT gen_random_uuid() AS id')
    const userId = user!.id
    const started = performance.now()
    await client.query('BEGIN')
    await client.query('SET LOCAL maintenance_work_mem = \'256MB\'')
    // Nothing to win from JIT on one statement that runs once, and its compilation takes time.
    await client.query('SET LOCAL jit = off')
    await client.query('SELECT setseed(0.15)')
    const { rows: gin } = await client.query<{ name: string, definition: string }>(`
      SELECT indexname AS name, indexdef AS definition FROM pg_indexes
       WHERE schemaname = 'chat' AND tablename = 'message' AND indexdef LIKE '% USING gin %'`)
    for (const index of gin) await client.query(`DROP INDEX chat.${index.name}`)
    const { rows: conversations } = await client.query<{ id: string }>(`
      INSERT INTO chat.conversation (last_seq) SELECT $1::int FROM generate_series(1, $2::int) RETURNING id`,
    [SEARCH_MESSAGES_PER_CONVERSATION, SEARCH_CONVERSATIONS])
    const ids = conversations.map((c) => c.id)
    // The searcher and one other member in each; the two send in turn.
    const { rows: [other] } = await client.query<{ id: string }>('SELECT gen_random_uuid() AS id')
    await client.query(`
      INSERT INTO chat.participant (conversation_id, user_id)
      SELECT c, u FROM unnest($1::uuid[]) AS c, unnest(ARRAY[$2::uuid, $3::uuid]) AS u`, [ids, userId, other!.id])
    // In time order, as a table is filled (the heap, the pkey and created_at ascend together; a
    // message every second over the last 12 days), the conversations taking turns; ids ordered
    // like time-ordered uuids.
    await client.query(`
      INSERT INTO chat.message (id, conversation_id, sender_id, seq, created_at, body)
      SELECT ('00000000-' || lpad(to_hex($4::int), 4, '0') || '-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
             ($1::uuid[])[1 + g % ${SEARCH_CONVERSATIONS}],
             CASE WHEN g / ${SEARCH_CONVERSATIONS} % 2 = 0 THEN $2::uuid ELSE $3::uuid END,
             1 + g / ${SEARCH_CONVERSATIONS},
             timezone('utc', now()) - interval '1 day' - (${messages} - g) * interval '1 second',
             (SELECT string_agg(${WORD_SQL('r')}, ' ')
                FROM (SELECT floor(exp(random() * ln(${VOCABULARY})))::int + 0 * g AS r FROM generate_series(1, 5 + g % 11)) AS words)
        FROM generate_series(0, ${messages - 1}) AS g`,
    [ids, userId, other!.id, Math.floor(Math.random() * 65536)])
    const seedMs = performance.now() - started
    for (const index of gin) await client.query(index.definition)
    await client.query('COMMIT')
    const indexMs = performance.now() - started - seedMs
    await client.query('VACUUM ANALYZE')
    // Flushes the seed's writes now rather than during a later scenario (needs pg_checkpoint or superuser).
    await client.query('CHECKPOINT').catch(() => {})
    const vacuumMs = performance.now() - started - seedMs - indexMs
    ctx.log(`search: seeded in ${(seedMs / 1000).toFixed(1)} s, GIN index rebuilt in ${(indexMs / 1000).toFixed(1)} s, VACUUM ANALYZE and checkpoint ${(vacuumMs / 1000).toFixed(1)} s`)
    return { userId, conversations: SEARCH_CONVERSATIONS, messages, seedMs, indexMs, vacuumMs }
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    await client.end()
  }
}

/** The api's statement for a one-word search by this user, as compiled, and where its word goes. */
function compiledSearch (dbUrl: string, userId: string): { sql: string, parameters: unknown[], wordParameter: number } {
  const { db, destroy } = createDb(dbUrl, { max: 1 })
  try {
    const marker = 'wordmarker'
    const compiled = searchQuery(db, { userId, q: marker, limit: LIMIT }).compile()
    const parameters = [...compiled.parameters]
    const wordParameter = parameters.indexOf(marker)
    if (wordParameter === -1) throw new Error('the search statement has no parameter for the query')
    return { sql: compiled.sql, parameters, wordParameter }
  } finally {
    void destroy()
  }
}

export async function runSearch (ctx: BenchContext): Promise<ScenarioResult> {
  const name = 'search (1,000,000 messages)'
  const set = await seedSearchSet(ctx)
  const durationMs = ctx.quick ? 1500 : 2000
  const problems: string[] = []
  const words = Array.from({ length: WORDS_PER_RUN }, () => word(zipfRank(Math.random())))
  const statement = compiledSearch(ctx.dbUrl, set.userId)

  ctx.log(`${name}: one-word queries, ${CONNECTIONS} connections, then one at a time`)
  const http = spawnChild(HTTP)
  let max: HttpLoadResult, single: HttpLoadResult
  try {
    const load = { kind: 'search', url: ctx.chatty.apiUrl, userId: set.userId, words, limit: LIMIT }
    await http.request('fire', { ...load, connections: CONNECTIONS, durationMs: 500 })
    max = await http.request<HttpLoadResult>('fire', { ...load, connections: CONNECTIONS, durationMs })
    single = await http.request<HttpLoadResult>('fire', { ...load, connections: 1, durationMs })
  } finally {
    await http.stop()
  }
  for (const [label, run] of [[`${CONNECTIONS} connections`, max], ['one at a time', single]] as const) {
    const ok = run.statuses['2xx'] ?? 0
    if (ok !== run.requests || run.errors > 0 || run.timeouts > 0) problems.push(`${label}: ${run.requests - ok} searches failed, ${run.errors} errors, ${run.timeouts} timeouts (${JSON.stringify(run.statuses)})`)
  }
  const loadShare = max.cpuMs / max.elapsedMs
  ctx.log(`${name}: ${Math.round(max.perSecond)} queries/s, p99 ${max.latencyMs.p99} ms; one at a time p99 ${single.latencyMs.p99} ms; ${loadCpu([loadShare])} (autocannon)`)

  ctx.log(`${name}: baseline, the search statement on Postgres`)
  const pgLoad = spawnChild(PG_QUERY)
  let rawMax: PgQueryResult, rawSingle: PgQueryResult
  try {
    const load: Omit<PgQueryLoad, 'connections' | 'durationMs'> = { url: ctx.dbUrl, ...statement, words }
    rawMax = await pgLoad.request<PgQueryResult>('run', { ...load, connections: CONNECTIONS, durationMs })
    rawSingle = await pgLoad.request<PgQueryResult>('run', { ...load, connections: 1, durationMs })
  } finally {
    await pgLoad.stop()
  }
  // A run in which no query finished has no latency to report (autocannon says 0): not a figure.
  const latency = (run: HttpLoadResult, key: 'p50' | 'p99') => run.requests > 0 ? run.latencyMs[key] : Number.NaN
  const rawLatency = (run: PgQueryResult, key: 'p50' | 'p99') => run.queries > 0 ? run.latencyMs[key] : Number.NaN
  if (rawMax.rows === 0) problems.push('the search statement found nothing for any of the words: the set is not what the scenario expects')

  return {
    name,
    rows: [
      ratioRow(`queries/s @${CONNECTIONS}`, max.perSecond, rawMax.perSecond, `pg search query @${CONNECTIONS}`, '/s'),
      ratioRow(`p99 ms @${CONNECTIONS}`, latency(max, 'p99'), rawLatency(rawMax, 'p99'), `pg search query @${CONNECTIONS}`, 'ms'),
      { ...ratioRow('p99 ms one at a time', latency(single, 'p99'), rawLatency(rawSingle, 'p99'), 'pg search query @1', 'ms'), target: atMost(50, 'value') },
      ratioRow('p50 ms one at a time', latency(single, 'p50'), rawLatency(rawSingle, 'p50'), 'pg search query @1', 'ms'),
      { metric: 'queries one at a time', value: single.requests, baseline: rawSingle.queries, baselineName: 'pg search query @1' }
    ],
    problems,
    notes: busyGeneratorNote('search', [loadShare]),
    details: { set, limit: LIMIT, connections: CONNECTIONS, durationMs, words: words.slice(0, 32), loadCpuShare: loadShare, http: { max, single }, raw: { max: rawMax, single: rawSingle } }
  }
}
