// Baseline load for the search scenario (a child process of bench/run.ts): the api's own search
// statement, as the query builder compiles it, straight on Postgres with the pg client on N
// connections for a bounded time, one query word after another (the word is parameter
// `wordParameter`, the other parameters as compiled). Reports queries and the latency of each.
import pg from 'pg'
import { serveRequests } from '../lib/child.ts'
import { Histogram } from '../lib/histogram.ts'

export interface PgQueryLoad {
  url: string
  sql: string
  parameters: unknown[]
  /** Index in `parameters` of the query text, replaced by each word in turn. */
  wordParameter: number
  words: string[]
  connections: number
  durationMs: number
}

export interface PgQueryResult {
  queries: number
  elapsedMs: number
  perSecond: number
  latencyMs: ReturnType<Histogram['summary']>
  /** Rows the queries returned, over all of them (a sanity check: the words match). */
  rows: number
  cpuMs: number
}

async function run (load: PgQueryLoad): Promise<PgQueryResult> {
  const clients = await Promise.all(Array.from({ length: load.connections }, async () => {
    const client = new pg.Client({ connectionString: load.url })
    await client.connect()
    return client
  }))
  const histogram = new Histogram()
  let queries = 0
  let rows = 0
  const cpuAtStart = process.cpuUsage()
  const started = performance.now()
  const deadline = started + load.durationMs
  await Promise.all(clients.map(async (client) => {
    let next = Math.floor(Math.random() * load.words.length)
    const values = [...load.parameters]
    while (performance.now() < deadline) {
      values[load.wordParameter] = load.words[next++ % load.words.length]
      const at = performance.now()
      const result = await client.query({ text: load.sql, values })
      histogram.record(performance.now() - at)
      rows += result.rowCount ?? 0
      queries++
    }
  }))
  const elapsedMs = performance.now() - started
  const cpu = process.cpuUsage(cpuAtStart)
  await Promise.all(clients.map((client) => client.end()))
  return { queries, elapsedMs, perSecond: queries / (elapsedMs / 1000), latencyMs: histogram.summary(), rows, cpuMs: (cpu.user + cpu.system) / 1000 }
}

serveRequests({ run })
