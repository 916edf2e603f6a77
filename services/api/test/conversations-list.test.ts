// GET /api/v1/users/:user_id/conversations: a user's conversations, newest activity first, with
// last message, unread count, mute and members, keyset-paginated without skipping or repeating.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { sendMessage } from '@chatty/chat'
import { createRestClient } from '@chatty/client'
import { users, waitFor } from '@chatty/db/testing'
import { buildTestApp, query } from './helper.ts'
import { chatClient, createChat, listen, seqs } from './ws-helper.ts'

const { alice, bob, eve } = users

async function send (app: FastifyInstance, chat: string, sender: string, body: string) {
  return (await sendMessage(app.chat, { conversationId: chat, senderId: sender, body })).message
}

/** Every page of a user's list, following next_cursor. */
async function walk (app: FastifyInstance, userId: string, limit: number): Promise<{ ids: string[], pages: number }> {
  const ids: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const search: URLSearchParams = new URLSearchParams({ limit: String(limit), ...(cursor === null ? {} : { cursor }) })
    const res: { statusCode: number, body: string, json (): any } = await app.inject(`/api/v1/users/${userId}/conversations?${search}`)
    if (res.statusCode !== 200) throw new Error(res.body)
    const body: { conversations: Array<{ id: string }>, next_cursor: string | null } = res.json()
    ids.push(...body.conversations.map((conversation) => conversation.id))
    cursor = body.next_cursor
    pages++
  } while (cursor !== null)
  return { ids, pages }
}

t.test('a user\'s conversations come newest activity first, each with last message, unread count, mute and members', async (t) => {
  const { app, dbUrl } = await buildTestApp(t)
  const sql = await query(t, dbUrl)
  const quiet = await createChat(app, [alice, bob])
  const direct = await createChat(app, [alice, bob])
  const members = Array.from({ length: 25 }, (_, i) => `aaaaaaaa-0000-4000-8000-${String(i).padStart(12, '0')}`)
  const group = await createChat(app, [alice, ...members])
  const notMine = await createChat(app, [bob, eve])
  await send(app, group, members[0]!, 'group hello')
  const b1 = await send(app, direct, bob, 'one')
  await send(app, direct, bob, 'two')
  await send(app, direct, alice, 'mine')
  const b3 = await send(app, direct, bob, 'three')
  await send(app, notMine, bob, 'elsewhere')
  await app.inject({ method: 'POST', url: `/api/v1/chat/${direct}/read`, payload: { user_id: alice, message_id: b1.id } })
  const until = '2030-01-01T00:00:00.000Z'
  await app.inject({ method: 'PUT', url: `/api/v1/chat/${group}/mute`, payload: { user_id: alice, until } })

  const res = await app.inject(`/api/v1/users/${alice}/conversations`)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(body.conversations.map((c: { id: string }) => c.id), [direct, group, quiet], 'latest message first; a conversation without messages by its creation')
  t.equal(body.next_cursor, null)
  const [first, second, third] = body.conversations
  t.same(first, {
    id: direct,
    created_at: first.created_at,
    tenant_id: null,
    last_activity_at: b3.created_at,
    last_message: b3,
    last_seq: 4,
    last_read_seq: 1,
    unread_count: 2,
    unread_mention_count: 0,
    muted_until: null,
    participant_count: 2,
    participant_ids: [alice, bob].sort()
  }, 'her own message is not unread')
  t.equal(second.muted_until, until)
  t.equal(second.unread_count, 1)
  t.equal(second.participant_count, 26)
  t.same(second.participant_ids, [alice, ...members].sort().slice(0, 20), 'the first 20 member ids')
  t.same(third.last_message, null)
  t.equal(third.last_activity_at, third.created_at)
  t.equal(third.unread_count, 0)

  // A new message moves a conversation to the top.
  await send(app, quiet, bob, 'wake up')
  t.same((await app.inject(`/api/v1/users/${alice}/conversations?limit=1`)).json().conversations[0].id, quiet)
  t.same((await app.inject(`/api/v1/users/${eve}/conversations`)).json().conversations.map((c: { id: string }) => c.id), [notMine])
  t.same((await app.inject(`/api/v1/users/${'dddddddd-dddd-4ddd-8ddd-dddddddddddd'}/conversations`)).json(), { conversations: [], next_cursor: null })
  t.same((await sql('SELECT count(*)::int AS n FROM chat.conversation'))[0], { n: 4 })
})

t.test('pages follow next_cursor without skipping or repeating, even through equal and microsecond-apart activity', async (t) => {
  const { app, dbUrl } = await buildTestApp(t)
  const sql = await query(t, dbUrl)
  const ids: string[] = []
  for (let i = 0; i < 23; i++) ids.push(await createChat(app, [alice]))
  // Eight share one instant; the others are one microsecond apart (one JavaScript millisecond).
  await sql(`UPDATE chat.conversation SET created_at = '2026-01-01 00:00:00' WHERE id = ANY($1::uuid[])`, [ids.slice(0, 8)])
  for (let i = 8; i < 23; i++) await sql(`UPDATE chat.conversation SET created_at = '2026-01-02 00:00:00'::timestamp + $2 * interval '1 microsecond' WHERE id = $1`, [ids[i], i])
  const expected = [...ids.slice(8).reverse(), ...ids.slice(0, 8).sort().reverse()]
  for (const limit of [1, 2, 3, 7, 23, 100]) {
    const { ids: seen, pages } = await walk(app, alice, limit)
    t.same(seen, expected, `limit ${limit}`)
    t.equal(pages, Math.max(1, Math.ceil(23 / limit)), `limit ${limit}: no empty last page`)
  }
})

t.test('bad list requests are 400', async (t) => {
  const { app } = await buildTestApp(t)
  await createChat(app, [alice])
  const bad = [
    `/api/v1/users/${alice}/conversations?cursor=nope`,
    `/api/v1/users/${alice}/conversations?cursor=${Buffer.from('1.x').toString('base64url')}`,
    `/api/v1/users/${alice}/conversations?cursor=${Buffer.from(`99999999999999999999.${alice}`).toString('base64url')}`,
    `/api/v1/users/${alice}/conversations?limit=0`,
    `/api/v1/users/${alice}/conversations?limit=101`,
    `/api/v1/users/${alice}/conversations?cursor=`,
    '/api/v1/users/alice/conversations'
  ]
  for (const url of bad) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, 'bad_request', url)
  }
})

t.test('the client library lists conversations page by page', async (t) => {
  const { app, url } = await listen(t)
  const a = await createChat(app, [alice, bob])
  const b = await createChat(app, [alice])
  const rest = createRestClient({ baseUrl: url })
  const first = await rest.listConversations(alice, { limit: 1 })
  t.same(first.conversations.map((c) => c.id), [b])
  const second = await rest.listConversations(alice, { limit: 1, cursor: first.next_cursor! })
  t.same(second.conversations.map((c) => c.id), [a])
  t.equal(second.next_cursor, null)
})

t.test('unread counts stop at 1000', async (t) => {
  const { app, dbUrl } = await buildTestApp(t)
  const sql = await query(t, dbUrl)
  const chat = await createChat(app, [alice, bob])
  await sql(`INSERT INTO chat.message (conversation_id, sender_id, seq, body) SELECT $1, $2, s, 'm' || s FROM generate_series(1, 1005) s`, [chat, bob])
  await sql('UPDATE chat.conversation SET last_seq = 1005 WHERE id = $1', [chat])
  const unread = async () => (await app.inject(`/api/v1/users/${alice}/conversations`)).json().conversations[0].unread_count
  t.equal(await unread(), 1000)
  const [at10] = await sql('SELECT id FROM chat.message WHERE conversation_id = $1 AND seq = 10', [chat])
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/read`, payload: { user_id: alice, message_id: at10.id } })).json().unread_count, 995)
  t.equal(await unread(), 995)
  const [at4] = await sql('SELECT id FROM chat.message WHERE conversation_id = $1 AND seq = 4', [chat])
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/chat/${chat}/read`, payload: { user_id: bob, message_id: at4.id } })).json().unread_count, 0, 'all of them are bob\'s own')
})

t.test('the OpenAPI document describes the new routes and parameters', async (t) => {
  const { app } = await buildTestApp(t)
  const doc = (await app.inject('/docs/json')).json()
  t.ok(doc.paths['/api/v1/users/{user_id}/conversations']?.get, 'the conversation list')
  t.ok(doc.paths['/api/v1/chat/{chat_id}/read']?.post, 'mark read')
  const params = doc.paths['/api/v1/users/{user_id}/conversations'].get.parameters.map((p: { name: string }) => p.name)
  t.same(params.sort(), ['cursor', 'limit', 'user_id'])
  t.ok(doc.paths['/api/v1/chat/{chat_id}/messages'].get.parameters.some((p: { name: string }) => p.name === 'around_seq'), 'around_seq')
})

t.test('across two api processes: a websocket send on one shows in the other\'s list and history around it; a read on one clears the other\'s unread count', async (t) => {
  const one = await listen(t)
  const two = await listen(t, {}, one.dbUrl)
  const chat = await createChat(one.app, [alice, bob])
  const a = await chatClient(t, one.url, alice)
  const b = await chatClient(t, two.url, bob)
  await a.join(chat)
  await b.join(chat)
  const sent: Array<{ id: string, seq: number }> = []
  for (let i = 1; i <= 5; i++) sent.push(await b.send(chat, { body: `from two ${i}` }))
  await waitFor(() => a.received.length === 5, 'alice to receive the five messages on process one', 10_000)

  const listed = async (url: string) => {
    const res = await fetch(`${url}/api/v1/users/${alice}/conversations`)
    t.equal(res.status, 200)
    return (await res.json() as { conversations: any[] }).conversations.find((conversation) => conversation.id === chat)
  }
  t.match(await listed(one.url), { last_seq: 5, last_message: { id: sent[4]!.id, body: 'from two 5', sender_id: bob }, unread_count: 5 },
    'process one lists what was sent through process two')
  const around = await fetch(`${one.url}/api/v1/chat/${chat}/messages?around_seq=${sent[2]!.seq}&limit=3`)
  t.same(seqs((await around.json() as { messages: Array<{ seq: number }> }).messages), [4, 3, 2], 'process one pages around a message sent through process two')

  const read = await a.markRead(chat, sent[3]!.id)
  t.equal(read.unread_count, 1)
  t.match(await listed(two.url), { last_read_seq: 4, unread_count: 1 }, 'process two sees the read made through process one')
})
