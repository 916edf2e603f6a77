// Baseline load without pgbench: N connections, each running one statement per transaction
// (autocommit) in a loop for a bounded time; the statement pgbench would run, with :client_id
// or :random (1..randomMax) as its parameter.
import pg from 'pg'
import { serveRequests } from '../lib/child.ts'

export interface PgLoad {
  url: string
  sql: string
  connections: number
  durationMs: number
  randomMax?: number
}

async function run (request: PgLoad): Promise<{ transactions: number, elapsedMs: number }> {
  const clients = await Promise.all(Array.from({ length: request.connections }, async (_, i) => {
    const client = new pg.Client({ connectionString: request.url })
    await client.connect()
    return { client, id: i + 1 }
  }))
  const random = request.sql.includes(':random')
  const text = request.sql.replaceAll(':client_id', '$1').replaceAll(':random', '$1')
  let transactions = 0
  const started = performance.now()
  const deadline = started + request.durationMs
  await Promise.all(clients.map(async ({ client, id }) => {
    while (performance.now() < deadline) {
      const value = random ? 1 + Math.floor(Math.random() * (request.randomMax ?? 1)) : id
      await client.query({ text, values: [value] })
      transactions++
    }
  }))
  const elapsedMs = performance.now() - started
  await Promise.all(clients.map(({ client }) => client.end()))
  return { transactions, elapsedMs }
}

serveRequests({ run })
