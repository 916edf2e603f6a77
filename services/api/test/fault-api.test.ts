// Fault: an api process is killed with SIGKILL while its websocket clients send. Two api
// processes (`node services/api/src/server.ts`, as `pnpm start` runs them) sit behind a failover
// proxy; every client starts on the first. When it dies, @chatty/client reconnects through the
// proxy to the second, joins again with since_seq and resends what was not acknowledged with its
// dedupe_key. Every client ends with the conversation's whole sequence, without gap or repeat,
// and every send is stored exactly once.
import t from 'tap'
import pg from 'pg'
import { onTeardown, testDatabase, users, waitFor } from '@chatty/db/testing'
import { connectChat, createRestClient, type ChatSocket, type Message } from '@chatty/client'
import { range } from './ws-helper.ts'
import { startFailoverProxy, startService } from './process-helper.ts'

const { alice, bob, carol } = users
const dave = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd'
const PER_CLIENT = 120
/** Sends in flight at once per client. */
const WINDOW = 4

interface Client {
  name: string
  chat: ChatSocket
  received: Message[]
  gaps: number
  reconnects: number
  acked: Message[]
  keys: string[]
}

t.test('an api process SIGKILLed while its websocket clients send: they resume on the other process with the full sequence, and every send is stored exactly once', { timeout: 120_000 }, async (t) => {
  const { url: dbUrl } = await testDatabase(t)
  const env = { DB_URL: dbUrl, DB_POOL_MAX: '10', WS_RATE_LIMIT_PER_SEC: '0' }
  const [doomed, survivor] = await Promise.all([
    startService(t, 'services/api/src/server.ts', env),
    startService(t, 'services/api/src/server.ts', env)
  ])
  const proxy = await startFailoverProxy(t, [doomed!.url, survivor!.url])
  const { id: chatId } = await createRestClient({ baseUrl: survivor!.url }).createChat({ participant_ids: [alice, bob, carol, dave] })

  const clients: Client[] = []
  for (const [name, user] of [['alice', alice], ['bob', bob], ['carol', carol], ['dave', dave]] as const) {
    const chat = await connectChat({ url: proxy.url, userId: user, requestTimeoutMs: 60_000, reconnect: { minDelayMs: 20, maxDelayMs: 300 } })
    onTeardown(t, () => chat.close())
    const client: Client = { name, chat, received: [], gaps: 0, reconnects: 0, acked: [], keys: [] }
    chat.on('message', (message) => client.received.push(message))
    chat.on('gap', () => { client.gaps++ })
    chat.on('reconnecting', () => { client.reconnects++ })
    await chat.join(chatId)
    clients.push(client)
  }

  let killed = false
  const total = clients.length * PER_CLIENT
  const sending = clients.map(async (client) => {
    let next = 0
    await Promise.all(range(1, WINDOW).map(async () => {
      while (next < PER_CLIENT) {
        const n = next++
        const key = `${client.name}-${n}`
        client.keys.push(key)
        client.acked.push(await client.chat.send(chatId, { body: `${client.name} ${n}`, dedupe_key: key }))
      }
    }))
  })
  // Kill the first process a third of the way in, with sends in flight on every client.
  await waitFor(() => clients.reduce((sum, client) => sum + client.acked.length, 0) >= total / 3, 'a third of the sends acknowledged', 30_000)
  await doomed!.kill()
  killed = true
  const ackedAtKill = clients.reduce((sum, client) => sum + client.acked.length, 0)
  t.ok(ackedAtKill < total, `killed with ${ackedAtKill} of ${total} sends acknowledged`)
  await Promise.all(sending)
  t.ok(killed)

  const db = new pg.Client({ connectionString: dbUrl })
  await db.connect()
  onTeardown(t, () => db.end())
  const rows = (await db.query<{ id: string, seq: number, dedupe_key: string }>('SELECT id, seq::int AS seq, dedupe_key FROM chat.message WHERE conversation_id = $1 ORDER BY seq', [chatId])).rows
  t.equal(rows.length, total, `${total} rows: every send stored exactly once`)
  t.same(rows.map((row) => row.seq), range(1, total), 'seq gap-free')
  t.same(new Set(rows.map((row) => row.dedupe_key)).size, total, 'no dedupe key twice')
  const byKey = new Map(rows.map((row) => [row.dedupe_key, row.id]))
  for (const client of clients) {
    t.equal(client.acked.length, PER_CLIENT, `${client.name}: every send acknowledged`)
    t.ok(client.acked.every((message) => byKey.get(message.dedupe_key!) === message.id), `${client.name}: each acknowledgement names the stored row`)
    t.ok(client.reconnects > 0, `${client.name} reconnected`)
  }
  await waitFor(() => clients.every((client) => client.received.length >= total), 'every client to receive every message', 30_000)
  for (const client of clients) {
    t.same(client.received.map((message) => message.seq), range(1, total), `${client.name}: the whole sequence, once each, in order, across the kill`)
    t.equal(client.gaps, 0, `${client.name}: no gap seen`)
  }
})
