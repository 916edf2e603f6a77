// Offline notifications end to end: two api processes (two apps on one database, each with its
// own presence entry), a jobs worker, and a real HTTP receiver. The receiver checks every
// request the way docs/webhooks.md tells receivers to.
import t, { type Test } from 'tap'
import http, { type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { onTeardown, testDatabase, testWithAndWithoutRedis, users, waitFor } from '@chatty/db/testing'
import { createQueueAdmin } from '@chatty/queue'
import { startJobs } from './helper.ts'
import { createChat, listen, openSocket, type RawSocket } from './ws-helper.ts'

const SECRET = 'webhook-secret-for-tests-only'
const { alice, bob, carol, dave } = users
const erin = '66666666-6666-4666-8666-666666666666'

interface Delivery {
  headers: IncomingHttpHeaders
  raw: string
  body: { event: string, delivery_id: string, conversation_id: string, message: { id: string, body: string, sender_id: string }, recipient_ids: string[] }
  /** What the receiver answered; 0: nothing (it stalled). */
  status: number
}

/** A webhook receiver on a free port: records every request; answers 204 unless told to fail. */
async function receiver (t: Test) {
  const deliveries: Delivery[] = []
  let failures = 0
  let stalls = 0
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      if (stalls > 0) {
        stalls--
        deliveries.push({ headers: request.headers, raw, body: JSON.parse(raw), status: 0 })
        return
      }
      const status = failures > 0 ? 500 : 204
      if (failures > 0) failures--
      deliveries.push({ headers: request.headers, raw, body: JSON.parse(raw), status })
      response.writeHead(status).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  onTeardown(t, () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/chatty`,
    deliveries,
    /** The next `count` requests are answered 500. */
    fail (count: number) { failures = count },
    /** The next `count` requests get no answer at all. */
    stall (count: number) { stalls = count },
    async next (messageId: string, count = 1): Promise<Delivery[]> {
      await waitFor(() => deliveries.filter((d) => d.body.delivery_id === messageId).length >= count, `${count} deliveries of ${messageId}`, 15_000)
      return deliveries.filter((d) => d.body.delivery_id === messageId)
    }
  }
}

/** The receiver's check, as docs/webhooks.md shows it: HMAC-SHA256 over `${timestamp}.${raw body}`. */
function verified (delivery: Delivery, secret: string): boolean {
  const timestamp = delivery.headers['x-chatty-timestamp']
  const signature = delivery.headers['x-chatty-signature']
  if (typeof timestamp !== 'string' || typeof signature !== 'string') return false
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${delivery.raw}`).digest('hex')}`)
  const given = Buffer.from(signature)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

async function sendOverSocket (socket: RawSocket, conversationId: string, body: string): Promise<string> {
  const ref = `r-${body}`
  socket.send({ type: 'message', conversation_id: conversationId, body, ref })
  const sent = await socket.until((frame) => frame.type === 'sent' && frame.ref === ref)
  return sent.message.id
}

/** `shared`: configuration of api and jobs alike (REDIS_URL puts presence and the bus on Redis). */
async function notifications (t: Test, shared: Record<string, unknown>): Promise<void> {
  const hook = await receiver(t)
  const { url: dbUrl } = await testDatabase(t)
  const apiConfig = { ...shared, WEBHOOK_URL: hook.url }
  const one = await listen(t, apiConfig, dbUrl)
  const two = await listen(t, apiConfig, dbUrl)
  // One worker, so jobs run in the order they were queued: a later delivery proves an earlier job finished.
  await startJobs(t, dbUrl, { ...shared, WEBHOOK_URL: hook.url, WEBHOOK_SECRET: SECRET, WORKER_CONCURRENCY: 1, JOBS_BACKOFF_BASE_MS: 50, WEBHOOK_TIMEOUT_MS: 500 })

  const chatId = await createChat(one.app, [alice, bob, carol, dave, erin])
  const muted = await one.app.inject({ method: 'PUT', url: `/api/v1/chat/${chatId}/mute`, payload: { user_id: dave, until: '2099-01-01T00:00:00Z' } })
  t.equal(muted.statusCode, 200, 'dave muted the conversation')
  // Alice's socket is on the first process, Bob's on the second.
  const aliceSocket = await openSocket(t, one.url, alice)
  await openSocket(t, two.url, bob)
  await waitFor(async () => (await one.app.presence.online([alice, bob])).size === 2 ? true : undefined)

  const first = await sendOverSocket(aliceSocket, chatId, 'hello over ws')
  const [delivery] = await hook.next(first)
  t.ok(verified(delivery!, SECRET), 'the signature verifies with WEBHOOK_SECRET')
  t.notOk(verified(delivery!, 'another-secret-another-secret'), 'and not with another secret')
  t.equal(delivery!.headers['content-type'], 'application/json')
  t.equal(delivery!.headers['x-chatty-event'], 'message.offline')
  t.equal(delivery!.headers['x-chatty-delivery'], first, 'the delivery id is the message id')
  t.equal(delivery!.headers['x-chatty-attempt'], '1')
  t.match(delivery!.body, {
    event: 'message.offline',
    delivery_id: first,
    conversation_id: chatId,
    message: { id: first, body: 'hello over ws', sender_id: alice }
  })
  t.same(delivery!.body.recipient_ids, [carol, erin].sort(),
    'carol and erin are offline; bob has a socket on the other process, dave muted, alice sent it')

  // Over HTTP: the jobs service stores it, then queues the notification. Erin sends and is left out.
  const accepted = await one.app.inject({ method: 'POST', url: `/api/v1/chat/${chatId}`, payload: { sender_id: erin, body: 'hello over http' } })
  t.equal(accepted.statusCode, 202)
  const httpId = accepted.json().message_id as string
  const [overHttp] = await hook.next(httpId)
  t.ok(verified(overHttp!, SECRET))
  t.same(overHttp!.body.recipient_ids, [carol], 'the HTTP path notifies too, without its sender')

  // Nobody offline: no request. The next job's delivery shows this one finished (one worker).
  const direct = await createChat(one.app, [alice, bob])
  const quiet = await sendOverSocket(aliceSocket, direct, 'everyone is here')
  const barrier = await sendOverSocket(aliceSocket, chatId, 'barrier')
  await hook.next(barrier)
  t.notOk(hook.deliveries.some((d) => d.body.delivery_id === quiet), 'a message whose recipients are all online posts nothing')

  // Dave unmutes: he is notified again.
  await one.app.inject({ method: 'PUT', url: `/api/v1/chat/${chatId}/mute`, payload: { user_id: dave, until: null } })
  // A receiver that fails once gets the same delivery again.
  hook.fail(1)
  const retried = await sendOverSocket(aliceSocket, chatId, 'retry me')
  const attempts = await hook.next(retried, 2)
  t.same(attempts.map((d) => d.status), [500, 204], 'answered 500, then retried and accepted')
  t.same(attempts.map((d) => d.headers['x-chatty-attempt']), ['1', '2'])
  t.same(attempts.map((d) => d.headers['x-chatty-delivery']), [retried, retried], 'with the same delivery id')
  t.ok(attempts.every((d) => verified(d, SECRET)), 'each attempt signed afresh')
  t.same(attempts[1]!.body.recipient_ids, [carol, dave, erin].sort(), 'dave is no longer muted')

  // A receiver that does not answer within WEBHOOK_TIMEOUT_MS fails the attempt too.
  hook.stall(1)
  const slow = await sendOverSocket(aliceSocket, chatId, 'slow receiver')
  const tries = await hook.next(slow, 2)
  t.same(tries.map((d) => d.status), [0, 204], 'no answer in time, then retried and accepted')
}

await testWithAndWithoutRedis(t, {
  postgres: 'offline, unmuted members other than the sender are posted to the webhook, signed; failures are retried',
  redis: 'the same with REDIS_URL: the jobs service reads the presence the api processes keep in Redis'
}, notifications)

t.test('a mention reaches a member who muted the conversation, marked as mentioned; muted and not mentioned, nothing', async (t) => {
  const hook = await receiver(t)
  const { url: dbUrl } = await testDatabase(t)
  const one = await listen(t, { WEBHOOK_URL: hook.url }, dbUrl)
  // One worker: jobs run in the order they were queued, so a later delivery proves an earlier job finished.
  await startJobs(t, dbUrl, { WEBHOOK_URL: hook.url, WEBHOOK_SECRET: SECRET, WORKER_CONCURRENCY: 1 })
  const chatId = await createChat(one.app, [alice, bob, carol])
  for (const user of [bob, carol]) {
    const muted = await one.app.inject({ method: 'PUT', url: `/api/v1/chat/${chatId}/mute`, payload: { user_id: user, until: '2099-01-01T00:00:00Z' } })
    t.equal(muted.statusCode, 200)
  }
  const socket = await openSocket(t, one.url, alice)
  const send = async (body: string, mentioned: string[]) => {
    socket.send({ type: 'message', conversation_id: chatId, body, mentioned_user_ids: mentioned, ref: body })
    return (await socket.until((frame) => frame.ref === body)).message.id as string
  }
  const quiet = await send('nobody mentioned', [])
  const mention = await send('@bob, look', [bob])
  const [delivery] = await hook.next(mention)
  t.ok(verified(delivery!, SECRET))
  t.same(delivery!.body.recipient_ids, [bob], 'bob muted the conversation but is mentioned; carol muted it and is not')
  t.same((delivery!.body as unknown as { mentioned_recipient_ids: string[] }).mentioned_recipient_ids, [bob])
  t.notOk(hook.deliveries.some((d) => d.body.delivery_id === quiet), 'everyone muted and nobody mentioned: no request (its job ran before the mention\'s)')

  // Over HTTP too, with a mention of the sender herself, which reaches nobody.
  const accepted = await one.app.inject({ method: 'POST', url: `/api/v1/chat/${chatId}`, payload: { sender_id: bob, body: '@carol @bob', mentioned_user_ids: [carol, bob] } })
  const [overHttp] = await hook.next(accepted.json().message_id)
  t.same(overHttp!.body.recipient_ids, [carol], 'alice is online; carol is mentioned; bob sent it')
  t.same((overHttp!.body as unknown as { mentioned_recipient_ids: string[] }).mentioned_recipient_ids, [carol])
})

t.test('without WEBHOOK_URL nothing is queued', async (t) => {
  const { url: dbUrl } = await testDatabase(t)
  const one = await listen(t, {}, dbUrl)
  await startJobs(t, dbUrl, {})
  const admin = createQueueAdmin({ backend: 'postgres', dbUrl })
  onTeardown(t, () => admin.close())
  const chatId = await createChat(one.app, [alice, carol])
  const socket = await openSocket(t, one.url, alice)
  await sendOverSocket(socket, chatId, 'ws')
  const accepted = await one.app.inject({ method: 'POST', url: `/api/v1/chat/${chatId}`, payload: { sender_id: alice, body: 'http' } })
  t.equal(accepted.statusCode, 202)
  await waitFor(async () => {
    const page = await one.app.inject({ url: `/api/v1/chat/${chatId}/messages` })
    return page.json().count === 2 ? true : undefined
  })
  // The send job is done (and removed) once its message is stored; nothing else was queued.
  await waitFor(async () => (await admin.counts()).every((row) => row.pending + row.scheduled + row.active + row.failed === 0), 'an empty queue', 10_000)
  t.pass('no chat:notify_offline job on either path')
})

t.test('the jobs service refuses WEBHOOK_URL without WEBHOOK_SECRET', async (t) => {
  const { url: dbUrl } = await testDatabase(t)
  await t.rejects(startJobs(t, dbUrl, { WEBHOOK_URL: 'http://127.0.0.1:9/hook' }), /WEBHOOK_URL needs WEBHOOK_SECRET/)
})
