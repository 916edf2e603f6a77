// A socket that stops reading is cut (close 1013) once its send buffer passes
// WS_MAX_BUFFERED_BYTES, instead of growing the server's memory or holding back its room.
import t from 'tap'
import type { Socket } from 'node:net'
import { users, waitFor } from '@chatty/db/testing'
import { chatClient, createChat, listen, openSocket, range, seqs } from './ws-helper.ts'

const { alice, bob, carol } = users

t.test('a slow reader is cut with 1013 while the rest of its room keeps receiving every message', async (t) => {
  const limit = 256 * 1024
  const { app, url } = await listen(t, { WS_MAX_BUFFERED_BYTES: limit })
  const chat = await createChat(app, [alice, bob, carol])
  const slow = await openSocket(t, url, alice)
  slow.send({ type: 'join', conversation_id: chat })
  await slow.next()
  const reader = await chatClient(t, url, bob)
  await reader.join(chat)
  const sender = await chatClient(t, url, carol)
  t.same(app.rooms.stats(), { rooms: 1, members: 2 })

  // Alice's client stops reading: the kernel buffers fill, then the server's.
  const tcp = (slow.ws as unknown as { _socket: Socket })._socket
  tcp.pause()
  // About 16 KB per frame: 4000 three-byte characters and 4 KB of attachment_meta.
  const body = '€'.repeat(4000)
  const attachment_meta = { pad: 'x'.repeat(4000) }
  let sent = 0
  const started = Date.now()
  while (app.rooms.stats().members === 2) {
    if (Date.now() - started > 30_000) throw new Error('the slow reader was never cut')
    await Promise.all(range(1, 20).map(() => sender.send(chat, { body, attachment_meta })))
    sent += 20
  }
  t.comment(`cut after ${sent} messages (~${Math.round(sent * 16 / 1024)} MB) in ${Date.now() - started} ms`)
  t.same(app.rooms.stats(), { rooms: 1, members: 1 }, 'the slow socket left its room')
  for (let i = 0; i < 20; i++) await sender.send(chat, { body: `after the cut ${i}` })
  sent += 20

  await waitFor(() => reader.received.length === sent, 'the reader to receive everything', 20_000)
  t.same(seqs(reader.received), range(1, sent), 'the rest of the room got every message, in order')

  // Reading again, alice finds what was buffered, then the close frame.
  tcp.resume()
  t.same(await slow.closed, { code: 1013, reason: 'slow consumer' })
  const delivered = slow.frames.filter((frame) => frame.type === 'message').map((frame) => frame.message.seq)
  t.ok(delivered.length < sent, `alice got ${delivered.length} of ${sent} before the cut`)
  t.same(delivered, range(1, delivered.length), 'what she got is a gap-free prefix: she resumes from its last seq')
})
