// The Redis pub/sub bus against a real Redis: REDIS_URL's when set, else a private redis-server
// of this file's own. The shared contract, then what is particular to Redis.
import t from 'tap'
import { armLeakCheck, testMissingProgram } from '@chatty/db/testing'
import { Redis } from 'ioredis'
import { createRedisBus, type Bus, type RedisBusOptions } from '../src/index.ts'
import { testBusContract } from './contract.ts'
import { randomName, receive, redisServerBinary, startRedisServer, type Receiver } from './fixtures.ts'

async function redisUrl (): Promise<string | undefined> {
  if (process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '') return process.env.REDIS_URL
  const binary = redisServerBinary()
  if (binary === undefined) return undefined
  return (await startRedisServer(t, binary)).url
}

const url = await redisUrl()
if (url === undefined) {
  testMissingProgram(t, 'the Redis bus (REDIS_URL unset)', 'redis-server')
} else {
  // Pub/sub ignores the database number, so a namespace per file keeps a shared Redis apart.
  const namespace = randomName('test')
  const probe = new Redis(url)
  t.teardown(() => probe.quit())

  const open = (t: { teardown (fn: () => unknown): void }, options: Partial<RedisBusOptions> = {}): Bus => {
    const bus = createRedisBus({ url, namespace, ...options })
    t.teardown(() => bus.close())
    return bus
  }

  testBusContract(t, {
    open,
    // What the server says: subscribers of the topic's channel (topics are unique per test).
    async subscribers (topic) {
      const [, count] = await probe.pubsub('NUMSUB', `${namespace}:${topic}`) as [string, number]
      return count
    }
  })

  t.test('subscribes arriving while a new bus is still connecting all take effect', async (t) => {
    // Joins come in one after another as sockets connect: some reach the bus while its
    // subscriber connection is mid-handshake, which must not break the connection.
    for (let round = 0; round < 5; round++) {
      const bus = open(t)
      const receivers: Array<{ topic: string, receiver: Receiver }> = []
      const subscribing: Array<Promise<unknown>> = []
      for (let i = 0; i < 40; i++) {
        const topic = randomName(`connecting-${i}`)
        subscribing.push(receive(bus, topic).then((receiver) => receivers.push({ topic, receiver })))
        await new Promise((resolve) => setImmediate(resolve))
      }
      await Promise.all(subscribing)
      for (const { topic, receiver } of receivers) {
        await bus.publish(topic, topic)
        t.same(await receiver.received(1), [topic])
      }
    }
  })

  t.test('buses of different namespaces do not hear each other', async (t) => {
    const ours = open(t)
    const theirs = open(t, { namespace: randomName('other') })
    const topic = randomName('shared-name')
    const inTheirs = await receive(theirs, topic)
    const inOurs = await receive(ours, topic)
    await ours.publish(topic, 'ours')
    await theirs.publish(topic, 'theirs')
    t.same(await inOurs.received(1), ['ours'])
    t.same(await inTheirs.received(1), ['theirs'])
  })
}

// Last, once every test is registered: arming it earlier lets tap end the file while idle.
armLeakCheck(t)
