// What an idle socket holds on the server (docs/performance.md, idle sockets): its upgrade request
// is let go once the socket is open, and the socket keeps working without it.
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { users, waitFor } from '@chatty/db/testing'
import { createChat, listen, openSocket } from './ws-helper.ts'

const { alice, bob } = users

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

t.test('an open, joined socket does not keep its upgrade request; it still sends, receives and errors as before', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice, bob])
  const requests: Array<WeakRef<IncomingMessage>> = []
  app.server.on('upgrade', (request: IncomingMessage) => { requests.push(new WeakRef(request)) })
  const a = await openSocket(t, url, alice)
  const b = await openSocket(t, url, bob)
  for (const socket of [a, b]) {
    socket.send({ type: 'join', conversation_id: chat })
    t.equal((await socket.next()).type, 'joined')
  }
  t.equal(requests.length, 2)
  await waitFor(() => {
    gc()
    return requests.every((request) => request.deref() === undefined)
  }, 'the upgrade requests collected', 5000)

  a.send({ type: 'message', conversation_id: chat, body: 'after the request is gone' })
  t.match(await b.next(), { type: 'message', message: { body: 'after the request is gone', seq: 1 } })
  // An error on the socket (invalid UTF-8 in a text frame) is still handled: ws closes it with 1007.
  // Written by hand (FIN, text, masked with zeros), as ws refuses to send it.
  ;(a.ws as unknown as { _socket: Socket })._socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28]))
  t.equal((await a.closed).code, 1007)
  b.send({ type: 'message', conversation_id: chat, body: 'still served' })
  t.match(await b.next(), { type: 'message', message: { body: 'still served', seq: 2 } })
})
