// The history page's bytes: written with JSON.stringify (the route's serializer, for speed), they
// must be exactly what the response schema's fast-json-stringify writes: the same fields in the
// same order, nulls present, whatever a message holds (replies, mentions, reactions, a pin, an
// edit, a tombstone, attachment metadata, characters that need escaping).
import t from 'tap'
import build from 'fast-json-stringify'
import { sendMessage } from '@chatty/chat'
import { users } from '@chatty/db/testing'
import { MessagePageSchema } from '../src/schemas/chat.ts'
import { buildTestApp } from './helper.ts'

const { alice, bob } = users

t.test('a history page is byte for byte what the response schema writes', async (t) => {
  const { app } = await buildTestApp(t)
  const chat = (await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })).json().id as string
  const send = async (input: Record<string, unknown>) => (await sendMessage(app.chat, { conversationId: chat, senderId: alice, ...input })).message.id
  const parent = await send({ body: 'quotes " backslash \\ newline \n tab \t control \u0001 emoji 😀 é' })
  await send({ body: 'a reply', parent_id: parent, mentioned_user_ids: [bob] })
  await send({ msg_type: 1, attachment_url: 'https://example.com/a.png', attachment_meta: { w: 1, nested: { list: [1, 'two', null, true], 'odd "key"': '</script>' } } })
  const edited = await send({ body: 'before the edit' })
  const deleted = await send({ body: 'to be deleted' })
  t.equal((await app.inject({ method: 'PUT', url: `/api/v1/chat/${chat}/messages/${parent}/reactions/${encodeURIComponent('👍')}?user_id=${bob}` })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: `/api/v1/chat/${chat}/messages/${parent}/reactions/ok?user_id=${alice}` })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: `/api/v1/chat/${chat}/pins/${parent}?user_id=${bob}` })).statusCode, 200)
  t.equal((await app.inject({ method: 'PATCH', url: `/api/v1/chat/${chat}/messages/${edited}`, payload: { sender_id: alice, body: 'after the edit' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/api/v1/chat/${chat}/messages/${deleted}?sender_id=${alice}` })).statusCode, 200)

  const schemaWrites = build(JSON.parse(JSON.stringify(MessagePageSchema)))
  for (const query of ['', '?limit=2', '?after_seq=1', '?around_seq=3&limit=3', `?parent_id=${parent}`, '?top_level=true']) {
    const res = await app.inject({ url: `/api/v1/chat/${chat}/messages${query}`, headers: { 'x-user-id': bob } })
    t.equal(res.statusCode, 200, query)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8', query)
    t.equal(res.body, schemaWrites(res.json()), `${query}: the same bytes`)
  }
  const page = (await app.inject({ url: `/api/v1/chat/${chat}/messages` })).json()
  t.ok(page.messages.some((m: { reply_count: number, pinned_at: string | null, reactions: Record<string, number> }) => m.reply_count === 1 && m.pinned_at !== null && m.reactions['👍'] === 1))
  t.ok(page.messages.some((m: { deleted_at: string | null, body: string | null }) => m.deleted_at !== null && m.body === null))
})
