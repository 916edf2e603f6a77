// Postgres going away and coming back: a private embedded Postgres (temporary data directory,
// free port) is stopped and started again while two buses stay open. Never the shared server:
// other test files use it meanwhile.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedPostgres, type EmbeddedServer } from '@chatty/db'
import { armLeakCheck, sleep } from '@chatty/db/testing'
import { createPostgresBus } from '../src/index.ts'
import { assertDeliveryResumes, freePort, randomName, receive } from './fixtures.ts'

t.test('after Postgres restarts, delivery resumes on the same buses and subscribes made meanwhile take effect', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'chatty-bus-pg-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const port = await freePort()
  const start = () => startEmbeddedPostgres({ dataDir, port, database: 'bus' })
  let server: EmbeddedServer | undefined = await start()
  t.teardown(() => server?.stop())
  const { url } = server

  const logged: string[] = []
  const a = createPostgresBus({ connectionString: url })
  const b = createPostgresBus({ connectionString: url, log: (level, message) => logged.push(`${level}: ${message}`) })
  t.teardown(() => a.close())
  t.teardown(() => b.close())
  const topic = randomName('restart')
  const before = await receive(b, topic)
  await a.publish(topic, 'before')
  t.same(await before.received(1), ['before'])

  await server.stop()
  server = undefined
  await t.rejects(a.publish(topic, 'while down'), 'a publish while Postgres is down fails instead of queueing')
  // Made while Postgres is down: the subscribe resolves only after the reconnect.
  const during = randomName('during')
  const joining = receive(b, during)
  await sleep(300)
  server = await start()

  const frames = await assertDeliveryResumes(t, a, { topic, before, during, joining }, 'joined while down')
  t.notOk(frames.includes('while down'))
  t.same((await b.listeningTopics()).sort(), [during, topic].sort())
  t.ok(logged.some((line) => line.startsWith('warn: bus: lost')), 'the outage was logged')
  t.ok(logged.some((line) => line.startsWith('info: bus: listening on Postgres again')), 'the recovery was logged')
})

// Last, once every test is registered: arming it earlier lets tap end the file while idle.
armLeakCheck(t)
