// GET /api/v1/chat/:chat_id/messages?around_seq=: the page on both sides of a seq, newest first,
// full whenever the conversation has enough messages; exclusive with the other cursors.
import t from 'tap'
import { sendMessage } from '@chatty/chat'
import { createRestClient } from '@chatty/client'
import { users } from '@chatty/db/testing'
import { buildTestApp } from './helper.ts'
import { createChat, listen, range, seqs } from './ws-helper.ts'

const { alice, bob, eve } = users

t.test('around_seq returns the messages on both sides of a seq, newest first, filling from the other side at the ends', async (t) => {
  const { app } = await buildTestApp(t)
  const chat = await createChat(app, [alice, bob])
  for (let i = 1; i <= 30; i++) await sendMessage(app.chat, { conversationId: chat, senderId: i % 2 === 0 ? alice : bob, body: `m${i}` })
  const around = async (query: string) => {
    const res = await app.inject(`/api/v1/chat/${chat}/messages?${query}`)
    t.equal(res.statusCode, 200, query)
    return res.json()
  }
  const page = await around('around_seq=15&limit=10')
  t.same(seqs(page.messages), range(11, 20).reverse(), 'the seq and four older, five newer')
  t.same({ limit: page.limit, offset: page.offset, count: page.count }, { limit: 10, offset: 0, count: 10 })
  t.equal(page.messages[5].body, 'm15', 'the message itself is in the page')
  const cases: Array<[string, number[]]> = [
    ['around_seq=15&limit=9', range(11, 19)],
    ['around_seq=15&limit=1', [15]],
    ['around_seq=15&limit=2', [15, 16]],
    ['around_seq=29&limit=10', range(21, 30)],
    ['around_seq=30&limit=10', range(21, 30)],
    ['around_seq=2&limit=10', range(1, 10)],
    ['around_seq=1&limit=100', range(1, 30)],
    ['around_seq=1000&limit=5', range(26, 30)]
  ]
  for (const [query, expected] of cases) t.same(seqs((await around(query)).messages), expected.reverse(), query)
  t.same(seqs((await around('around_seq=15')).messages), range(1, 30).reverse(), 'the default limit (50)')
  const empty = await createChat(app, [alice])
  t.same((await app.inject(`/api/v1/chat/${empty}/messages?around_seq=3`)).json(), { messages: [], limit: 50, offset: 0, count: 0 })
})

t.test('around_seq is exclusive with before_seq, after_seq and offset, and readers are checked as for any history read', async (t) => {
  const { app } = await buildTestApp(t)
  const chat = await createChat(app, [alice, bob])
  await sendMessage(app.chat, { conversationId: chat, senderId: alice, body: 'hi' })
  for (const query of ['around_seq=1&before_seq=5', 'around_seq=1&after_seq=0', 'around_seq=1&offset=3', 'around_seq=0', 'around_seq=x', 'around_seq=1.5', 'around_seq=9007199254740992']) {
    const res = await app.inject(`/api/v1/chat/${chat}/messages?${query}`)
    t.equal(res.statusCode, 400, query)
    t.equal(res.json().code, 'bad_request', query)
  }
  t.equal((await app.inject(`/api/v1/chat/${chat}/messages?around_seq=1&offset=0`)).statusCode, 200, 'offset=0 is the default')
  const outsider = await app.inject({ url: `/api/v1/chat/${chat}/messages?around_seq=1`, headers: { 'x-user-id': eve } })
  t.equal(outsider.statusCode, 403)
  t.equal((await app.inject(`/api/v1/chat/99999999-9999-4999-8999-999999999999/messages?around_seq=1`)).statusCode, 404)
})

t.test('the client library passes around_seq', async (t) => {
  const { app, url } = await listen(t)
  const chat = await createChat(app, [alice])
  for (let i = 1; i <= 5; i++) await sendMessage(app.chat, { conversationId: chat, senderId: alice, body: `m${i}` })
  const page = await createRestClient({ baseUrl: url }).listMessages(chat, { around_seq: 3, limit: 3 })
  t.same(seqs(page.messages), [4, 3, 2])
})
