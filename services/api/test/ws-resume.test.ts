// Resume after a reconnect: join with since_seq replays what a client missed, in order, before
// anything new, with no gap and no duplicate, even while messages keep being sent.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { sleep, users, waitFor } from '@chatty/db/testing'
import { startJobs } from './helper.ts'
import { chatClient, createChat, listen, openSocket, range, seqs, type Frame } from './ws-helper.ts'

const { alice, bob } = users

/** Sends over HTTP (stored by the jobs service) and returns the accepted message id. */
async function postMessage (app: FastifyInstance, chat: string, sender: string, body: string): Promise<string> {
  const response = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}`, payload: { sender_id: sender, body } })
  if (response.statusCode !== 202) throw new Error(`HTTP send refused: ${response.body}`)
  return response.json().message_id
}

async function storedCount (app: FastifyInstance, chat: string): Promise<number> {
  const page = (await app.inject(`/api/v1/chat/${chat}/messages?limit=1`)).json()
  return page.messages[0]?.seq ?? 0
}

t.test('a client that was away rejoins with since_seq and gets exactly what it missed, then live messages', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  await startJobs(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const b = await openSocket(t, url, bob)

  const first = await openSocket(t, url, alice)
  first.send({ type: 'join', conversation_id: chat })
  await first.next()
  for (let i = 1; i <= 5; i++) b.send({ type: 'message', conversation_id: chat, body: `before ${i}` })
  const seen: Frame[] = []
  for (let i = 0; i < 5; i++) seen.push(await first.next())
  t.same(seen.map((frame) => frame.message.seq), [1, 2, 3, 4, 5])
  first.ws.close()
  await first.closed

  // Away: 10 messages over the websocket, 10 over HTTP.
  for (let i = 1; i <= 10; i++) b.send({ type: 'message', conversation_id: chat, body: `away ws ${i}` })
  for (let i = 1; i <= 10; i++) await postMessage(app, chat, bob, `away http ${i}`)
  await waitFor(async () => await storedCount(app, chat) === 25, 'the 20 messages to be stored', 10_000)

  const back = await openSocket(t, url, alice)
  back.send({ type: 'join', conversation_id: chat, since_seq: 5, ref: 'resume' })
  const replayed: Frame[] = []
  for (let i = 0; i < 20; i++) replayed.push(await back.next())
  t.same(replayed.map((frame) => frame.message.seq), range(6, 25), 'the missed messages, in order')
  const bodies = replayed.map((frame) => frame.message.body)
  t.same(bodies.filter((body) => body.startsWith('away ws')), range(1, 10).map((i) => `away ws ${i}`), 'one socket\'s messages are stored in the order it sent them')
  // HTTP sends are stored by concurrent jobs, in any order.
  t.same(bodies.filter((body) => body.startsWith('away http')).sort(), range(1, 10).map((i) => `away http ${i}`).sort())
  t.same(await back.next(), { type: 'joined', conversation_id: chat, last_seq: 25, ref: 'resume' }, 'joined comes after the replay')
  b.send({ type: 'message', conversation_id: chat, body: 'live again' })
  t.equal((await back.next()).message.seq, 26, 'then live ones, with nothing in between')

  const future = await openSocket(t, url, alice)
  future.send({ type: 'join', conversation_id: chat, since_seq: 1000 })
  t.same(await future.next(), { type: 'joined', conversation_id: chat, last_seq: 26 }, 'a since_seq beyond the conversation is taken as its end')
  b.send({ type: 'message', conversation_id: chat, body: 'seen by the future socket' })
  t.equal((await future.next()).message.seq, 27, 'so the next message is not hidden from it')
})

t.test('joining with since_seq while messages are sent concurrently: every session is gap-free and repeat-free', async (t) => {
  // The sender goes faster than WS_RATE_LIMIT_PER_SEC allows: that limit is ws-limits.test.ts's.
  const { app, url, dbUrl } = await listen(t, { WS_RATE_LIMIT_PER_SEC: 0 })
  await startJobs(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  const sender = await openSocket(t, url, bob)
  const total = 400

  // Senders: over the websocket and over HTTP, as fast as they go, in eight bursts of 50, each
  // once the reader has opened another session, so that it resumes in the middle of the traffic
  // however fast the messages are stored.
  let sent = 0
  let sessions = 0
  const sending = (async () => {
    while (sent < total) {
      if (sent % 50 === 0) await waitFor(() => sessions > sent / 50, `the reader's session ${sent / 50 + 1}`)
      const batch = Math.min(10, total - sent)
      for (let i = 0; i < batch; i++) {
        const n = ++sent
        if (n % 2 === 0) sender.send({ type: 'message', conversation_id: chat, body: `m${n}` })
        else void postMessage(app, chat, bob, `m${n}`)
      }
      await sleep(5)
    }
  })()

  // A reader that keeps dropping its connection and rejoining from the last seq it saw.
  let last = 0
  let plainJoinChecked = false
  while (last < total) {
    const socket = await openSocket(t, url, alice)
    sessions++
    // Once, a join without since_seq in the middle of the traffic: everything after last_seq follows.
    const plain = !plainJoinChecked && last > 50
    socket.send(plain ? { type: 'join', conversation_id: chat } : { type: 'join', conversation_id: chat, since_seq: last })
    const before: number[] = []
    let joined: Frame
    for (;;) {
      const frame = await socket.next(10_000)
      if (frame.type === 'joined') {
        joined = frame
        break
      }
      before.push(frame.message.seq)
    }
    if (plain) {
      plainJoinChecked = true
      t.ok(before.every((seq) => seq <= joined.last_seq), 'a plain join: what precedes joined is at or before last_seq')
      last = joined.last_seq
    } else {
      t.same(before, range(last + 1, last + before.length), `session ${sessions}: the replay continues from since_seq ${last}`)
      if (before.length > 0) last = before.at(-1)!
      t.ok(joined.last_seq >= last, 'joined.last_seq covers the replay')
      last = Math.max(last, joined.last_seq)
    }
    // Live for a little while, then drop, whether frames come or not.
    const deadline = Date.now() + 30 + Math.random() * 50
    while (last < total) {
      const left = deadline - Date.now()
      if (left <= 0) break
      const frame = await socket.next(left).catch(() => undefined)
      if (frame === undefined) break
      if (frame.message.seq !== last + 1) t.fail(`session ${sessions}: expected seq ${last + 1}, got ${frame.message.seq}`)
      last = frame.message.seq
    }
    socket.ws.terminate()
  }
  await sending
  t.equal(last, total, `all ${total} messages seen over ${sessions} sessions`)
})

t.test('the client library reconnects by itself, resumes every conversation and resends what was not acknowledged', async (t) => {
  const { app, url, dbUrl } = await listen(t)
  await startJobs(t, dbUrl)
  const first = await createChat(app, [alice, bob])
  const second = await createChat(app, [alice, bob])
  const a = await chatClient(t, url, alice)
  const b = await chatClient(t, url, bob)
  await a.join(first)
  await a.join(second)
  let reconnects = 0
  a.on('connected', () => reconnects++)
  const gaps: unknown[] = []
  a.on('gap', (gap) => gaps.push(gap))

  const perChat = 150
  const sends: Array<Promise<unknown>> = []
  const sending = (async () => {
    for (let i = 1; i <= perChat; i++) {
      for (const chat of [first, second]) {
        sends.push(i % 3 === 0 ? postMessage(app, chat, bob, `${i}`) : b.send(chat, { body: `${i}` }))
      }
      if (i % 10 === 0) await sleep(10)
    }
  })()
  // The server drops every socket, several times, while messages flow both ways.
  for (let i = 0; i < 4; i++) {
    await sleep(120)
    for (const socket of app.websocketServer.clients) socket.terminate()
  }
  await sending
  await Promise.all(sends)
  await waitFor(() => a.received.length >= perChat * 2, 'alice to receive everything', 20_000)
  // Markers: one more message in each chat; anything extra arrives before them.
  const markers = [await b.send(first, { body: 'marker' }), await b.send(second, { body: 'marker' })]
  await waitFor(() => markers.every((marker) => a.received.some((message) => message.id === marker.id)), 'alice to receive the markers')

  for (const chat of [first, second]) {
    t.same(seqs(a.received.filter((message) => message.conversation_id === chat)), range(1, perChat + 1), 'every message once, in seq order, then the marker')
    t.equal(await storedCount(app, chat), perChat + 1, 'resent messages were stored once')
  }
  t.ok(reconnects >= 4, `reconnected ${reconnects} times`)
  t.same(gaps, [], 'no gap was ever seen')
})
