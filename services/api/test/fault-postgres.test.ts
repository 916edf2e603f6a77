// Fault: Postgres is stopped and started again while clients send over HTTP and over a websocket.
// A private embedded Postgres (its own data dir and port; the shared server on 5432 is never
// touched) runs under an api and a jobs worker that are built once and never rebuilt. While the
// database is away the api answers 503 unavailable (HTTP) or an internal_error frame (websocket)
// at once, and the socket stays open; afterwards the api and the worker carry on by themselves,
// and every send the api answered 202 or acknowledged with `sent` is stored exactly once.
import t from 'tap'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { migrateUp, startEmbeddedPostgres, type EmbeddedServer } from '@chatty/db'
import { onTeardown, sleep, users, waitFor } from '@chatty/db/testing'
import { installQueueSchema } from '@chatty/queue'
import { buildJobs } from '@chatty/jobs'
import { buildApp } from '../src/app.ts'
import { openSocket } from './ws-helper.ts'
import { freePort } from './process-helper.ts'

const { alice, bob } = users
const CLIENTS = 4
/** Pause between one client's sends: about 150 sends a second in all. */
const PACE_MS = 25
/** A send that takes longer than this hangs, which the api must never do. */
const REQUEST_TIMEOUT_MS = 15_000
const OUTAGE_MS = 2000

interface Outcome {
  key: string
  started: number
  ended: number
  /** HTTP status, or what went wrong before one arrived. */
  status: number | 'timeout' | 'network error'
  code?: string
  messageId?: string
  retryAfter?: string | null
}

interface SocketOutcome {
  key: string
  started: number
  ended: number
  /** The reply frame's type and code: `sent`, `error internal_error`, or `timeout`. */
  reply: string
  messageId?: string
}


t.test('Postgres restarted while clients send: 503 while it is away, then api and worker recover by themselves and every accepted send is stored exactly once', { timeout: 150_000 }, async (t) => {
  // Postgres runs as the `postgres` user when the tests run as root: it must reach the data dir.
  const base = await mkdtemp(join(tmpdir(), 'chatty-fault-pg-'))
  await chmod(base, 0o755)
  onTeardown(t, () => rm(base, { recursive: true, force: true }))
  const dataDir = join(base, 'data')
  const port = await freePort()
  t.not(port, 5432)
  let postgres: EmbeddedServer | undefined = await startEmbeddedPostgres({ dataDir, port, database: 'chatty' })
  onTeardown(t, () => postgres?.stop())
  const dbUrl = postgres.url
  await migrateUp(dbUrl)
  await installQueueSchema(dbUrl)

  const app = await buildApp({ config: { DB_URL: dbUrl, DB_POOL_MAX: 5, MAX_EVENT_LOOP_DELAY_MS: 0, RATE_LIMIT_IP_MAX: 1_000_000, RATE_LIMIT_USER_MAX: 1_000_000, WS_RATE_LIMIT_PER_SEC: 0 } })
  onTeardown(t, () => app.close())
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  // JOBS_LOCK_TIMEOUT_MS: how soon a job whose attempt died with the database runs again (the
  // worker could not record the failure, so its lock has to expire first).
  const jobs = await buildJobs({ config: { DB_URL: dbUrl, DB_POOL_MAX: 5, JOBS_LOCK_TIMEOUT_MS: 3000 } })
  onTeardown(t, () => jobs.close())
  await jobs.ready()

  const created = await fetch(`${address}/api/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ participant_ids: [alice, bob] }) })
  t.equal(created.status, 201)
  const chatId = (await created.json() as { id: string }).id

  // ---- clients send continuously, each send with a dedupe key of its own ----
  const outcomes: Outcome[] = []
  let sending = true
  const send = async (key: string): Promise<Outcome> => {
    const started = Date.now()
    try {
      const res = await fetch(`${address}/api/v1/chat/${chatId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sender_id: alice, body: `message ${key}`, dedupe_key: key }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
      })
      const body = await res.json() as { code?: string, message_id?: string }
      return { key, started, ended: Date.now(), status: res.status, code: body.code, messageId: body.message_id, retryAfter: res.headers.get('retry-after') }
    } catch (error) {
      return { key, started, ended: Date.now(), status: (error as Error).name === 'TimeoutError' ? 'timeout' : 'network error' }
    }
  }
  const clients = Array.from({ length: CLIENTS }, async (_, client) => {
    for (let i = 0; sending; i++) {
      outcomes.push(await send(`c${client}-${i}`))
      await sleep(PACE_MS)
    }
  })
  // Should an assertion throw midway, the clients stop before the app closes.
  onTeardown(t, async () => {
    sending = false
    await Promise.all(clients)
  })
  const accepted = () => outcomes.filter((outcome) => outcome.status === 202)

  // ---- and bob sends over a websocket, one frame at a time, each with its own dedupe key ----
  const socket = await openSocket(t, address, bob)
  socket.send({ type: 'join', conversation_id: chatId, ref: 'join' })
  await socket.until((frame) => frame.ref === 'join')
  const socketOutcomes: SocketOutcome[] = []
  const socketClient = (async () => {
    for (let i = 0; sending; i++) {
      const key = `w-${i}`
      const started = Date.now()
      socket.send({ type: 'message', conversation_id: chatId, body: `message ${key}`, dedupe_key: key, ref: key })
      const reply = await socket.until((frame) => frame.ref === key && frame.type !== 'message', REQUEST_TIMEOUT_MS).catch(() => undefined)
      socketOutcomes.push({
        key,
        started,
        ended: Date.now(),
        reply: reply === undefined ? 'timeout' : reply.type === 'error' ? `error ${reply.code}` : reply.type,
        messageId: reply?.message?.id
      })
      if (reply === undefined) return
      await sleep(PACE_MS)
    }
  })()
  onTeardown(t, async () => {
    sending = false
    await socketClient
  })

  // ---- warm up, then stop Postgres mid-run ----
  await waitFor(async () => (accepted().length >= 40 ? true : undefined), { timeoutMs: 20_000 })
  const stopping = Date.now()
  await postgres.stop()
  postgres = undefined
  const stopped = Date.now()
  t.comment(`Postgres stopped in ${stopped - stopping} ms after ${accepted().length} accepted sends`)

  await sleep(OUTAGE_MS / 2)
  const readyWhileDown = await fetch(`${address}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  const readyWhileDownBody = await readyWhileDown.json() as { checks: Record<string, string> }
  await sleep(OUTAGE_MS / 2)

  // ---- start it again on the same data dir and port; keep sending ----
  const restarting = Date.now()
  postgres = await startEmbeddedPostgres({ dataDir, port, database: 'chatty' })
  const restarted = Date.now()
  t.comment(`Postgres restarted in ${restarted - restarting} ms`)
  const firstAfter = await waitFor(async () => outcomes.find((outcome) => outcome.started >= restarted && outcome.status === 202), { timeoutMs: 30_000 })
  t.comment(`sends succeed again ${firstAfter.ended - restarted} ms after the restart`)
  await sleep(1500)
  sending = false
  await Promise.all([...clients, socketClient])

  // ---- what the clients saw ----
  const byStatus = new Map<string, number>()
  for (const outcome of outcomes) byStatus.set(String(outcome.status), (byStatus.get(String(outcome.status)) ?? 0) + 1)
  t.comment(`${outcomes.length} sends: ${[...byStatus].map(([status, n]) => `${status} x${n}`).join(', ')}`)
  t.same(outcomes.filter((outcome) => outcome.status !== 202 && outcome.status !== 503), [], 'every send was answered 202 or 503: no 500, no other error, no hang')
  const refused = outcomes.filter((outcome) => outcome.status === 503)
  t.ok(refused.length > 0, 'the outage was seen')
  t.same(refused.filter((outcome) => outcome.code !== 'unavailable' || outcome.retryAfter === null), [], 'every 503 is {code: unavailable} with Retry-After')
  const whileDown = outcomes.filter((outcome) => outcome.started >= stopped && outcome.ended <= restarting)
  t.ok(whileDown.length >= CLIENTS, `sends were made while the database was away (${whileDown.length})`)
  t.same(whileDown.filter((outcome) => outcome.status !== 503), [], 'while the database is away every send is 503')
  const slowest = Math.max(...whileDown.map((outcome) => outcome.ended - outcome.started))
  t.ok(slowest < 5000, `a send is answered at once while the database is away (slowest ${slowest} ms)`)
  t.equal(readyWhileDown.status, 503, '/readyz is 503 while the database is away')
  t.equal(readyWhileDownBody.checks.postgres, 'down')
  const socketReplies = new Map<string, number>()
  for (const outcome of socketOutcomes) socketReplies.set(outcome.reply, (socketReplies.get(outcome.reply) ?? 0) + 1)
  t.comment(`${socketOutcomes.length} websocket sends: ${[...socketReplies].map(([reply, n]) => `${reply} x${n}`).join(', ')}`)
  t.same(socketOutcomes.filter((outcome) => outcome.reply !== 'sent' && outcome.reply !== 'error internal_error'), [],
    'every websocket send was answered sent or internal_error: no hang, no other error')
  const socketWhileDown = socketOutcomes.filter((outcome) => outcome.started >= stopped && outcome.ended <= restarting)
  t.ok(socketWhileDown.length > 0, `websocket sends were made while the database was away (${socketWhileDown.length})`)
  t.same(socketWhileDown.filter((outcome) => outcome.reply !== 'error internal_error'), [], 'while the database is away every websocket send is internal_error')
  t.ok(socketOutcomes.some((outcome) => outcome.started > firstAfter.ended && outcome.reply === 'sent'), 'the same socket sends again after the recovery')
  t.equal(socket.ws.readyState, socket.ws.OPEN, 'the socket stayed open through the outage')
  const afterRecovery = outcomes.filter((outcome) => outcome.started > firstAfter.ended)
  t.ok(afterRecovery.length >= CLIENTS, `sends were made after the recovery (${afterRecovery.length})`)
  t.same(afterRecovery.filter((outcome) => outcome.status !== 202), [], 'once recovered, every send is accepted again: the api recovered without a rebuild')
  const ready = await waitFor(async () => {
    const res = await fetch(`${address}/readyz`)
    return res.status === 200 ? res.json() : undefined
  }, { timeoutMs: 15_000 }).catch(async () => (await fetch(`${address}/readyz`)).json())
  t.match(ready, { status: 'ok', checks: { postgres: 'ok' } }, '/readyz is 200 again')

  // ---- what was stored: every accepted send once, by the worker that lived through the outage ----
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  onTeardown(t, () => client.end())
  const acceptedSends = accepted()
  const acceptedAfterRestart = acceptedSends.filter((outcome) => outcome.started >= restarting)
  t.ok(acceptedAfterRestart.length > 0, `sends were accepted after the restart (${acceptedAfterRestart.length})`)
  const drainStarted = Date.now()
  const count = async (table: string) => (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n
  // A job that was mid-attempt when Postgres went away keeps its lock (the worker could not record
  // the outcome) until the lock expires; expired locks are released every half lock timeout. So
  // the queue empties within about 1.5 x JOBS_LOCK_TIMEOUT_MS (3 s here) once Postgres is back.
  await waitFor(async () => ((await count('chat.message')) >= acceptedSends.length && (await count('graphile_worker._private_jobs')) === 0 ? true : undefined), { timeoutMs: 30_000 })
    .catch(() => {})
  t.comment(`the worker stored the backlog and emptied the queue in ${Date.now() - drainStarted} ms`)
  const { rows } = await client.query<{ id: string, dedupe_key: string, seq: number }>('SELECT id, dedupe_key, seq FROM chat.message ORDER BY seq')
  const stored = new Map<string, string[]>()
  for (const row of rows) stored.set(row.dedupe_key, [...(stored.get(row.dedupe_key) ?? []), row.id])
  t.same([...stored].filter(([, ids]) => ids.length > 1), [], 'no dedupe key is stored twice')
  t.same(acceptedSends.filter((outcome) => stored.get(outcome.key)?.[0] !== outcome.messageId).map((outcome) => outcome.key), [],
    'every accepted send is stored, under the message id its 202 promised')
  // A send in flight while Postgres shut down may have been queued just before its connection
  // dropped: its client got a 503 and retries with the same dedupe key. Nothing else is stored.
  const inFlightAtStop = new Set(outcomes.filter((outcome) => outcome.status === 503 && outcome.started <= stopped && outcome.ended >= stopping).map((outcome) => outcome.key))
  const acknowledged = socketOutcomes.filter((outcome) => outcome.reply === 'sent')
  t.same(acknowledged.filter((outcome) => stored.get(outcome.key)?.length !== 1 || stored.get(outcome.key)?.[0] !== outcome.messageId).map((outcome) => outcome.key), [],
    'every acknowledged websocket send is stored once, under the message id its `sent` frame carried')
  for (const outcome of socketOutcomes) {
    if (outcome.reply !== 'sent' && outcome.started <= stopped && outcome.ended >= stopping) inFlightAtStop.add(outcome.key)
  }
  const acceptedKeys = new Set([...acceptedSends, ...acknowledged].map((outcome) => outcome.key))
  const extra = [...stored.keys()].filter((key) => !acceptedKeys.has(key))
  t.same(extra.filter((key) => !inFlightAtStop.has(key)), [], 'nothing is stored that was not accepted')
  if (extra.length > 0) t.comment(`stored though answered 503 while Postgres was shutting down: ${extra.join(', ')}`)
  t.same(rows.map((row) => row.seq), rows.map((_, i) => i + 1), 'seq stays gap-free across the restart')
  t.equal(await count('graphile_worker._private_jobs'), 0, 'no job is left behind, failed or stuck')

  // The same worker takes new jobs at once (it listens again; a poll would take up to 2 s).
  const late = await send('late')
  t.equal(late.status, 202)
  const lateStarted = Date.now()
  const lateStored = await waitFor(async () => ((await client.query('SELECT 1 FROM chat.message WHERE dedupe_key = $1', ['late'])).rowCount === 1 ? true : undefined), { timeoutMs: 10_000 })
    .catch(() => false)
  t.ok(lateStored, `a send after the recovery is stored (in ${Date.now() - lateStarted} ms)`)
})
