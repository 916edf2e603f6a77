// Fault: Redis is killed (SIGKILL) and started again on the same port, empty, under two api
// processes whose live fan-out goes through it (the Redis bus) and a jobs worker on the Redis
// queue (BullMQ). A private redis-server is used; the shared one is never touched. Nothing of
// ours is restarted: afterwards fan-out between the api processes and HTTP send -> stored ->
// delivered work again by themselves, and a message stored while Redis was away reaches the
// other process's members too.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { onTeardown, sleep, testDatabase, testMissingProgram, users, waitFor } from '@chatty/db/testing'
import { connectChat, type ChatSocket, type Message } from '@chatty/client'
import { startJobs } from './helper.ts'
import { createChat, listen, range } from './ws-helper.ts'
import { redisServerBinary, startRedisServer } from './process-helper.ts'

const { alice, bob } = users
const binary = redisServerBinary()

interface Member { chat: ChatSocket, received: Message[] }

async function member (t: Parameters<typeof onTeardown>[0], url: string, userId: string, chatId: string): Promise<Member> {
  const chat = await connectChat({ url, userId, requestTimeoutMs: 30_000, reconnect: { minDelayMs: 20, maxDelayMs: 500 } })
  onTeardown(t, () => chat.close())
  const received: Message[] = []
  chat.on('message', (message) => received.push(message))
  await chat.join(chatId)
  return { chat, received }
}

/** POST a message; resolves with the status and body, never throws. */
async function post (url: string, chatId: string, senderId: string, body: string): Promise<{ status: number, body: any }> {
  try {
    const response = await fetch(`${url}/api/v1/chat/${chatId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sender_id: senderId, body, dedupe_key: body }),
      signal: AbortSignal.timeout(15_000)
    })
    return { status: response.status, body: await response.json() }
  } catch (error) {
    return { status: 0, body: String(error) }
  }
}

const name = 'Redis killed and restarted: fan-out between two api processes and the Redis queue resume with no restart of ours; nothing stored is lost'
if (binary === undefined) {
  testMissingProgram(t, name, 'redis-server')
} else {
  t.test(name, { timeout: 120_000 }, async (t) => {
    const redis = await startRedisServer(t, binary)
    const { url: dbUrl } = await testDatabase(t)
    const config = {
      REDIS_URL: redis.url,
      QUEUE_BACKEND: 'redis',
      REDIS_KEY_PREFIX: `chatty-fault-${randomUUID()}:`,
      JOBS_LOCK_TIMEOUT_MS: 2000,
      JOBS_BACKOFF_BASE_MS: 50
    }
    const api1 = await listen(t, config, dbUrl)
    const api2 = await listen(t, config, dbUrl)
    await startJobs(t, dbUrl, config)
    const db = new pg.Client({ connectionString: dbUrl })
    await db.connect()
    onTeardown(t, () => db.end())
    const stored = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM chat.message')).rows[0]!.n

    const chatId = await createChat(api1.app, [alice, bob])
    const a = await member(t, api1.url, alice, chatId)
    const b = await member(t, api2.url, bob, chatId)

    // Before: a websocket send on one process reaches the other; an HTTP send goes through the queue.
    await a.chat.send(chatId, { body: 'ws before' })
    const before = await post(api2.url, chatId, bob, 'http before')
    t.equal(before.status, 202, 'HTTP send accepted')
    await waitFor(() => a.received.length === 2 && b.received.length === 2, 'both messages at both members', 15_000)

    await redis.kill()
    // While Redis is away: a websocket send is still stored (Postgres) and acknowledged; its
    // live fan-out to the other process is lost with the broker.
    const during = await a.chat.send(chatId, { body: 'ws while redis is down' })
    t.equal(during.seq, 3, 'a websocket send while Redis is away is stored and acknowledged')
    const refused = await post(api1.url, chatId, alice, 'http while redis is down')
    t.same(refused, { status: 503, body: { error: 'the queue is unavailable; retry shortly', code: 'unavailable' } },
      'an HTTP send while the Redis queue is away is answered 503 unavailable at once, not left hanging')
    await sleep(500)

    await redis.restart()
    // Fan-out is back once a websocket send on process 2 reaches alice on process 1.
    let probe = 0
    await waitFor(async () => {
      await b.chat.send(chatId, { body: `probe ${++probe}` }).catch(() => {})
      await sleep(300)
      return a.received.some((message) => message.body?.startsWith('probe') === true)
    }, 'live fan-out between the api processes again', 30_000)
    t.pass(`fan-out resumed after ${probe} probe(s)`)

    // HTTP send -> queue -> stored -> delivered to both processes' members.
    let accepted: { status: number, body: any } | undefined
    await waitFor(async () => {
      accepted = await post(api1.url, chatId, alice, `http after ${randomUUID()}`)
      return accepted.status === 202
    }, 'an HTTP send to be accepted again', 30_000)
    const messageId = accepted!.body.message_id
    await waitFor(() => a.received.some((m) => m.id === messageId) && b.received.some((m) => m.id === messageId), 'the HTTP send to be stored and delivered to both members', 30_000)
    t.pass('an HTTP send after the restart is stored by the worker and delivered over the bus')

    // Burst: 40 HTTP sends and 40 websocket sends across both processes.
    const burst = await Promise.all(range(1, 40).map((n) => post(n % 2 === 0 ? api1.url : api2.url, chatId, n % 2 === 0 ? alice : bob, `burst http ${n}`)))
    t.same(burst.map((answer) => answer.status), Array(40).fill(202), 'every burst HTTP send accepted')
    await Promise.all(range(1, 40).map((n) => (n % 2 === 0 ? a : b).chat.send(chatId, { body: `burst ws ${n}` })))
    const burstStored = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM chat.message WHERE body LIKE 'burst http %'")).rows[0]!.n
    await waitFor(async () => await burstStored() === 40, 'the worker to store the 40 HTTP sends', 30_000)
    const expected = await stored()
    await waitFor(() => a.received.length >= expected && b.received.length >= expected, 'both members to get every stored message', 30_000)
    const count = await stored()
    for (const [name, who] of [['alice (process 1)', a], ['bob (process 2)', b]] as const) {
      t.same(who.received.map((message) => message.seq), range(1, count), `${name}: every stored message once, in seq order, the one sent during the outage included`)
    }
    t.ok(b.received.some((message) => message.id === during.id), 'the message stored while Redis was away reached the other process\'s member')
    t.ok(!b.received.some((message) => message.body === 'http while redis is down'), 'the refused HTTP send was not stored')
  })
}
