// Postgres adapter: LISTEN/NOTIFY, the zero-setup default. One dedicated connection LISTENs to
// the channel of every topic this process has listeners for (postgres/listener.ts); publishes go
// through a separate one-connection pool, batched into one transaction per round trip, which
// keeps one process's frames in order (postgres/publisher.ts). A frame over NOTIFY's 8000-byte
// limit is stored in chat.bus_frame (migration 000008) and sent as a reference that listeners
// fetch (see notify-payload.ts).
import type { Bus, BusLog } from '../port.ts'
import { BusClosedError } from '../errors.ts'
import { createSubscriptions, subscribeMethods } from '../subscriptions.ts'
import { createPostgresListener } from './postgres/listener.ts'
import { createPostgresPublisher } from './postgres/publisher.ts'

export { postgresChannel } from './postgres/channel.ts'

export interface PostgresBusOptions {
  connectionString: string
  /** Prefix of every channel: buses hear only buses of the same namespace. Defaults to "chatty". */
  namespace?: string
  /** Start of the connections' application_name ("<name> listen", "<name> notify"). Defaults to "chatty-bus". */
  applicationName?: string
  /** How often the listening connection must answer a query; one that stays silent is replaced. Defaults to 10 s. */
  heartbeatMs?: number
  /** How long a frame stored for being too large for NOTIFY is kept for listeners to fetch. Defaults to 60 s. */
  storedFrameTtlMs?: number
  log?: BusLog
}

export interface PostgresBus extends Bus {
  /** The topics Postgres says the listening connection is subscribed to (pg_listening_channels()); for diagnostics. */
  listeningTopics (): Promise<string[]>
}

export function createPostgresBus (options: PostgresBusOptions): PostgresBus {
  const { connectionString, log } = options
  const namespace = options.namespace ?? 'chatty'
  const applicationName = options.applicationName ?? 'chatty-bus'
  const heartbeatMs = options.heartbeatMs ?? 10_000
  const storedFrameTtlMs = options.storedFrameTtlMs ?? 60_000

  let closed = false
  const listening = createPostgresListener({ connectionString, namespace, applicationName, heartbeatMs, log, deliver: (topic, frame) => subscriptions.deliver(topic, frame) })
  const subscriptions = createSubscriptions({ listen: listening.listen, unlisten: listening.unlisten }, log)
  const publisher = createPostgresPublisher({ connectionString, namespace, applicationName, storedFrameTtlMs, log })

  return {
    publish (topic, frame) {
      if (closed) return Promise.reject(new BusClosedError())
      return publisher.publish(topic, frame)
    },

    ...subscribeMethods(subscriptions, () => closed),

    listeningTopics: () => listening.listeningTopics(),

    async close () {
      if (closed) return
      closed = true
      publisher.stop()
      subscriptions.clear()
      await listening.close()
      // Publishes accepted before close still go out.
      await publisher.close()
    }
  }
}
