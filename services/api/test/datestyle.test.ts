// A database (or role) whose default DateStyle is not ISO, and whose TimeZone is not UTC, must
// not change a single timestamp on the wire: chatty reads timestamps as Postgres' text, which
// follows the session's DateStyle, so every connection it opens pins the ISO style itself.
import t from 'tap'
import { queryRows, testDatabase, users, waitFor } from '@chatty/db/testing'
import { startJobs } from './helper.ts'
import { listen, openSocket } from './ws-helper.ts'

const { alice, bob } = users

/** How the API writes a timestamp: Date.prototype.toISOString's shape. */
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

/** A `timestamp` column as the API should write it, by a route that ignores DateStyle. */
const AS_ISO = `to_char(%s, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
const asIso = (column: string) => AS_ISO.replace('%s', column)

for (const style of ['SQL, DMY', 'German, DMY', 'Postgres, MDY']) {
  t.test(`a database set to DateStyle '${style}' answers the same ISO timestamps`, async (t) => {
    const database = await testDatabase(t)
    // Kathmandu is UTC+05:45: a timestamp read or written through the session's time zone by
    // mistake would be off by hours and minutes, not a whole number of hours.
    await queryRows(database.url, `ALTER DATABASE ${database.name} SET DateStyle = '${style}'`)
    await queryRows(database.url, `ALTER DATABASE ${database.name} SET TimeZone = 'Asia/Kathmandu'`)
    const [session] = await queryRows(database.url, 'SELECT current_setting($1) AS datestyle, now()::text AS now', ['DateStyle'])
    t.equal(session.datestyle, style, 'a plain connection gets the database\'s style')
    t.notMatch(session.now, /^\d{4}-\d\d-\d\d /, 'and its timestamps are not ISO text')

    const before = Date.now()
    const { app, url } = await listen(t, {}, database.url)
    const created = await app.inject({ method: 'POST', url: '/api/v1/chat', payload: { participant_ids: [alice, bob] } })
    t.equal(created.statusCode, 201, 'the conversation is created')
    const chat = created.json()

    const socket = await openSocket(t, url, alice)
    socket.send({ type: 'join', conversation_id: chat.id })
    t.equal((await socket.next()).type, 'joined', 'alice joins')
    socket.send({ type: 'message', conversation_id: chat.id, body: 'hello', ref: 'm-1' })
    const sent = await socket.until((frame) => frame.type === 'sent' || frame.type === 'error')
    t.equal(sent.type, 'sent', 'alice\'s message is stored')
    const message = sent.message
    // The acknowledgement and the broadcast arrive in either order.
    const broadcast = await waitFor(() => socket.frames.find((frame) => frame.type === 'message' && frame.message.id === message.id), 'the broadcast')

    // A REST send goes through the job queue (its own connections) and the jobs service.
    await startJobs(t, database.url)
    const queued = await app.inject({ method: 'POST', url: `/api/v1/chat/${chat.id}`, payload: { sender_id: bob, body: 'queued', msg_type: 0 } })
    t.equal(queued.statusCode, 202, 'bob\'s send is queued')
    const delivered = (await waitFor(() => socket.frames.find((frame) => frame.type === 'message' && frame.message.sender_id === bob), 'bob\'s message')).message

    const edit = await app.inject({ method: 'PATCH', url: `/api/v1/chat/${chat.id}/messages/${message.id}`, payload: { sender_id: alice, body: 'hello again' } })
    t.equal(edit.statusCode, 200, 'alice edits her message')
    const history = await app.inject({ url: `/api/v1/chat/${chat.id}/messages` })
    t.equal(history.statusCode, 200, 'the history page is served')
    const [listedDelivered, listed] = history.json().messages
    const after = Date.now()

    const [stored] = await queryRows(database.url, `SELECT ${asIso('m.created_at')} AS created_at, ${asIso('m.edited_at')} AS edited_at,
      ${asIso('c.created_at')} AS chat_created_at FROM chat.message m JOIN chat.conversation c ON c.id = m.conversation_id WHERE m.id = $1`, [message.id])
    const [storedDelivered] = await queryRows(database.url, `SELECT ${asIso('created_at')} AS created_at FROM chat.message WHERE id = $1`, [delivered.id])
    t.match(stored.created_at, ISO)
    t.equal(chat.created_at, stored.chat_created_at, 'the new conversation\'s created_at')
    t.equal(message.created_at, stored.created_at, 'the send acknowledgement\'s created_at')
    t.equal(broadcast.message.created_at, stored.created_at, 'the broadcast\'s created_at')
    t.same([listed.id, listedDelivered.id], [message.id, delivered.id], 'the history page lists both, newest first')
    t.equal(listed.created_at, stored.created_at, 'the history page\'s created_at')
    t.equal(listed.edited_at, stored.edited_at, 'the history page\'s edited_at')
    t.equal(delivered.created_at, storedDelivered.created_at, 'the queued message\'s broadcast created_at')
    t.equal(listedDelivered.created_at, storedDelivered.created_at, 'the queued message\'s created_at on the history page')
    for (const at of [stored.chat_created_at, stored.created_at, stored.edited_at, storedDelivered.created_at]) {
      // The database's clock may run a little apart from this one, never by a time zone's offset.
      t.ok(Date.parse(at) > before - 60_000 && Date.parse(at) < after + 60_000, `${at} is now in UTC`)
    }
  })
}
