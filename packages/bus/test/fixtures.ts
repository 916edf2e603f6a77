// Test fixtures: frame receivers, private Redis servers and a TCP proxy that can go silent. All
// of them are real processes and sockets; nothing here imitates a broker.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { Test } from 'tap'
import type { Bus, Listener } from '../src/index.ts'
import { freePort, startRedisServer as startPrivateRedis, type RedisServer } from '../src/testing.ts'

export function randomName (prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`
}

const WAIT_MS = 10_000

/** Collects frames and lets a test wait until a number of them arrived. */
export interface Receiver {
  frames: string[]
  listener: Listener
  /** Resolves once at least `count` frames arrived; fails after a while. */
  received (count: number): Promise<string[]>
}

export function createReceiver (): Receiver {
  const frames: string[] = []
  let waiting: Array<{ count: number, resolve: () => void }> = []
  return {
    frames,
    listener (frame) {
      frames.push(frame)
      waiting = waiting.filter((waiter) => {
        if (frames.length < waiter.count) return true
        waiter.resolve()
        return false
      })
    },
    async received (count) {
      if (frames.length >= count) return frames
      const arrived = new Promise<void>((resolve) => waiting.push({ count, resolve }))
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`waited ${WAIT_MS} ms for ${count} frames, got ${frames.length}`)), WAIT_MS)
      })
      try {
        await Promise.race([arrived, timeout])
      } finally {
        clearTimeout(timer)
      }
      return frames
    }
  }
}

/** Subscribes a fresh receiver. */
export async function receive (bus: Bus, topic: string): Promise<Receiver> {
  const receiver = createReceiver()
  await bus.subscribe(topic, receiver.listener)
  return receiver
}

/**
 * Publishes probes until one arrives: the way to tell that delivery works again after a broker
 * restart, when publishes may fail and frames may be lost.
 */
export async function probeUntilDelivered (publisher: Bus, topic: string, receiver: Receiver, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let probe = 0; ; probe++) {
    const frame = `probe-${probe}`
    await publisher.publish(topic, frame).catch(() => {})
    const arrived = Date.now() + 250
    while (Date.now() < arrived) {
      if (receiver.frames.includes(frame)) return
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    if (Date.now() > deadline) throw new Error(`no probe arrived on ${topic} within ${timeoutMs} ms`)
  }
}

/** What a bus had before its broker connection was lost, and a subscribe made while it was down. */
export interface Outage {
  /** The topic subscribed before the outage, and its receiver. */
  topic: string
  before: Receiver
  /** The topic subscribed while the connection was down, and that subscribe's receiver. */
  during: string
  joining: Promise<Receiver>
}

/**
 * After an outage: delivery on the old topic resumes on the same buses, the subscribe made
 * meanwhile takes effect, and a burst of 200 frames arrives whole and in order. Returns every
 * frame the old topic's receiver has had.
 */
export async function assertDeliveryResumes (t: Test, publisher: Bus, outage: Outage, duringFrame: string): Promise<string[]> {
  await probeUntilDelivered(publisher, outage.topic, outage.before)
  const inDuring = await outage.joining
  await publisher.publish(outage.during, duringFrame)
  t.same(await inDuring.received(1), [duringFrame])
  const burst = Array.from({ length: 200 }, (_, i) => `after ${i}`)
  const expected = outage.before.frames.length + burst.length
  await Promise.all(burst.map((frame) => publisher.publish(outage.topic, frame)))
  const frames = await outage.before.received(expected)
  t.same(frames.filter((frame) => frame.startsWith('after')), burst, 'the burst after the outage arrives whole and in order')
  return frames
}

export { freePort, redisServerBinary, type RedisServer } from '../src/testing.ts'

/** A private redis-server (see src/testing.ts), killed when the test ends. */
export async function startRedisServer (t: { teardown (fn: () => unknown): void }, binary: string): Promise<RedisServer> {
  const server = await startPrivateRedis(binary)
  t.teardown(server.kill)
  return server
}

export interface SilentProxy {
  port: number
  /**
   * Every connection open now stops forwarding in both directions without closing, as a network
   * partition looks from either end. New connections still go through.
   */
  silence (): void
  close (): Promise<void>
}

/** A TCP proxy to host:port, for showing that a connection which goes silent is noticed and replaced. */
export async function startSilentProxy (target: { host: string, port: number }): Promise<SilentProxy> {
  const pairs = new Set<[Socket, Socket]>()
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    client.pipe(upstream)
    upstream.pipe(client)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      pairs.delete(pair)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    silence () {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        // Read and discard, so neither end sees back-pressure or a close.
        client.on('data', () => {})
        upstream.on('data', () => {})
      }
    },
    async close () {
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
      pairs.clear()
      server.close()
      await once(server, 'close')
    }
  }
}
