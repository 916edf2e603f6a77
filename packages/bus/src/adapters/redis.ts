// Redis adapter: pub/sub on ioredis, used when REDIS_URL is set. One connection subscribes (it
// can do nothing else in subscriber mode), one publishes. ioredis reconnects with backoff and,
// on the new connection, subscribes again to every channel it held (autoResubscribe).
import { once } from 'node:events'
import { Redis } from 'ioredis'
import type { Bus, BusLog } from '../port.ts'
import { BusClosedError } from '../errors.ts'
import { createSubscriptions, subscribeMethods } from '../subscriptions.ts'

export interface RedisBusOptions {
  url: string
  /**
   * Prefix of every channel: buses hear only buses of the same namespace. Pub/sub ignores the
   * database number, so deployments sharing a Redis need different namespaces. Defaults to "chatty".
   */
  namespace?: string
  /** CLIENT SETNAME of the connections ("<name>-sub", "<name>-pub"). Defaults to "chatty-bus". */
  connectionName?: string
  log?: BusLog
}

/** Backoff between reconnect attempts, with jitter so many processes do not reconnect in step. */
function retryDelay (attempt: number): number {
  return Math.min(5_000, 50 * 2 ** attempt) * (0.5 + Math.random() / 2)
}

async function disconnect (redis: Redis): Promise<void> {
  if (redis.status === 'end') return
  const ended = once(redis, 'end')
  // QUIT goes out after commands already queued, so accepted publishes are sent first.
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect())
  else redis.disconnect()
  // Between reconnect attempts there is no socket: disconnect() only cancels the next attempt,
  // and ioredis emits nothing more.
  if (redis.status === 'reconnecting') return
  await ended
}

export function createRedisBus (options: RedisBusOptions): Bus {
  const { log } = options
  const prefix = `${options.namespace ?? 'chatty'}:`
  const name = options.connectionName ?? 'chatty-bus'
  let closed = false
  // Settles what ioredis would leave waiting forever when closed between reconnect attempts.
  const closing = Promise.withResolvers<never>()
  closing.promise.catch(() => {})

  const subscriber = new Redis(options.url, {
    lazyConnect: true,
    connectionName: `${name}-sub`,
    retryStrategy: retryDelay,
    // A subscribe made during an outage waits for the reconnect instead of failing.
    maxRetriesPerRequest: null
  })
  const publisher = new Redis(options.url, {
    lazyConnect: true,
    connectionName: `${name}-pub`,
    retryStrategy: retryDelay,
    // A publish made during an outage fails after a reconnect attempt or two instead of piling up.
    maxRetriesPerRequest: 1,
    // The publishes made while one write is in flight (a group commit's messages, a presence
    // batch's frames) leave in the next single write, still in the order they were made.
    enableAutoPipelining: true
  })

  // ioredis reports every failed reconnect attempt; one line per outage is enough.
  for (const [redis, role] of [[subscriber, 'subscribe'], [publisher, 'publish']] as const) {
    let down = false
    let lastError: unknown
    redis.on('error', (error) => { lastError = error })
    redis.on('reconnecting', () => {
      if (down || closed) return
      down = true
      log?.('warn', `bus: lost the Redis ${role} connection; reconnecting`, lastError)
    })
    redis.on('ready', () => {
      if (!down) return
      down = false
      log?.('info', `bus: the Redis ${role} connection is back`)
    })
  }

  // ioredis writes a SUBSCRIBE made while the connection is mid-handshake (status "connect")
  // straight to the socket, ahead of its own ready check, whose INFO then fails in subscriber
  // mode and drops the connection. Subscribes wait for "ready" instead (one shared wait), which
  // also covers reconnects: ioredis resubscribes the held channels itself once ready.
  let ready: Promise<void> | undefined
  const subscriberReady = (): Promise<void> => {
    if (subscriber.status === 'ready') return Promise.resolve()
    if (subscriber.status === 'wait') subscriber.connect().catch(() => {})
    ready ??= new Promise<void>((resolve) => {
      subscriber.once('ready', () => {
        ready = undefined
        resolve()
      })
    })
    return ready
  }

  const subscriptions = createSubscriptions({
    async listen (topic) {
      if (closed) throw new BusClosedError()
      await Promise.race([subscriberReady(), closing.promise]).catch(() => { throw new BusClosedError() })
      const subscribed = subscriber.subscribe(prefix + topic)
      subscribed.catch(() => {})
      try {
        await Promise.race([subscribed, closing.promise])
      } catch (error) {
        throw closed ? new BusClosedError() : error
      }
    },
    async unlisten (topic) {
      // Never waits for a reconnect: a queued UNSUBSCRIBE is sent after the resubscribe anyway.
      const done = subscriber.unsubscribe(prefix + topic).catch(() => {})
      if (subscriber.status === 'ready') await done
    }
  }, log)

  subscriber.on('message', (channel: string, message: string) => {
    if (channel.startsWith(prefix)) subscriptions.deliver(channel.slice(prefix.length), message)
  })

  return {
    async publish (topic, frame) {
      if (closed) throw new BusClosedError()
      await publisher.publish(prefix + topic, frame)
    },

    ...subscribeMethods(subscriptions, () => closed),

    async close () {
      if (closed) return
      closed = true
      closing.reject(new BusClosedError())
      subscriptions.clear()
      await Promise.all([disconnect(subscriber), disconnect(publisher)])
    }
  }
}
