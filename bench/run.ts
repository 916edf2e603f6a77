// `pnpm bench`: creates a fresh database (chatty_bench, or BENCH_DATABASE) on the local Postgres, starts the api and
// jobs services as `pnpm start` would (child processes, Redis when one answers), runs every
// scenario and its baseline for a bounded time with load from separate processes, then prints a
// table of figures and ratios and writes bench/results/latest.json. Every scenario runs --runs
// times (3 by default; the runs of all scenarios take turns) and the table shows each figure's
// median and range. The services' own output goes to bench/results/services.log. See
// bench/README.md.
//
//   pnpm bench                 every scenario, three times (11-13 minutes on a busy 2-core machine)
//   pnpm bench --quick         short runs, once each, for a smoke test
//   pnpm bench --runs 1        every scenario once
//   pnpm bench --only ws,http  a subset: baseline, ws, http, history, idle, reactions, search
//   pnpm bench --no-redis      Postgres LISTEN/NOTIFY bus and in-process cache, as with no REDIS_URL
//   pnpm bench --env GROUP_COMMIT_MAX_BATCH=0   configuration for api and jobs (repeatable), to
//                              measure an optimisation by switching it off
import { execFileSync, spawnSync } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { connect } from 'node:net'
import { postgresAnswers } from '@chatty/db'
import { BENCH_DATABASE, createBenchDatabase, describeServer } from './lib/database.ts'
import { combine, met, renderTable, type ScenarioResult } from './lib/report.ts'
import { setWsGenerators, WS_GENERATORS } from './lib/ws-load.ts'
import { startChatty, BENCH_ENV } from './lib/services.ts'
import type { BenchContext } from './lib/context.ts'
import { runRawInsert } from './scenarios/pg-insert.ts'
import { runWsSend } from './scenarios/ws-send.ts'
import { runHttpSend } from './scenarios/http-send.ts'
import { runHistory } from './scenarios/history.ts'
import { runIdleSockets } from './scenarios/idle-sockets.ts'
import { runReactions } from './scenarios/reactions.ts'
import { runSearch, seedSearchSet } from './scenarios/search.ts'

const SCENARIOS = ['baseline', 'ws', 'http', 'history', 'idle', 'reactions', 'search'] as const
type ScenarioName = typeof SCENARIOS[number]

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-redis': { type: 'boolean', default: false },
    env: { type: 'string', multiple: true, default: [] },
    runs: { type: 'string' },
    generators: { type: 'string' },
    output: { type: 'string', default: 'bench/results/latest.json' }
  }
})

// One api process is asked to hold 10,000 sockets, and the load generator as many: make sure the
// open-file limit allows it before anything starts (children inherit it).
function ensureFileLimit (): void {
  if (process.env.CHATTY_BENCH_LIMIT_RAISED === '1') return
  const soft = Number(execFileSync('/bin/sh', ['-c', 'ulimit -n']).toString().trim())
  if (!Number.isFinite(soft) || soft >= 25_000) return
  const result = spawnSync('/bin/sh', ['-c', `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "${process.execPath}" ${process.argv.slice(1).map((a) => JSON.stringify(a)).join(' ')}`], {
    stdio: 'inherit',
    env: { ...process.env, CHATTY_BENCH_LIMIT_RAISED: '1' }
  })
  process.exit(result.status ?? 1)
}
ensureFileLimit()

const selected = new Set<ScenarioName>(args.only === undefined ? SCENARIOS : args.only.split(',').map((s) => s.trim()) as ScenarioName[])
for (const name of selected) if (!SCENARIOS.includes(name)) throw new Error(`unknown scenario ${name}; expected ${SCENARIOS.join(', ')}`)

// --env NAME=value: configuration passed to the api and jobs services (after the bench's own).
const serviceEnv: Record<string, string> = {}
for (const pair of args.env) {
  const at = pair.indexOf('=')
  if (at <= 0 || !/^[A-Z][A-Z0-9_]*$/.test(pair.slice(0, at))) throw new Error(`--env takes NAME=value, got ${JSON.stringify(pair)}`)
  serviceEnv[pair.slice(0, at)] = pair.slice(at + 1)
}

const runs = Number(args.runs ?? (args.quick ? 1 : 3))
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs takes a positive integer, got ${args.runs}`)
if (args.generators !== undefined) {
  const n = Number(args.generators)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--generators takes a positive integer, got ${args.generators}`)
  setWsGenerators(n)
}

const started = Date.now()
// Other work on the machine moves every absolute figure: the load average is recorded with them.
const loadAtStart = loadavg()
const log = (line: string) => console.log(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${line}`)

async function findPostgres (): Promise<string> {
  if (process.env.DB_URL !== undefined && process.env.DB_URL !== '') return process.env.DB_URL
  const local = 'postgres://postgres@127.0.0.1:5432/postgres'
  if (await postgresAnswers(local)) return local
  throw new Error('no Postgres: set DB_URL or run one on 127.0.0.1:5432 (the bench needs a real server, not the embedded one)')
}

async function findRedis (): Promise<string | undefined> {
  if (args['no-redis']) return undefined
  const url = process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '' ? process.env.REDIS_URL : 'redis://127.0.0.1:6379'
  const { hostname, port } = new URL(url)
  // A PING over a plain socket: enough to know whether to configure REDIS_URL.
  const answers = await new Promise<boolean>((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) })
    const done = (ok: boolean) => { socket.destroy(); resolve(ok) }
    socket.setTimeout(1000, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (data) => done(data.toString().startsWith('+PONG') || data.toString().startsWith('-NOAUTH')))
  })
  return answers ? url : undefined
}

function targetHost (url: string): void {
  const host = new URL(url).hostname
  if (host !== '127.0.0.1' && host !== 'localhost') throw new Error(`the bench only targets 127.0.0.1, not ${host}`)
}

const serverUrl = await findPostgres()
targetHost(serverUrl)
const redisUrl = await findRedis()
if (redisUrl !== undefined) targetHost(redisUrl)
await mkdir(new URL('./results/', import.meta.url), { recursive: true })
// The api's and jobs service's output (warnings under load, errors) goes to a file, so the
// progress lines and tables stay readable; a problem found points there.
const SERVICE_LOG = 'bench/results/services.log'
const serviceLogFile = createWriteStream(SERVICE_LOG)
const serviceLog = (line: string) => { serviceLogFile.write(`[${new Date().toISOString()}] ${line}\n`) }
log(`load average ${loadAtStart.map((n) => n.toFixed(2)).join(' ')} on ${cpus().length} CPUs; ${runs} run${runs === 1 ? '' : 's'} of each scenario; websocket load from ${WS_GENERATORS} processes per scenario; service output in ${SERVICE_LOG}`)
log(`Postgres ${new URL(serverUrl).host}, ${redisUrl === undefined ? 'no Redis (LISTEN/NOTIFY bus, in-process cache)' : `Redis ${new URL(redisUrl).host}`}${args.quick ? ', quick run' : ''}${Object.keys(serviceEnv).length > 0 ? `, services with ${Object.entries(serviceEnv).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`)
const dbUrl = await createBenchDatabase(serverUrl)
const postgres = await describeServer(dbUrl)
log(`database ${BENCH_DATABASE} created and migrated (Postgres ${postgres.version})`)

const durationMs = args.quick ? 2000 : 6000
const latencyMs = args.quick ? 2000 : 4000
/** Per scenario (in the order first run), the result of each run. */
const byScenario = new Map<string, ScenarioResult[]>()
const baselines: Record<string, number> = {}

/** One line per row after each run; the full table comes at the end, over all runs. */
function report (run: number, result: ScenarioResult): void {
  const list = byScenario.get(result.name) ?? []
  list.push(result)
  byScenario.set(result.name, list)
  const marked = result.rows.filter((row) => row.ratio !== undefined || row.target !== undefined)
  const brief = (marked.length > 0 ? marked : result.rows.slice(0, 1))
    .map((row) => `${row.metric} ${row.ratio !== undefined && !Number.isNaN(row.ratio) ? `${row.ratio.toFixed(2)}x` : `${row.value.toFixed(row.value >= 100 ? 0 : 2)} ${row.unit ?? ''}`.trim()}${met(row) === false ? ' (not met)' : ''}`)
  log(`run ${run}: ${result.name}: ${brief.join('; ')}${result.problems.length > 0 ? `; FAILED: ${result.problems.join('; ')}` : ''}`)
}

const chatty = await startChatty({ dbUrl, redisUrl, jobs: true, env: serviceEnv, log: serviceLog })
const ctx: BenchContext = { dbUrl, redisUrl, quick: args.quick, durationMs, latencyMs, chatty, baselines, env: serviceEnv, log, serviceLog }
try {
  // The search scenario's 1,000,000 messages are stored once, before any run, in conversations
  // of their own: every run of every scenario then sees the same tables.
  if (selected.has('search')) await seedSearchSet(ctx)
  // The runs take turns (all scenarios, then all again), so a change in the machine's load
  // spreads over every scenario instead of falling on one.
  for (let run = 1; run <= runs; run++) {
    if (runs > 1) log(`run ${run} of ${runs} (load average ${loadavg().map((n) => n.toFixed(2)).join(' ')})`)
    if (selected.has('baseline') || selected.has('ws')) {
      log('baseline: raw single-row INSERT transactions at 16 connections')
      const raw = await runRawInsert(dbUrl, { connections: 16, durationMs: args.quick ? 3000 : 5000 })
      baselines.rawInsertTps = raw.tps
      report(run, { name: 'baseline', rows: [{ metric: `pg INSERT tps @16 (${raw.tool})`, value: raw.tps, unit: '/s' }], details: { rawInsert: raw }, problems: [] })
    }
    if (selected.has('ws')) {
      for (const shape of [
        { roomSize: 2, rooms: 32, sendersPerRoom: 2, fixedRate: 1000 },
        { roomSize: 10, rooms: 32, sendersPerRoom: 2 },
        { roomSize: 100, rooms: 4, sendersPerRoom: 16 }
      ]) {
        // Four messages outstanding per sender saturate the send path here (rooms of 2: two reached
        // about 80% of the rate that four and eight reach), so "max" is the saturated rate.
        report(run, await runWsSend(ctx, { ...shape, window: 4, bodyBytes: 64 }))
      }
    }
    if (selected.has('http')) report(run, await runHttpSend(ctx))
    if (selected.has('history')) report(run, await runHistory(ctx))
    // A fresh api process of its own; the shared one stays up, idle.
    if (selected.has('idle')) report(run, await runIdleSockets(ctx))
    if (selected.has('reactions')) report(run, await runReactions(ctx))
    if (selected.has('search')) report(run, await runSearch(ctx))
  }
} finally {
  await chatty.stop()
}

const results = [...byScenario.values()].map(combine)
const table = renderTable(results)
const loadAtEnd = loadavg()
const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(' ')
console.log(`\n${runs === 1 ? 'one run of each scenario' : `median (min-max) of ${runs} runs of each scenario`}; ${((Date.now() - started) / 1000).toFixed(0)} s\n\n${table}\n\nload average (1, 5, 15 min) at start ${load(loadAtStart)}, at end ${load(loadAtEnd)}, on ${cpus().length} CPUs; websocket load from ${WS_GENERATORS} processes per scenario\n`)
const problems = results.flatMap((r) => r.problems.map((p) => `${r.name}: ${p}`))
const output = {
  startedAt: new Date(started).toISOString(),
  elapsedSeconds: (Date.now() - started) / 1000,
  quick: args.quick,
  runs,
  wsLoadProcesses: WS_GENERATORS,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: `${process.platform} ${process.arch}`, loadAverage: { start: loadAtStart, end: loadAtEnd } },
  postgres,
  redis: redisUrl === undefined ? null : 'redis',
  config: { ...BENCH_ENV, ...serviceEnv },
  baselines,
  table,
  results,
  problems
}
serviceLogFile.end()
await writeFile(args.output, JSON.stringify(output, null, 2) + '\n')
log(`results written to ${args.output} in ${((Date.now() - started) / 1000).toFixed(0)} s`)
if (problems.length > 0) {
  console.error(`bench FAILED: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}\n(the services' output is in ${SERVICE_LOG})`)
  process.exit(1)
}
