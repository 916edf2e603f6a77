// Fault: a jobs process (`node services/jobs/src/server.ts`, as `pnpm start` runs it) is killed
// with SIGKILL in the middle of its jobs while HTTP sends are queued. To be sure it dies mid-job,
// the test holds the conversation's row lock, so the process's send jobs are claimed and waiting
// inside their database transactions when it is killed. A second jobs process takes over after
// the lock timeout: every send the api answered 202 ends stored exactly once, seq gap-free.
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { onTeardown, sleep, testDatabase, users, waitFor } from '@chatty/db/testing'
import { createChat, listen, range } from './ws-helper.ts'
import { startService } from './process-helper.ts'

const { alice, bob } = users
const SENDS = 120
const LOCK_TIMEOUT_MS = 1000
const redisUrl = process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '' ? process.env.REDIS_URL : 'redis://127.0.0.1:6379'

async function killMidJob (t: Test, backend: 'postgres' | 'redis'): Promise<void> {
  const { url: dbUrl } = await testDatabase(t)
  const shared = {
    QUEUE_BACKEND: backend,
    ...(backend === 'redis' ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `chatty-fault-jobs-${randomUUID()}:` } : {})
  }
  const api = await listen(t, { ...shared, RATE_LIMIT_IP_MAX: 1_000_000, RATE_LIMIT_USER_MAX: 1_000_000 }, dbUrl)
  const jobsEnv = {
    ...shared,
    DB_URL: dbUrl,
    DB_POOL_MAX: '10',
    JOBS_ADMIN_HOST: '127.0.0.1',
    JOBS_LOCK_TIMEOUT_MS: String(LOCK_TIMEOUT_MS),
    JOBS_BACKOFF_BASE_MS: '50',
    WORKER_CONCURRENCY: '10'
  }
  const db = new pg.Client({ connectionString: dbUrl })
  await db.connect()
  onTeardown(t, () => db.end())
  const chatId = await createChat(api.app, [alice, bob])

  // Every send job will wait for this lock inside its transaction.
  const holder = new pg.Client({ connectionString: dbUrl })
  await holder.connect()
  onTeardown(t, () => holder.end())
  await holder.query('BEGIN')
  await holder.query('SELECT 1 FROM chat.conversation WHERE id = $1 FOR UPDATE', [chatId])

  const accepted: string[] = []
  for (const n of range(1, SENDS)) {
    const response = await api.app.inject({ method: 'POST', url: `/api/v1/chat/${chatId}`, payload: { sender_id: n % 2 === 0 ? alice : bob, body: `send ${n}`, dedupe_key: `k${n}` } })
    if (response.statusCode !== 202) throw new Error(`send ${n}: ${response.statusCode} ${response.body}`)
    accepted.push(`k${n}`)
  }
  t.equal(accepted.length, SENDS, `${SENDS} sends answered 202`)

  const first = await startService(t, 'services/jobs/src/server.ts', jobsEnv)
  const waiting = async () => (await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'chatty-jobs' AND wait_event_type = 'Lock'")).rows[0]!.n
  await waitFor(async () => await waiting() > 0, 'the first jobs process to be inside its send jobs', 20_000)
  await first.kill()
  t.pass(`the first jobs process was killed (SIGKILL) with ${SENDS} sends queued and its jobs waiting mid-transaction`)
  // Postgres notices the dead client only when its statements finish: a statement that commits by
  // itself may still store its message, and the job runs again anyway. The dedupe key keeps one.
  await holder.query('COMMIT')
  const count = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM chat.message')).rows[0]!.n

  await startService(t, 'services/jobs/src/server.ts', jobsEnv)
  await waitFor(async () => await count() >= SENDS, `a second jobs process to store all ${SENDS} sends`, 60_000)
  // Anything run twice (a job re-run after its lock timed out) would show up within a few lock timeouts.
  await sleep(3 * LOCK_TIMEOUT_MS)
  const rows = (await db.query<{ seq: number, dedupe_key: string, body: string }>('SELECT seq::int AS seq, dedupe_key, body FROM chat.message WHERE conversation_id = $1 ORDER BY seq', [chatId])).rows
  t.equal(rows.length, SENDS, 'exactly one row per accepted send')
  t.same(rows.map((row) => row.seq), range(1, SENDS), 'seq 1..N without a gap')
  t.same(rows.map((row) => row.dedupe_key).sort(), [...accepted].sort(), 'every accepted send stored, each exactly once')
  t.ok(rows.every((row) => row.body === `send ${row.dedupe_key.slice(1)}`), 'each with its own content')
}

t.test('Postgres queue: a jobs process SIGKILLed mid-job; another takes over and every accepted send is stored exactly once', { timeout: 120_000 }, async (t) => {
  await killMidJob(t, 'postgres')
})

t.test('Redis queue (BullMQ): the same', { timeout: 120_000 }, async (t) => {
  await killMidJob(t, 'redis')
})
