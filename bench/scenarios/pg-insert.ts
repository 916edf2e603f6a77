// Baseline: raw Postgres single-row INSERT transactions per second at 16 connections, into a
// table shaped and indexed like chat.message (bench_raw.message, LIKE chat.message INCLUDING
// ALL), one row per transaction. pgbench runs it when installed, else a pg client child process.
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { spawnChild } from '../lib/child.ts'

export const RAW_INSERT_SQL = `INSERT INTO bench_raw.message (conversation_id, sender_id, seq, body, msg_type)
  VALUES (md5(:client_id::text)::uuid, md5(:client_id::text)::uuid, nextval('bench_raw.message_seq'),
  '~0~0~xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 0)`.replaceAll('\n', ' ')

export type RawInsertResult = PgbenchResult

async function prepare (url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`
      DROP SCHEMA IF EXISTS bench_raw CASCADE;
      CREATE SCHEMA bench_raw;
      CREATE TABLE bench_raw.message (LIKE chat.message INCLUDING ALL);
      CREATE SEQUENCE bench_raw.message_seq;`)
  } finally {
    await client.end()
  }
}

function pgbench (args: string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('pgbench', args, { env, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error !== null) resolve(undefined)
      else resolve(stdout + stderr)
    })
  })
}

export interface PgbenchResult {
  tool: 'pgbench' | 'pg'
  connections: number
  durationMs: number
  transactions: number
  tps: number
}

/**
 * Runs one statement per transaction on `connections` connections for a bounded time: pgbench
 * when installed, else the pg child process. `:random` is a random integer in 1..randomMax.
 */
export async function runPgbench (url: string, sql: string, options: { connections: number, durationMs: number, randomMax?: number }): Promise<PgbenchResult> {
  const parsed = new URL(url)
  const dir = await mkdtemp(join(tmpdir(), 'chatty-bench-'))
  try {
    const script = join(dir, 'script.sql')
    const setup = sql.includes(':random') ? `\\set random random(1, ${options.randomMax ?? 1})\n` : ''
    await writeFile(script, setup + sql + ';\n')
    const output = await pgbench([
      '-n', '-c', String(options.connections), '-j', '2', '-T', String(Math.max(1, Math.round(options.durationMs / 1000))),
      '-f', script, '-h', parsed.hostname, '-p', parsed.port || '5432', '-U', decodeURIComponent(parsed.username || 'postgres'),
      parsed.pathname.slice(1)
    ], { ...process.env, PGPASSWORD: decodeURIComponent(parsed.password) })
    const tps = output === undefined ? undefined : /tps = ([\d.]+) \(without initial connection time\)/.exec(output)?.[1]
    const processed = output === undefined ? undefined : /number of transactions actually processed: (\d+)/.exec(output)?.[1]
    if (tps !== undefined) {
      return { tool: 'pgbench', connections: options.connections, durationMs: options.durationMs, transactions: Number(processed ?? 0), tps: Number(tps) }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  const child = spawnChild(new URL('../load/pg-insert.ts', import.meta.url))
  try {
    const result = await child.request<{ transactions: number, elapsedMs: number }>('run', { url, sql, ...options })
    return { tool: 'pg', connections: options.connections, durationMs: result.elapsedMs, transactions: result.transactions, tps: result.transactions / (result.elapsedMs / 1000) }
  } finally {
    await child.stop()
  }
}

export async function runRawInsert (url: string, options: { connections: number, durationMs: number }): Promise<RawInsertResult> {
  await prepare(url)
  return await runPgbench(url, RAW_INSERT_SQL, options)
}
