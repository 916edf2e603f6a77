// The Postgres bus's publishing side: a one-connection pool; publishes waiting behind a round trip
// go together in the next one (one transaction), which keeps one process's frames in order. A
// frame over NOTIFY's 8000-byte limit is stored in chat.bus_frame in the same statement and sent
// as a reference (see ../notify-payload.ts); expired stored frames are deleted later.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { pinSessionSettings } from '@chatty/db'
import type { BusLog } from '../../port.ts'
import { encodeFrame } from '../notify-payload.ts'
import { postgresChannel } from './channel.ts'

/** Publishes waiting behind a round trip go together in the next one, up to about this many characters. */
const BATCH_CHARS = 1 << 20

const NOTIFY_SQL = 'SELECT pg_notify(channel, payload) FROM unnest($1::text[], $2::text[]) AS n (channel, payload)'
/** NOTIFY_SQL, storing the large frames ($3 ids, $4 frames) in the same transaction. */
const STORE_AND_NOTIFY_SQL = `WITH stored AS (
  INSERT INTO chat.bus_frame (id, frame) SELECT * FROM unnest($3::text[], $4::text[])
)
${NOTIFY_SQL}`
const EXPIRE_SQL = 'DELETE FROM chat.bus_frame WHERE created_at < now() - make_interval(secs => $1)'

interface Outgoing {
  channel: string
  payload: string
  stored?: { id: string, frame: string }
  chars: number
  sent: PromiseWithResolvers<void>
}

export interface PostgresPublisherOptions {
  connectionString: string
  namespace: string
  applicationName: string
  storedFrameTtlMs: number
  log?: BusLog
}

export interface PostgresPublisher {
  /** Sends a frame; resolves once Postgres took it. */
  publish (topic: string, frame: string): Promise<void>
  /** Stops the expiry timer; later publishes are the caller's to refuse. */
  stop (): void
  /** Waits for the publishes accepted so far to go out, then closes the pool. */
  close (): Promise<void>
}

export function createPostgresPublisher (options: PostgresPublisherOptions): PostgresPublisher {
  const { connectionString, namespace, applicationName, storedFrameTtlMs, log } = options
  let closed = false

  const pool = new pg.Pool({
    connectionString: pinSessionSettings(connectionString),
    max: 1,
    idleTimeoutMillis: 0,
    connectionTimeoutMillis: 5_000,
    // A NOTIFY that goes unanswered fails, and the pool drops its connection for a new one.
    query_timeout: 10_000,
    keepAlive: true,
    application_name: `${applicationName} notify`
  })
  pool.on('error', (error) => log?.('warn', 'bus: the Postgres NOTIFY connection failed', error))

  // Also the key of this process's stored frames, so random enough never to meet another's.
  const instance = randomBytes(12).toString('base64url')
  let published = 0
  const outbox: Outgoing[] = []
  let sending: Promise<void> | undefined

  async function send (): Promise<void> {
    while (outbox.length > 0) {
      const batch = [outbox.shift()!]
      let chars = batch[0]!.chars
      while (outbox.length > 0 && chars + outbox[0]!.chars <= BATCH_CHARS) {
        chars += outbox[0]!.chars
        batch.push(outbox.shift()!)
      }
      const channels = batch.map((item) => item.channel)
      const payloads = batch.map((item) => item.payload)
      const stored = batch.flatMap((item) => item.stored ?? [])
      try {
        if (stored.length === 0) await pool.query(NOTIFY_SQL, [channels, payloads])
        else await pool.query(STORE_AND_NOTIFY_SQL, [channels, payloads, stored.map((frame) => frame.id), stored.map((frame) => frame.frame)])
        for (const item of batch) item.sent.resolve()
        if (stored.length > 0) expireLater()
      } catch (error) {
        for (const item of batch) item.sent.reject(error)
      }
    }
    sending = undefined
  }

  // Stored frames are fetched within milliseconds; a publisher deletes every process's expired
  // ones a TTL after it last stored one of its own.
  let expireTimer: NodeJS.Timeout | undefined
  function expireLater (): void {
    if (expireTimer !== undefined || closed) return
    expireTimer = setTimeout(() => {
      expireTimer = undefined
      pool.query(EXPIRE_SQL, [storedFrameTtlMs / 1000])
        .catch((error: unknown) => log?.('warn', 'bus: could not delete expired stored frames', error))
    }, storedFrameTtlMs)
    expireTimer.unref()
  }

  return {
    publish (topic, frame) {
      // Postgres text cannot hold NUL; serialised JSON never contains a raw one.
      if (frame.includes('\u0000')) return Promise.reject(new TypeError('a frame cannot contain NUL characters'))
      const { payload, stored } = encodeFrame(`${instance}.${(published++).toString(36)}`, frame)
      const item: Outgoing = {
        channel: postgresChannel(namespace, topic),
        payload,
        stored,
        chars: payload.length + (stored?.frame.length ?? 0),
        sent: Promise.withResolvers<void>()
      }
      outbox.push(item)
      sending ??= send()
      return item.sent.promise
    },

    stop () {
      closed = true
      clearTimeout(expireTimer)
    },

    async close () {
      // Publishes accepted before close still go out.
      await sending
      await pool.end()
    }
  }
}
