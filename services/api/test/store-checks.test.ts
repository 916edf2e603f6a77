// What is checked where a message is stored, end to end: an HTTP send accepted (202) before its
// sender was removed, or blocked in a direct conversation, is refused by the jobs service when it
// runs (nothing stored; the job fails at once, with an error that says why); a websocket of a
// removed member cannot store either. And a retried HTTP send answers the id of the one message
// it stores. Both queue backends.
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { onTeardown, testDatabase, users, waitFor } from '@chatty/db/testing'
import { createQueueAdmin, type QueueAdmin } from '@chatty/queue'
import { buildTestApp, query, startJobs } from './helper.ts'
import { listen, openSocket } from './ws-helper.ts'
import { findRedis } from '../../../packages/cache/test/helpers.ts'

const { alice, bob, carol } = users

const redisUrl = await findRedis()
const backends = [
  { name: 'Postgres queue', backend: 'postgres' as const, skip: false as const },
  { name: 'Redis queue (BullMQ)', backend: 'redis' as const, skip: redisUrl === undefined ? 'no Redis' : false }
]

/** api and jobs configuration for a backend (a key prefix of the test's own on Redis), and its queue admin. */
function queueSetup (t: Test, backend: 'postgres' | 'redis', dbUrl: string): { shared: Record<string, unknown>, admin: QueueAdmin } {
  const prefix = `test-store-checks-${randomUUID()}:`
  const shared = backend === 'redis' ? { QUEUE_BACKEND: 'redis', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix } : { QUEUE_BACKEND: 'postgres' }
  const admin = createQueueAdmin({ backend, dbUrl, redisUrl, redisPrefix: `${prefix}q` })
  onTeardown(t, () => admin.close())
  return { shared, admin }
}

/** True once nothing is waiting, scheduled, retrying or running. */
async function drained (admin: QueueAdmin): Promise<boolean> {
  return (await admin.counts()).every((row) => row.pending + row.scheduled + row.active === 0)
}

for (const { name, backend, skip } of backends) {
  t.test(`${name}: an HTTP send accepted before its sender was removed or blocked is refused when the job runs: nothing stored, the job failed with the reason`, { skip }, async (t) => {
    const { url: dbUrl } = await testDatabase(t)
    const { shared, admin } = queueSetup(t, backend, dbUrl)
    const { app } = await buildTestApp(t, shared, dbUrl)
    const send = async (chat: string, sender: string, body: string) => {
      const response = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: sender, body } })
      t.equal(response.statusCode, 202, `${body}: accepted`)
      return response.json() as { task_id: string, message_id: string }
    }
    const group = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [bob, carol], creator_id: alice } })).json().id
    const direct = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json().id

    // Accepted while bob was a member and not blocked; no jobs process runs yet.
    const removedSend = await send(group, bob, 'sent before the removal')
    const blockedSend = await send(direct, bob, 'sent before the block')
    const removal = await app.inject({ method: 'DELETE', url: `/api/v1/chat/${group}/participants/${bob}?actor_id=${alice}` })
    t.equal(removal.statusCode, 200, 'alice removed bob')
    const block = await app.inject({ method: 'PUT', url: `/api/v1/users/${alice}/blocks/${bob}` })
    t.equal(block.statusCode, 204, 'alice blocked bob')
    const marker = await send(group, carol, 'marker after both')

    await startJobs(t, dbUrl, { ...shared, JOBS_BACKOFF_BASE_MS: 50 })
    const sql = await query(t, dbUrl)
    await waitFor(async () => (await sql('SELECT 1 FROM chat.message WHERE id = $1', [marker.message_id])).length === 1 && await drained(admin),
      'the marker stored and the queue drained', 20_000)

    const stored = await sql<{ conversation_id: string, sender_id: string, body: string, msg_type: number }>(
      'SELECT conversation_id, sender_id, body, msg_type FROM chat.message ORDER BY conversation_id, seq')
    t.same(stored.filter((row) => row.conversation_id === group).map((row) => [row.sender_id, row.msg_type, row.body]), [
      [alice, 3, `${alice} removed ${bob}`],
      [carol, 0, 'marker after both']
    ], 'the group holds the removal and the marker, nothing of bob after his removal')
    t.same(stored.filter((row) => row.conversation_id === direct), [], 'nothing stored in the direct conversation')

    const failed = await admin.listJobs({ state: 'failed' })
    const byMessage = new Map(failed.map((job) => [(job.payload as { message_id: string }).message_id, job]))
    t.equal(failed.length, 2, 'two failed jobs')
    t.match(byMessage.get(removedSend.message_id), {
      type: 'chat:send_message',
      attempts: 1,
      lastError: 'message not stored, refused when storing: user is not a participant in this conversation'
    }, 'the removed member\'s send: failed at once, not retried, with the reason')
    t.match(byMessage.get(blockedSend.message_id), {
      type: 'chat:send_message',
      attempts: 1,
      lastError: 'message not stored, refused when storing: the other member of this direct conversation has blocked the sender'
    }, 'the blocked sender\'s send: failed at once, not retried, with the reason')
  })

  t.test(`${name}: a retried HTTP send answers the id of the one message it stores, before and after the job ran`, { skip }, async (t) => {
    const { url: dbUrl } = await testDatabase(t)
    const { shared, admin } = queueSetup(t, backend, dbUrl)
    const { app } = await buildTestApp(t, shared, dbUrl)
    const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json().id
    const send = () => app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: alice, body: 'once', dedupe_key: 'retry-1' } })

    // The client retries before any job ran: once after the other, then several at once.
    const answers = [await send(), await send(), ...await Promise.all([send(), send(), send(), send()])]
    t.same(answers.map((answer) => answer.statusCode), [202, 202, 202, 202, 202, 202], 'every try accepted')
    const ids = new Set(answers.map((answer) => answer.json().message_id))
    t.equal(ids.size, 1, 'every answer carries the same message_id')
    const [messageId] = ids

    await startJobs(t, dbUrl, shared)
    const sql = await query(t, dbUrl)
    await waitFor(async () => (await sql('SELECT 1 FROM chat.message')).length > 0 && await drained(admin), 'the queue drained', 20_000)
    t.same(await sql('SELECT id, body, dedupe_key FROM chat.message'), [{ id: messageId, body: 'once', dedupe_key: 'retry-1' }],
      'exactly one row, under the answered id')

    const late = await send()
    t.equal(late.json().message_id, messageId, 'a retry after the message was stored answers the same id')
    const edit = await app.inject({ method: 'PATCH', url: `/api/v1/chat/${chat}/messages/${messageId}`, payload: { sender_id: alice, body: 'edited' } })
    t.equal(edit.statusCode, 200, 'the answered id can be edited')
    t.equal(edit.json().message.id, messageId)
    await waitFor(() => drained(admin), 'the queue drained again', 20_000)
    t.same(await sql('SELECT id, body FROM chat.message'), [{ id: messageId, body: 'edited' }], 'still one row')
  })
}

t.test('a socket of a member whose removal its process has not heard of cannot store', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json().id
  const socket = await openSocket(t, url, bob)
  socket.send({ type: 'join', conversation_id: chat, ref: 'j' })
  await socket.until((frame) => frame.type === 'joined')
  socket.send({ type: 'message', conversation_id: chat, body: 'while a member', ref: 'm1' })
  await socket.until((frame) => frame.type === 'sent' && frame.ref === 'm1')
  // Removed behind the api's back (as when the cache invalidation of a removal was lost): the
  // process's membership cache still lists bob.
  const sql = await query(t, dbUrl)
  await sql('DELETE FROM chat.participant WHERE conversation_id = $1 AND user_id = $2', [chat, bob])
  socket.send({ type: 'message', conversation_id: chat, body: 'after the removal', ref: 'm2' })
  const refused = await socket.until((frame) => frame.ref === 'm2')
  t.same(refused, { type: 'error', code: 'forbidden', error: 'user is not a participant in this conversation', ref: 'm2' }, 'refused where it is stored')
  t.same((await sql('SELECT body FROM chat.message ORDER BY seq')).map((row) => row.body), ['while a member'], 'nothing stored after the removal')
})
