// Redis going away and coming back: a private redis-server is killed and started again on the
// same port while two buses stay open. (Never the shared server: other files use it meanwhile.)
import t from 'tap'
import { armLeakCheck, sleep, testMissingProgram } from '@chatty/db/testing'
import { createRedisBus } from '../src/index.ts'
import { assertDeliveryResumes, randomName, receive, redisServerBinary, startRedisServer } from './fixtures.ts'

const binary = redisServerBinary()
const name = 'after Redis restarts, delivery resumes on the same buses and subscribes made meanwhile take effect'
if (binary === undefined) {
  testMissingProgram(t, name, 'redis-server')
} else {
  t.test(name, async (t) => {
    const server = await startRedisServer(t, binary)
    const logged: string[] = []
    const a = createRedisBus({ url: server.url })
    const b = createRedisBus({ url: server.url, log: (level, message) => logged.push(`${level}: ${message}`) })
    t.teardown(() => a.close())
    t.teardown(() => b.close())
    const topic = randomName('restart')
    const before = await receive(b, topic)
    const leaving = await receive(b, randomName('leaving'))
    await a.publish(topic, 'before')
    t.same(await before.received(1), ['before'])

    await server.kill()
    await t.rejects(a.publish(topic, 'while down'), 'a publish while Redis is down fails instead of queueing')
    // Made while Redis is down: the subscribe resolves only after the reconnect.
    const during = randomName('during')
    const joining = receive(b, during)
    await b.unsubscribe(randomName('never'), () => {})
    await server.restart()

    const frames = await assertDeliveryResumes(t, a, { topic, before, during, joining }, 'joined while down')
    t.notOk(frames.includes('while down'))
    t.same(leaving.frames, [])
    t.ok(logged.some((line) => line.startsWith('warn:')), 'the outage was logged')
    t.ok(logged.some((line) => line.startsWith('info:')), 'the recovery was logged')
  })

  t.test('a bus closed while Redis is down rejects its waiting subscribe and exits cleanly', async (t) => {
    const server = await startRedisServer(t, binary)
    const bus = createRedisBus({ url: server.url })
    await receive(bus, randomName('up'))
    await server.kill()
    const waiting = bus.subscribe(randomName('down'), () => {})
    await sleep(100)
    await bus.close()
    await t.rejects(waiting)
  })
}

// Last, once every test is registered: arming it earlier lets tap end the file while idle.
armLeakCheck(t)
