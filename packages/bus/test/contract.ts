// What every bus adapter promises, run against each adapter with a real broker. Each test opens
// two or three buses, as separate api processes would have, on topics no other test uses.
import type { Test } from 'tap'
import type { Bus, BusLog } from '../src/index.ts'
import { BusClosedError, conversationTopic } from '../src/index.ts'
import { createReceiver, randomName, receive } from './fixtures.ts'

export interface BusFixture {
  /** A new bus, as another process would have; closed when the test ends. */
  open (t: Test, options?: { log?: BusLog }): Bus
  /** How many of these buses the broker currently delivers the topic to. */
  subscribers (topic: string, buses: Bus[]): Promise<number>
}

/** Tells when earlier frames have had their chance: a later frame from the same publisher arrived. */
async function settle (from: Bus, to: Bus): Promise<void> {
  const topic = randomName('settle')
  const receiver = await receive(to, topic)
  await from.publish(topic, 'settled')
  await receiver.received(1)
  await to.unsubscribe(topic, receiver.listener)
}

export function testBusContract (t: Test, fixture: BusFixture): void {
  /** Three buses, as three api processes would have. */
  const threeProcesses = (t: Test): [Bus, Bus, Bus] => [fixture.open(t), fixture.open(t), fixture.open(t)]

  t.test('a frame published in one process reaches the listeners of every subscribed process, the publisher included', async (t) => {
    const [a, b, c] = threeProcesses(t)
    const topic = conversationTopic(crypto.randomUUID())
    const inA = await receive(a, topic)
    const inB = await receive(b, topic)
    const alsoInB = await receive(b, topic)
    const frame = JSON.stringify({ type: 'message', conversation_id: topic, message: { body: 'hello' } })
    await a.publish(topic, frame)
    await c.publish(topic, 'from c')
    t.same(await inA.received(2), [frame, 'from c'])
    t.same(await inB.received(2), [frame, 'from c'])
    t.same(await alsoInB.received(2), [frame, 'from c'])
    await settle(c, b)
    t.equal(inB.frames.length, 2, 'nothing arrives twice')
  })

  t.test('a burst of 1000 frames arrives exactly once each and in publish order', async (t) => {
    const [a, b, c] = threeProcesses(t)
    const topic = randomName('burst')
    const inB = await receive(b, topic)
    const inA = await receive(a, topic)
    const fromA = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ from: 'a', seq: i + 1, body: `message ${i + 1}` }))
    const fromC = Array.from({ length: 500 }, (_, i) => JSON.stringify({ from: 'c', seq: i + 1 }))
    // Nobody awaits between publishes, and two processes publish at once.
    await Promise.all([...fromA.map((frame) => a.publish(topic, frame)), ...fromC.map((frame) => c.publish(topic, frame))])
    await a.publish(topic, 'end a')
    await c.publish(topic, 'end c')
    for (const [name, receiver] of [['b', inB], ['a', inA]] as const) {
      const frames = await receiver.received(1502)
      await settle(c, name === 'b' ? b : a)
      t.equal(frames.length, 1502, `process ${name} got every frame once`)
      t.same(frames.filter((frame) => frame.includes('"from":"a"') || frame === 'end a'), [...fromA, 'end a'], `process ${name} got a's frames in order`)
      t.same(frames.filter((frame) => frame.includes('"from":"c"') || frame === 'end c'), [...fromC, 'end c'], `process ${name} got c's frames in order`)
    }
  })

  t.test('a frame published twice is delivered twice', async (t) => {
    const a = fixture.open(t)
    const b = fixture.open(t)
    const topic = randomName('twice')
    const inB = await receive(b, topic)
    await Promise.all(Array.from({ length: 10 }, () => a.publish(topic, '{"type":"typing"}')))
    t.same(await inB.received(10), Array.from({ length: 10 }, () => '{"type":"typing"}'))
  })

  t.test('a process is subscribed at the broker only to topics it has listeners for', async (t) => {
    const a = fixture.open(t)
    const b = fixture.open(t)
    const joined = randomName('joined')
    const other = randomName('other')
    const inB = await receive(b, joined)
    t.equal(await fixture.subscribers(joined, [a, b]), 1, 'only b, which has a listener, is subscribed')
    t.equal(await fixture.subscribers(other, [a, b]), 0, 'nobody is subscribed to a topic without listeners')
    await a.publish(other, 'not for b')
    await a.publish(joined, 'for b')
    t.same(await inB.received(1), ['for b'])
    await settle(a, b)
    t.same(inB.frames, ['for b'])
  })

  t.test('listeners are counted: the first subscribes the process, the last unsubscribes it', async (t) => {
    const a = fixture.open(t)
    const b = fixture.open(t)
    const topic = randomName('counted')
    const first = createReceiver()
    const second = createReceiver()
    const unsubscribeFirst = await b.subscribe(topic, first.listener)
    await b.subscribe(topic, second.listener)
    t.equal(await fixture.subscribers(topic, [a, b]), 1, 'two listeners, one broker subscription')
    await a.publish(topic, 'one')
    await second.received(1)
    t.same(first.frames, ['one'])

    await unsubscribeFirst()
    t.equal(await fixture.subscribers(topic, [a, b]), 1, 'still subscribed for the second listener')
    await a.publish(topic, 'two')
    t.same(await second.received(2), ['one', 'two'])
    t.same(first.frames, ['one'], 'an unsubscribed listener hears nothing more')

    await b.unsubscribe(topic, second.listener)
    t.equal(await fixture.subscribers(topic, [a, b]), 0, 'the last listener gone, the process unsubscribes')
    await a.publish(topic, 'three')
    await settle(a, b)
    t.same(second.frames, ['one', 'two'])

    const again = await receive(b, topic)
    t.equal(await fixture.subscribers(topic, [a, b]), 1, 'a new listener subscribes again')
    await a.publish(topic, 'four')
    t.same(await again.received(1), ['four'])
  })

  t.test('subscribes and unsubscribes racing on one topic leave the broker matching the listeners', async (t) => {
    const a = fixture.open(t)
    const b = fixture.open(t)
    const topic = randomName('race')
    const receivers = Array.from({ length: 40 }, () => createReceiver())
    // Every receiver but the last comes and goes without anyone awaiting in between.
    const calls: Array<Promise<unknown>> = []
    for (const [index, receiver] of receivers.entries()) {
      calls.push(b.subscribe(topic, receiver.listener))
      if (index < receivers.length - 1) calls.push(b.unsubscribe(topic, receiver.listener))
    }
    await Promise.all(calls)
    t.equal(await fixture.subscribers(topic, [a, b]), 1)
    await a.publish(topic, 'after the race')
    const last = receivers.at(-1)!
    t.same(await last.received(1), ['after the race'])
    await settle(a, b)
    t.ok(receivers.slice(0, -1).every((receiver) => !receiver.frames.includes('after the race')), 'listeners that left hear nothing')

    // Leave and come back at once: the process must end up subscribed.
    const back = createReceiver()
    await Promise.all([b.unsubscribe(topic, last.listener), b.subscribe(topic, back.listener)])
    t.equal(await fixture.subscribers(topic, [a, b]), 1)
    await a.publish(topic, 'still here')
    t.same(await back.received(1), ['still here'])
  })

  t.test('a listener added twice hears each frame twice until it is removed once', async (t) => {
    const a = fixture.open(t)
    const topic = randomName('double')
    const receiver = createReceiver()
    await a.subscribe(topic, receiver.listener)
    const unsubscribeSecond = await a.subscribe(topic, receiver.listener)
    await a.publish(topic, 'x')
    t.same(await receiver.received(2), ['x', 'x'])
    await unsubscribeSecond()
    await a.publish(topic, 'y')
    await settle(a, a)
    t.same(receiver.frames, ['x', 'x', 'y'])
  })

  t.test('a 100 KB frame with multi-byte characters arrives intact and in order with small ones', async (t) => {
    const [a, b, c] = threeProcesses(t)
    const topic = randomName('large')
    const inB = await receive(b, topic)
    // ASCII, 2-, 3- and 4-byte UTF-8 characters, so part boundaries fall inside characters.
    const body = 'abc é 中文 🎉 '.repeat(6000)
    const large = (from: string) => JSON.stringify({ type: 'message', from, message: { body } })
    t.ok(Buffer.byteLength(large('a')) > 100_000)
    await Promise.all([
      a.publish(topic, 'small 1'), a.publish(topic, large('a')), a.publish(topic, 'small 2'),
      c.publish(topic, large('c')), c.publish(topic, large('c2'))
    ])
    const frames = await inB.received(5)
    t.same(frames.filter((frame) => frame.startsWith('small') || frame.includes('"from":"a"')), ['small 1', large('a'), 'small 2'])
    t.same(frames.filter((frame) => frame.includes('"from":"c')), [large('c'), large('c2')])
  })

  t.test('a listener that throws is logged and the others still get the frame', async (t) => {
    const logged: string[] = []
    const a = fixture.open(t, { log: (level, message) => logged.push(`${level}: ${message}`) })
    const topic = randomName('throws')
    await a.subscribe(topic, () => { throw new Error('listener bug') })
    const receiver = await receive(a, topic)
    await a.publish(topic, 'x')
    t.same(await receiver.received(1), ['x'])
    t.match(logged, [/^error: .*threw/])
  })

  t.test('a closed bus rejects publishes and subscribes and stops delivering', async (t) => {
    const a = fixture.open(t)
    const b = fixture.open(t)
    const topic = randomName('closed')
    const receiver = await receive(b, topic)
    await b.close()
    await b.close()
    await t.rejects(b.publish(topic, 'x'), BusClosedError)
    await t.rejects(b.subscribe(topic, () => {}), BusClosedError)
    await b.unsubscribe(topic, receiver.listener)
    t.equal(await fixture.subscribers(topic, [a, b]), 0)
    await a.publish(topic, 'after close')
    await settle(a, a)
    t.same(receiver.frames, [])
  })
}
