// The Postgres LISTEN/NOTIFY bus against the real test server: the shared contract, then what
// is particular to Postgres (channel names, stored frames, losing the listening connection).
import t from 'tap'
import pg from 'pg'
import { queryRows, sleep, testDatabase, waitFor } from '@chatty/db/testing'
import { BusClosedError, createPostgresBus, postgresChannel, type Bus, type PostgresBus, type PostgresBusOptions } from '../src/index.ts'
import { testBusContract } from './contract.ts'
import { assertDeliveryResumes, freePort, probeUntilDelivered, randomName, receive, startSilentProxy } from './fixtures.ts'

const { url } = await testDatabase(t)
// Channels are per database, and this database is the file's own; a namespace per file keeps
// even a shared database apart.
const namespace = randomName('test')

function open (t: { teardown (fn: () => unknown): void }, options: Partial<PostgresBusOptions> = {}): PostgresBus {
  const bus = createPostgresBus({ connectionString: url, namespace, ...options })
  t.teardown(() => bus.close())
  return bus
}

const query = <R extends pg.QueryResultRow> (sql: string, values: unknown[] = []) => queryRows<R>(url, sql, values)

testBusContract(t, {
  open,
  async subscribers (topic, buses: Bus[]) {
    const listening = await Promise.all(buses.map((bus) => (bus as PostgresBus).listeningTopics()))
    return listening.filter((topics) => topics.includes(topic)).length
  }
})

t.test('channel names stay valid identifiers for any topic', async (t) => {
  t.equal(postgresChannel('chatty', 'conversation:6f1c0f9e-8a2b-4c3d-9e4f-5a6b7c8d9e0f'), 'chatty:conversation:6f1c0f9e-8a2b-4c3d-9e4f-5a6b7c8d9e0f')
  const long = postgresChannel('chatty', 'x'.repeat(100))
  t.ok(Buffer.byteLength(long) <= 63, 'a long topic becomes a hash that fits')
  t.not(long, postgresChannel('chatty', 'x'.repeat(101)))
  const a = open(t)
  const b = open(t)
  const topics = ['x'.repeat(200), 'Mixed Case "quoted" topic; DROP TABLE x', 'é中🎉']
  for (const topic of topics) {
    const receiver = await receive(b, topic)
    await a.publish(topic, `to ${topic}`)
    t.same(await receiver.received(1), [`to ${topic}`])
  }
  t.same((await b.listeningTopics()).sort(), [...topics].sort())
})

t.test('frames of every size around the NOTIFY limit arrive intact', async (t) => {
  const a = open(t)
  const b = open(t)
  const topic = randomName('sizes')
  const receiver = await receive(b, topic)
  const frames = [7900, 7990, 7999, 8000, 8001, 15_900, 15_901, 1_000_000].flatMap((size) => ['a'.repeat(size), '🎉'.repeat(size / 4)])
  for (const frame of frames) await a.publish(topic, frame)
  const received = await receiver.received(frames.length)
  t.equal(received.length, frames.length)
  t.ok(received.every((frame, i) => frame === frames[i]), 'every frame equal to the one published')
})

t.test('a frame over the NOTIFY limit is stored, notified as a reference, fetched by every listener, and expires', async (t) => {
  const logged: string[] = []
  const a = open(t, { storedFrameTtlMs: 1000, log: (level, message) => logged.push(`${level}: ${message}`) })
  const b = open(t)
  const c = open(t)
  const topic = randomName('stored')
  const [inB, inC] = [await receive(b, topic), await receive(c, topic)]
  // What goes over NOTIFY itself, seen by a plain LISTEN.
  const raw = new pg.Client({ connectionString: url })
  await raw.connect()
  t.teardown(() => raw.end())
  const payloads: string[] = []
  raw.on('notification', (notification) => payloads.push(notification.payload ?? ''))
  await raw.query(`LISTEN ${pg.escapeIdentifier(postgresChannel(namespace, topic))}`)

  const large = JSON.stringify({ type: 'message', body: 'é中🎉'.repeat(5000) })
  await a.publish(topic, large)
  t.same(await inB.received(1), [large], 'one listening process gets the frame')
  t.same(await inC.received(1), [large], 'and another')
  // The plain listener's copy may still be on its way.
  await waitFor(() => payloads.length > 0, 'the plain listener\'s notification')
  t.equal(payloads.length, 1)
  t.match(payloads[0], /^[\w-]+\.\w+@$/, 'the notification is only a reference')
  const id = payloads[0]!.slice(0, -1)
  t.same(await query('SELECT frame FROM chat.bus_frame WHERE id = $1', [id]), [{ frame: large }], 'stored under that id')

  // The row goes a TTL after the publish, deleted by the publisher.
  await waitFor(async () => (await query('SELECT 1 FROM chat.bus_frame WHERE id = $1', [id])).length === 0, { what: 'the expired row to go', intervalMs: 100 })
  t.pass('deleted once expired')
  t.same(logged, [])
})

t.test('a reference whose frame is gone is dropped with a warning, and frames after it arrive in order', async (t) => {
  const logged: string[] = []
  const a = open(t)
  const b = open(t, { log: (level, message) => logged.push(`${level}: ${message}`) })
  const topic = randomName('gone')
  const receiver = await receive(b, topic)
  await query('SELECT pg_notify($1, $2)', [postgresChannel(namespace, topic), 'nobody.0@'])
  await a.publish(topic, 'after 1')
  await a.publish(topic, 'x'.repeat(20_000))
  await a.publish(topic, 'after 2')
  t.same(await receiver.received(3), ['after 1', 'x'.repeat(20_000), 'after 2'])
  t.same(logged, ['warn: bus: 1 stored frame(s) expired before they were fetched; dropped'])
})

t.test('a frame with a NUL character is refused and does not disturb other publishes', async (t) => {
  const a = open(t)
  const topic = randomName('nul')
  const receiver = await receive(a, topic)
  const results = await Promise.allSettled([a.publish(topic, 'before'), a.publish(topic, 'bad \u0000'), a.publish(topic, 'after')])
  t.same(results.map((result) => result.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.same(await receiver.received(2), ['before', 'after'])
})

t.test('delivery resumes after the listening connection is terminated, without a new bus', async (t) => {
  const logged: string[] = []
  const applicationName = randomName('bus')
  const a = open(t)
  const b = open(t, { applicationName, log: (level, message) => logged.push(`${level}: ${message}`) })
  const topic = randomName('terminated')
  const before = await receive(b, topic)
  await a.publish(topic, 'before')
  await before.received(1)

  const [terminated] = await query<{ ok: boolean }>('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1', [`${applicationName} listen`])
  t.equal(terminated?.ok, true, 'the listening backend was terminated')
  // Subscribed while the connection is down: resolves once the replacement listens.
  const during = randomName('during')
  const joining = receive(b, during)

  await assertDeliveryResumes(t, a, { topic, before, during, joining }, 'joined during the outage')
  t.same((await b.listeningTopics()).sort(), [during, topic].sort(), 'the replacement connection listens to both topics, nothing else')
  t.ok(logged.some((line) => line.startsWith('warn: bus: lost')), 'the loss was logged')
})

t.test('a listening connection that goes silent is noticed by the heartbeat and replaced', async (t) => {
  const target = new URL(url)
  const proxy = await startSilentProxy({ host: target.hostname, port: Number(target.port || 5432) })
  t.teardown(() => proxy.close())
  const viaProxy = new URL(url)
  viaProxy.port = String(proxy.port)
  const a = open(t)
  const b = createPostgresBus({ connectionString: viaProxy.toString(), namespace, heartbeatMs: 200 })
  t.teardown(() => b.close())
  const topic = randomName('silent')
  const receiver = await receive(b, topic)
  await a.publish(topic, 'before')
  await receiver.received(1)
  proxy.silence()
  const silencedAt = Date.now()
  await probeUntilDelivered(a, topic, receiver)
  t.ok(Date.now() - silencedAt < 5_000, 'replaced within a few heartbeats')
})

t.test('a bus that only publishes never opens a listening connection', async (t) => {
  const applicationName = randomName('publisher')
  const a = open(t, { applicationName })
  await a.publish(randomName('nobody'), 'x')
  const rows = await query<{ application_name: string }>('SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1', [`${applicationName}%`])
  t.same(rows.map((row) => row.application_name), [`${applicationName} notify`])
})

t.test('with Postgres unreachable, a subscribe waits and a publish fails; closing ends the wait', async (t) => {
  const nowhere = new URL(url)
  nowhere.port = String(await freePort())
  const logged: string[] = []
  const bus = createPostgresBus({ connectionString: nowhere.toString(), namespace, log: (level, message) => logged.push(`${level}: ${message}`) })
  t.teardown(() => bus.close())
  let settled = false
  const waiting = bus.subscribe(randomName('unreachable'), () => {}).finally(() => { settled = true })
  await t.rejects(bus.publish(randomName('unreachable'), 'x'))
  await sleep(500)
  t.notOk(settled, 'the subscribe is still waiting for Postgres')
  await bus.close()
  await t.rejects(waiting, BusClosedError)
  t.same(logged, ['warn: bus: cannot LISTEN on Postgres; retrying'], 'one line for the whole outage')
})
