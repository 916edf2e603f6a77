// Several processes on one database: two api processes and one jobs process, spawned as real
// children (`node services/api/src/server.ts`, as in production), first with the Postgres bus
// (LISTEN/NOTIFY), then with the Redis bus. Users connected to different api processes exchange
// 1000 messages over the websocket and over HTTP; every socket receives every message exactly
// once, in seq order.
import t, { type Test } from 'tap'
import { createConnection } from 'node:net'
import { findRedis, onTeardown, testDatabase, users, waitFor } from '@chatty/db/testing'
import { connectChat, createRestClient, type ChatSocket, type Message, type SendAccepted } from '@chatty/client'
import { query } from './helper.ts'
import { range } from './ws-helper.ts'
import { startService } from './process-helper.ts'

const { alice, bob, carol } = users
const TOTAL = 1000
/** Sends in flight at once, across both paths. */
const CONCURRENCY = 40

/** Sends one command to Redis and returns its reply, raw (RESP). */
async function redisCommand (url: string, args: string[]): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) })
    let reply = ''
    socket.setTimeout(1000, () => {
      socket.destroy()
      reject(new Error('Redis did not answer'))
    })
    socket.on('error', reject)
    socket.on('connect', () => socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`))
    socket.on('data', (data) => {
      reply += data.toString()
      // Every reply used here ends with an integer or a simple string line.
      if (/(^|\r\n)[:+-][^\r\n]*\r\n$/.test(reply)) {
        socket.destroy()
        resolve(reply)
      }
    })
  })
}

/** How many connections are subscribed to a conversation's channel (the bus's default namespace). */
async function redisSubscribers (url: string, chatId: string): Promise<number> {
  const reply = await redisCommand(url, ['PUBSUB', 'NUMSUB', `chatty:conversation:${chatId}`])
  return Number(/:(\d+)\r\n$/.exec(reply)?.[1])
}

interface Member {
  name: string
  user: string
  chat: ChatSocket
  /** Every message frame off the wire, before the client drops repeats. */
  frames: Message[]
}

async function exchange (t: Test, extraEnv: Record<string, string>): Promise<void> {
  const database = await testDatabase(t)
  const env = { DB_URL: database.url, DB_POOL_MAX: '10', ...extraEnv }
  const started = Date.now()
  const [api1, api2] = await Promise.all([
    startService(t, 'services/api/src/server.ts', env),
    startService(t, 'services/api/src/server.ts', env),
    startService(t, 'services/jobs/src/server.ts', env)
  ])
  t.comment(`three processes up in ${Date.now() - started} ms: ${api1!.url}, ${api2!.url}`)

  const rest = [createRestClient({ baseUrl: api1!.url }), createRestClient({ baseUrl: api2!.url })] as const
  const { id: chatId } = await rest[0].createChat({ participant_ids: [alice, bob, carol] })

  // Alice on the first process, Bob on the second, Carol with a device on each.
  const members: Member[] = []
  for (const [name, user, api] of [['alice', alice, api1!], ['bob', bob, api2!], ['carol phone', carol, api1!], ['carol laptop', carol, api2!]] as const) {
    const chat = await connectChat({ url: api.url, userId: user, requestTimeoutMs: 30_000 })
    onTeardown(t, () => chat.close())
    const member: Member = { name, user, chat, frames: [] }
    chat.on('frame', (frame) => { if (frame.type === 'message') member.frames.push(frame.message) })
    await chat.join(chatId)
    members.push(member)
  }
  const redisUrl = extraEnv.REDIS_URL
  if (redisUrl !== undefined) {
    t.equal(await redisSubscribers(redisUrl, chatId), 2, 'each api process subscribed once, whatever its number of sockets')
  }

  // 1000 messages: every other one over a websocket, the rest over HTTP to either process,
  // from all three users, CONCURRENCY at a time. One in 25 has a body whose frame is over
  // NOTIFY's 8000-byte limit, so the Postgres bus stores it and sends a reference.
  const bodyOf = (n: number) => `${n % 2 === 0 ? 'ws' : 'http'} ${n}${n % 25 === 3 ? ` ${'中'.repeat(3000)}` : ''}`
  const bodies = new Map<string, string>()
  const sentOverSocket: string[] = []
  const acceptedOverHttp: SendAccepted[] = []
  const sendStarted = Date.now()
  let next = 0
  await Promise.all(range(1, CONCURRENCY).map(async () => {
    while (next < TOTAL) {
      const n = next++
      const member = members[n % members.length]!
      if (n % 2 === 0) {
        const { id } = await member.chat.send(chatId, { body: bodyOf(n) })
        sentOverSocket.push(id)
        bodies.set(id, bodyOf(n))
      } else {
        const accepted = await rest[n % 4 === 1 ? 0 : 1].sendMessage(chatId, { sender_id: member.user, body: bodyOf(n) })
        acceptedOverHttp.push(accepted)
        bodies.set(accepted.message_id, bodyOf(n))
      }
    }
  }))
  t.comment(`1000 sends accepted in ${Date.now() - sendStarted} ms`)

  await waitFor(() => members.every((member) => member.frames.length >= TOTAL), 'every member to receive 1000 messages', 40_000)
  t.comment(`all delivered ${Date.now() - sendStarted} ms after the first send`)
  // The marker: one more message through the same fan-out; anything extra arrives before it.
  const marker = await members[0]!.chat.send(chatId, { body: 'marker' })
  await waitFor(() => members.every((member) => member.frames.some((message) => message.id === marker.id)), 'every member to receive the marker')

  const expectedIds = new Set([...sentOverSocket, ...acceptedOverHttp.map((accepted) => accepted.message_id)])
  t.equal(expectedIds.size, TOTAL, '1000 distinct messages were sent')
  for (const member of members) {
    t.equal(member.frames.at(-1)?.id, marker.id, `${member.name}: the marker last`)
    const frames = member.frames.slice(0, -1)
    t.same(frames.map((message) => message.seq), range(1, TOTAL), `${member.name}: before it, every seq exactly once, in order`)
    t.same(new Set(frames.map((message) => message.id)), expectedIds, `${member.name}: exactly the messages sent, over both paths`)
    t.ok(frames.every((message) => message.body === bodies.get(message.id)), `${member.name}: every body intact, the 40 large ones included`)
  }
  const stored = await rest[1].listMessages(chatId, { limit: 1 })
  t.equal(stored.messages[0]?.seq, TOTAL + 1, 'and 1000 stored, then the marker')
  if (extraEnv.REDIS_URL === undefined) {
    const [{ count }] = await (await query(t, database.url))('SELECT count(*)::int AS count FROM chat.bus_frame')
    t.equal(count, 40, 'the 40 large frames went through the bus as stored references')
  }

  if (redisUrl !== undefined) {
    // Bob and Carol's laptop: every socket the second process had in the conversation.
    await members[1]!.chat.leave(chatId)
    await members[3]!.chat.leave(chatId)
    await waitFor(async () => await redisSubscribers(redisUrl, chatId) === 1, 'the second process to unsubscribe', 5000)
    t.pass('a process whose last socket left the conversation unsubscribes; the other stays')
  }
}

t.test('two api processes and one jobs process on the Postgres bus: 1000 messages, each once, in order', async (t) => {
  await exchange(t, {})
})

const redisUrl = await findRedis()
t.test('the same with the Redis bus (REDIS_URL)', { skip: redisUrl === undefined ? 'no Redis: set REDIS_URL or run one on 127.0.0.1:6379' : false }, async (t) => {
  await exchange(t, { REDIS_URL: redisUrl! })
})
