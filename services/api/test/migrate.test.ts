// `pnpm db:migrate` prepares everything the api needs, the job queue's schema included: on a
// fresh database, the migrate command run as a process, then an api process with no jobs process
// ever started, accepts an HTTP send and queues it.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { REPO_ROOT } from '@chatty/db'
import { createTestDatabase, onTeardown, startTestServer, users } from '@chatty/db/testing'
import { query } from './helper.ts'
import { startService } from './process-helper.ts'

const { alice, bob } = users

/** Runs the root package's `db:migrate` script line with these arguments through a shell, as `pnpm db:migrate` does. */
async function dbMigrate (dbUrl: string, args: string[]): Promise<{ code: number | null, output: string }> {
  const scripts = JSON.parse(await readFile(`${REPO_ROOT}package.json`, 'utf8')).scripts as Record<string, string>
  // `node` in the line is this test's Node, as it is pnpm's.
  const child = spawn('sh', ['-c', `${scripts['db:migrate']!} "$@"`, 'sh', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, DB_URL: dbUrl },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, output }
}

t.test('an api started after `pnpm db:migrate` on a fresh database, before any jobs process, queues sends', async (t) => {
  let server = process.env.TEST_DB_SERVER
  if (server === undefined) {
    const started = await startTestServer()
    onTeardown(t, () => started.stop())
    server = started.serverUrl
  }
  // Empty, not a clone of the suite's template (which already holds the queue's schema).
  const database = await createTestDatabase(server, 'template0')
  onTeardown(t, () => database.drop())
  const sql = await query(t, database.url)

  const migrated = await dbMigrate(database.url, ['up'])
  if (migrated.code !== 0) t.comment(migrated.output)
  t.equal(migrated.code, 0, 'db:migrate up succeeded')
  t.same(await sql("SELECT to_regclass('graphile_worker.jobs')::text AS jobs"), [{ jobs: 'graphile_worker.jobs' }], 'the queue\'s schema is there')
  const again = await dbMigrate(database.url, ['up'])
  t.equal(again.code, 0, 'a second run succeeds too')
  t.match(again.output, /no change/)

  const api = await startService(t, 'services/api/src/server.ts', { DB_URL: database.url, AUTH_MODE: 'none', QUEUE_BACKEND: 'postgres' })
  const created = await fetch(`${api.url}/api/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ participant_ids: [alice, bob] }) })
  t.equal(created.status, 201)
  const chat = (await created.json() as { id: string }).id
  const sent = await fetch(`${api.url}/api/v1/chat/${chat}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender_id: alice, body: 'before any jobs process' }) })
  const accepted = await sent.json() as { task_id: string, message_id: string }
  t.equal(sent.status, 202, `accepted: ${JSON.stringify(accepted)}`)
  t.same(await sql(`SELECT j.id::text, k.identifier AS task_identifier, j.payload
    FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks k ON k.id = j.task_id`), [{
    id: accepted.task_id,
    task_identifier: 'chat:send_message',
    payload: {
      message_id: accepted.message_id,
      conversation_id: chat,
      sender_id: alice,
      content: { body: 'before any jobs process', msg_type: 0, attachment_url: null, attachment_meta: null, dedupe_key: null, parent_id: null, mentioned_user_ids: [] }
    }
  }], 'the send waits in the queue for a jobs process')
})
