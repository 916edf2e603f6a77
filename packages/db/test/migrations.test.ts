import t, { type Test } from 'tap'
import { createDb, migrateDown, migrateUp, migrationVersion, forceVersion, loadMigrations, advisoryLockId } from '../src/index.ts'
import { createDatabaseIfMissing } from '../src/embedded.ts'
import { queryRows as query, testDatabase } from '../src/testing.ts'

async function emptyDatabase (t: Test): Promise<string> {
  const { url } = await testDatabase(t)
  // The template is already migrated: take it back to an empty database.
  await migrateDown(url, 1000)
  return url
}

t.test('a fresh database migrates to the newest version and records it as golang-migrate does', async (t) => {
  const url = await emptyDatabase(t)
  t.same(await migrationVersion(url), { version: null, dirty: false })
  const migrations = await loadMigrations()
  const applied = await migrateUp(url)
  t.same(applied, migrations.map((m) => m.version))
  t.same(await query(url, 'SELECT version::int, dirty FROM schema_migrations'), [{ version: migrations.at(-1)!.version, dirty: false }])
  t.same(await migrateUp(url), [], 'a second run applies nothing')
})

t.test('the search index has no pending list: words go into it as each message is stored', async (t) => {
  const { url } = await testDatabase(t)
  const [index] = await query(url, "SELECT reloptions FROM pg_class WHERE oid = 'chat.message_search_idx'::regclass")
  t.same(index.reloptions, ['fastupdate=off'])
})

t.test('every migration has a working down: all the way down and up again', async (t) => {
  const url = await emptyDatabase(t)
  await migrateUp(url)
  const migrations = await loadMigrations()
  const reverted = await migrateDown(url, migrations.length)
  t.same(reverted, migrations.map((m) => m.version).reverse())
  t.same(await query(url, "SELECT nspname FROM pg_namespace WHERE nspname = 'chat'"), [], 'the chat schema is gone')
  t.same(await migrationVersion(url), { version: null, dirty: false })
  t.same(await migrateUp(url), migrations.map((m) => m.version))
})

t.test('down N reverts exactly N steps', async (t) => {
  const url = await emptyDatabase(t)
  await migrateUp(url)
  const migrations = await loadMigrations()
  await migrateDown(url, 2)
  t.equal((await migrationVersion(url)).version, migrations.at(-3)!.version)
})

t.test('a go-chatty database at version 2 upgrades in place, rows kept and seq back-filled in created_at order', async (t) => {
  const url = await emptyDatabase(t)
  // go-chatty's state: its schema at version 2 (our 000001 and 000002 reproduce it), with rows.
  await migrateUp(url)
  await migrateDown(url, (await loadMigrations()).length - 2)
  t.equal((await migrationVersion(url)).version, 2)
  const conv = 'a0000000-0000-4000-8000-000000000001'
  const other = 'a0000000-0000-4000-8000-000000000002'
  const alice = 'b0000000-0000-4000-8000-000000000001'
  const bob = 'b0000000-0000-4000-8000-000000000002'
  await query(url, `INSERT INTO chat.conversation (id, created_at, tenant_id) VALUES ($1, '2024-01-01 10:00:00', NULL), ($2, '2024-01-02 10:00:00', $3)`, [conv, other, alice])
  await query(url, 'INSERT INTO chat.participant (conversation_id, user_id) VALUES ($1, $2), ($1, $3), ($4, $2)', [conv, alice, bob, other])
  // Inserted out of order: seq must follow created_at, not insertion order.
  const rows = [
    ['c0000000-0000-4000-8000-000000000003', conv, bob, '2024-01-01 10:03:00', 'third', 'k1'],
    ['c0000000-0000-4000-8000-000000000001', conv, alice, '2024-01-01 10:01:00', 'first', 'k1'],
    ['c0000000-0000-4000-8000-000000000002', conv, bob, '2024-01-01 10:02:00', 'second', 'k1'],
    ['c0000000-0000-4000-8000-000000000004', other, alice, '2024-01-02 10:01:00', 'only', null],
    // A repeated dedupe key from before the unique index existed.
    ['c0000000-0000-4000-8000-000000000005', conv, bob, '2024-01-01 10:04:00', 'fourth', 'k1']
  ]
  for (const row of rows) {
    await query(url, 'INSERT INTO chat.message (id, conversation_id, sender_id, created_at, body, dedupe_key) VALUES ($1, $2, $3, $4, $5, $6)', row)
  }
  await query(url, "INSERT INTO chat.receipt (message_id, user_id, status, at) VALUES ($1, $2, 1, '2024-01-01 11:00:00')", [rows[0]![0], alice])
  await query(url, "INSERT INTO chat.block (blocker_id, blocked_id, at) VALUES ($1, $2, '2024-01-01 11:00:00')", [alice, bob])

  const applied = await migrateUp(url)
  t.ok(applied.length > 0 && applied[0] === 3, 'continues from 000003')

  const messages = await query(url, 'SELECT id, seq::int, body, dedupe_key FROM chat.message ORDER BY conversation_id, seq')
  t.same(messages.map((m) => [m.body, m.seq]), [['first', 1], ['second', 2], ['third', 3], ['fourth', 4], ['only', 1]])
  t.same(messages.map((m) => m.dedupe_key), ['k1', 'k1', null, null, null], 'each repeated key is kept by its earliest message only')
  t.same(await query(url, 'SELECT id::text, last_seq::int FROM chat.conversation ORDER BY id'), [{ id: conv, last_seq: 4 }, { id: other, last_seq: 1 }])
  t.equal((await query(url, 'SELECT count(*)::int AS n FROM chat.participant'))[0].n, 3)
  t.equal((await query(url, 'SELECT count(*)::int AS n FROM chat.receipt'))[0].n, 1)
  t.equal((await query(url, 'SELECT count(*)::int AS n FROM chat.block'))[0].n, 1)

  // The upgraded database behaves like a new one: defaults, seq uniqueness, dedupe uniqueness.
  const { db, destroy } = createDb(url)
  t.teardown(destroy)
  const created = await db.insertInto('chat.conversation').defaultValues().returningAll().executeTakeFirstOrThrow()
  t.ok(created.created_at instanceof Date && Math.abs(created.created_at.getTime() - Date.now()) < 60_000, 'created_at defaults to now, read as UTC')
  await t.rejects(query(url, 'INSERT INTO chat.message (conversation_id, sender_id, seq, body) VALUES ($1, $2, 1, $3)', [conv, alice, 'dup seq']), { code: '23505' })
  await t.rejects(query(url, "INSERT INTO chat.message (conversation_id, sender_id, seq, body, dedupe_key) VALUES ($1, $2, 99, 'x', 'k1')", [conv, alice]), { code: '23505' })
})

t.test('two migrators at once: one waits for the other and the schema is applied once', async (t) => {
  const url = await emptyDatabase(t)
  const [a, b] = await Promise.all([migrateUp(url), migrateUp(url)])
  const migrations = await loadMigrations()
  t.same([...a, ...b].sort((x, y) => x - y), migrations.map((m) => m.version))
})

t.test('a dirty database is refused until its version is forced', async (t) => {
  const url = await emptyDatabase(t)
  await migrateUp(url, {})
  await query(url, 'UPDATE schema_migrations SET dirty = true')
  await t.rejects(migrateUp(url), /dirty at version/)
  const latest = (await loadMigrations()).at(-1)!.version
  await forceVersion(url, latest)
  t.same(await migrationVersion(url), { version: latest, dirty: false })
})

t.test('the lock id is golang-migrate\'s for the same database', async (t) => {
  // crc32("public\0schema_migrations\0chatty") * 1486364155, as uint32.
  t.equal(advisoryLockId('chatty'), String(Math.imul(0x0 + Number.parseInt(referenceCrc32('public\x00schema_migrations\x00chatty'), 10), 1486364155) >>> 0))
  t.not(advisoryLockId('chatty'), advisoryLockId('other'))
})

function referenceCrc32 (text: string): string {
  let crc = ~0
  for (const byte of Buffer.from(text)) {
    crc ^= byte
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xEDB88320 & -(crc & 1))
  }
  return String((~crc) >>> 0)
}

t.test('createDatabaseIfMissing is idempotent', async (t) => {
  const { url } = await testDatabase(t)
  const server = new URL(url); server.pathname = '/postgres'
  const name = `chatty_x_${process.pid}`
  await createDatabaseIfMissing(server.toString(), name)
  await createDatabaseIfMissing(server.toString(), name)
  const rows = await query(server.toString(), 'SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [name])
  t.equal(rows[0].n, 1)
  await query(server.toString(), `DROP DATABASE ${name}`)
})
