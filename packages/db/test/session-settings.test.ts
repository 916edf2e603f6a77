import t from 'tap'
import pg from 'pg'
import { createDb, pinSessionSettings } from '../src/index.ts'
import { queryRows, testDatabase } from '../src/testing.ts'

const PINNED = 'options=-c+DateStyle=ISO,MDY'

/** What pg makes of a connection string: the parameters it would connect with. */
function connectionParameters (connectionString: string): { options?: string, password?: string, database?: string, host?: string } {
  return (new pg.Client({ connectionString }) as unknown as { connectionParameters: { options?: string, password?: string, database?: string, host?: string } }).connectionParameters
}

t.test('a connection string gains the pinned DateStyle and keeps everything else as written', async (t) => {
  const cases: Array<[string, string, NodeJS.ProcessEnv?]> = [
    ['postgres://chatty:secret@db.internal:5432/chatty', `postgres://chatty:secret@db.internal:5432/chatty?${PINNED}`],
    ['postgres://db/chatty?sslmode=disable&application_name=a%20b', `postgres://db/chatty?sslmode=disable&application_name=a%20b&${PINNED}`],
    ['postgres://db/chatty?options=-c%20statement_timeout%3D5s&x=1', 'postgres://db/chatty?x=1&options=-c%20statement_timeout%3D5s+-c+DateStyle=ISO,MDY'],
    ['postgres://db/chatty?options=&x=1', `postgres://db/chatty?x=1&${PINNED}`],
    ['postgres://db/chatty', 'postgres://db/chatty?options=-c+statement_timeout=5s+-c+DateStyle=ISO,MDY', { PGOPTIONS: '-c statement_timeout=5s' }],
    ['postgres://db/chatty?options=-c+lock_timeout=1s', 'postgres://db/chatty?options=-c+lock_timeout=1s+-c+DateStyle=ISO,MDY', { PGOPTIONS: '-c statement_timeout=5s' }],
    ['socket:/var/run/postgresql?db=chatty', `socket:/var/run/postgresql?db=chatty&${PINNED}`],
    ['postgres://db/chatty#ignored', `postgres://db/chatty?${PINNED}#ignored`],
    ['/var/run/postgresql chatty', '/var/run/postgresql chatty']
  ]
  for (const [given, pinned, env] of cases) t.equal(pinSessionSettings(given, env ?? {}), pinned, given)
})

t.test('pg reads the pinned options as one startup parameter, ours last', async (t) => {
  t.equal(connectionParameters(pinSessionSettings('postgres://db/chatty', {})).options, '-c DateStyle=ISO,MDY')
  t.equal(connectionParameters(pinSessionSettings('postgres://db/chatty?options=-c%20DateStyle%3DGerman', {})).options, '-c DateStyle=German -c DateStyle=ISO,MDY')
  // A raw space makes pg re-encode the whole string first; the pinned value survives that.
  const spaced = connectionParameters(pinSessionSettings('postgres://chatty:two words@db/chatty', {}))
  t.same({ options: spaced.options, password: spaced.password, database: spaced.database }, { options: '-c DateStyle=ISO,MDY', password: 'two words', database: 'chatty' })
  const socket = connectionParameters(pinSessionSettings('socket:/var/run/postgresql?db=chatty', {}))
  t.same({ options: socket.options, host: socket.host, database: socket.database }, { options: '-c DateStyle=ISO,MDY', host: '/var/run/postgresql', database: 'chatty' })
})

t.test('a database set to another DateStyle is read in ISO, and the options a URL gives still apply', async (t) => {
  const database = await testDatabase(t)
  await queryRows(database.url, `ALTER DATABASE ${database.name} SET DateStyle = 'German, DMY'`)
  t.same(await queryRows(database.url, "SELECT current_setting('DateStyle') AS style"), [{ style: 'German, DMY' }], 'an unpinned connection gets German')

  const url = new URL(database.url)
  url.searchParams.set('options', '-c DateStyle=SQL,DMY -c statement_timeout=4321')
  const { pool, destroy } = createDb(url.toString(), { max: 1 })
  t.teardown(destroy)
  const { rows } = await pool.query("SELECT current_setting('DateStyle') AS style, current_setting('statement_timeout') AS timeout, timestamp '2026-01-02 03:04:05.678' AS at, (timestamp '2026-01-02 03:04:05.678')::text AS text")
  t.same(rows, [{ style: 'ISO, MDY', timeout: '4321ms', at: new Date('2026-01-02T03:04:05.678Z'), text: '2026-01-02 03:04:05.678' }])
})
