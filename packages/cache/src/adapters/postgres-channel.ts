// An InvalidationChannel on Postgres LISTEN/NOTIFY, for the in-memory cache when there is no
// Redis: deletes reach every process connected to the same database. One dedicated connection
// listens; when it drops, the listener is told `null` (drop everything: messages may have been
// missed) and the connection is replaced with backoff, then told `null` again once listening.
// Publishes go through a small pool of their own.
import pg from 'pg'
import { pinSessionSettings } from '@chatty/db'
import type { InvalidationChannel, InvalidationListener, Unsubscribe } from '../port.ts'

export interface PostgresChannelOptions {
  connectionString: string
  /** The NOTIFY channel. Default "chatty_cache". */
  channel?: string
  onError?: (error: Error) => void
}

export interface PostgresInvalidationChannel extends InvalidationChannel {
  close (): Promise<void>
}

const RECONNECT_MIN_MS = 100
const RECONNECT_MAX_MS = 5000

/** Ends a connection whose events no longer matter; an error it raises meanwhile is ignored. */
function discard (client: pg.Client): Promise<void> {
  client.removeAllListeners()
  client.on('error', () => {})
  return client.end().catch(() => {})
}

export function createPostgresInvalidationChannel (options: PostgresChannelOptions): PostgresInvalidationChannel {
  const channel = options.channel ?? 'chatty_cache'
  const onError = options.onError ?? ((error: Error) => process.emitWarning(error))
  const pool = new pg.Pool({ connectionString: pinSessionSettings(options.connectionString), max: 2, application_name: 'chatty-cache notify' })
  pool.on('error', onError)
  const listeners = new Set<InvalidationListener>()
  let client: pg.Client | undefined
  let connecting: Promise<void> | undefined
  let retry: NodeJS.Timeout | undefined
  let failures = 0
  let closed = false

  const tell = (key: string | null) => {
    for (const listener of listeners) listener(key)
  }

  async function connect (): Promise<void> {
    const next = new pg.Client({ connectionString: pinSessionSettings(options.connectionString), application_name: 'chatty-cache listen', keepAlive: true })
    const lost = (error?: Error) => {
      if (error !== undefined) onError(error)
      void discard(next)
      if (client !== next) return
      client = undefined
      tell(null)
      reconnectLater()
    }
    next.on('notification', (message) => {
      if (message.channel === channel) tell(message.payload ?? null)
    })
    next.on('error', lost)
    next.on('end', () => lost())
    try {
      await next.connect()
      await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
    } catch (error) {
      await discard(next)
      throw error
    }
    if (closed) {
      await discard(next)
      return
    }
    failures = 0
    client = next
    // Whatever was deleted while nobody listened is unknown: forget everything.
    tell(null)
  }

  function reconnectLater (): void {
    if (closed || retry !== undefined || listeners.size === 0) return
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** failures++)
    retry = setTimeout(() => {
      retry = undefined
      connecting = connect().catch((error: Error) => {
        onError(error)
        reconnectLater()
      }).finally(() => { connecting = undefined })
    }, delay)
    retry.unref()
  }

  return {
    async publish (key) {
      await pool.query('SELECT pg_notify($1, $2)', [channel, key])
    },
    async subscribe (listener): Promise<Unsubscribe> {
      listeners.add(listener)
      // Resolves once listening: until then the memory cache keeps nothing, so an unreachable
      // Postgres at start-up makes it a pass-through rather than a source of stale answers.
      while (client === undefined && !closed) {
        try {
          connecting ??= connect().finally(() => { connecting = undefined })
          await connecting
        } catch (error) {
          onError(error as Error)
          await new Promise((resolve) => setTimeout(resolve, Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** failures++)))
        }
      }
      return () => { listeners.delete(listener) }
    },
    async close () {
      closed = true
      clearTimeout(retry)
      listeners.clear()
      await connecting?.catch(() => {})
      const current = client
      client = undefined
      if (current !== undefined) await discard(current)
      await pool.end()
    }
  }
}
