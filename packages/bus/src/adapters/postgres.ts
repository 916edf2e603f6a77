// Postgres adapter: LISTEN/NOTIFY, the zero-setup default. One dedicated connection LISTENs to
// the channel of every topic this process has listeners for; when it drops, it is replaced with
// backoff and LISTENs again. Publishes go through a separate one-connection pool, batched into
// one transaction per round trip, which keeps one process's frames in order. A frame over
// NOTIFY's 8000-byte limit is stored in chat.bus_frame (migration 000008) and sent as a
// reference that listeners fetch (see notify-payload.ts).
import { createHash, randomBytes } from 'node:crypto'
import { Socket } from 'node:net'
import pg from 'pg'
import type { Bus, BusLog, Listener, Unsubscribe } from '../port.ts'
import { BusClosedError } from '../errors.ts'
import { createSubscriptions } from '../subscriptions.ts'
import { decodePayload, encodeFrame } from './notify-payload.ts'

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

/** Postgres truncates identifiers to 63 bytes, which would make long channel names collide. */
const MAX_CHANNEL_BYTES = 63
const RECONNECT_MIN_MS = 100
const RECONNECT_MAX_MS = 5_000
/** Publishes waiting behind a round trip go together in the next one, up to about this many characters. */
const BATCH_CHARS = 1 << 20

const NOTIFY_SQL = 'SELECT pg_notify(channel, payload) FROM unnest($1::text[], $2::text[]) AS n (channel, payload)'
/** NOTIFY_SQL, storing the large frames ($3 ids, $4 frames) in the same transaction. */
const STORE_AND_NOTIFY_SQL = `WITH stored AS (
  INSERT INTO chat.bus_frame (id, frame) SELECT * FROM unnest($3::text[], $4::text[])
)
${NOTIFY_SQL}`
const FETCH_SQL = 'SELECT id, frame FROM chat.bus_frame WHERE id = ANY($1::text[])'
const EXPIRE_SQL = 'DELETE FROM chat.bus_frame WHERE created_at < now() - make_interval(secs => $1)'

/** The NOTIFY channel of a topic: readable when it fits, a hash when it does not. */
export function postgresChannel (namespace: string, topic: string): string {
  const name = `${namespace}:${topic}`
  if (Buffer.byteLength(name) <= MAX_CHANNEL_BYTES) return name
  return `#${createHash('sha256').update(name).digest('base64url')}`
}

interface Connection {
  client: pg.Client
  socket: Socket
  /** Channels this connection has LISTENed to. */
  channels: Set<string>
  /**
   * Frames received behind one still being fetched, delivered in arrival order once it is here;
   * empty while nothing is being fetched, when frames are delivered as they arrive.
   */
  backlog: Array<{ topic: string, frame: string | Promise<string | undefined> }>
  /** References received in this turn of the event loop, fetched together in one query. */
  fetches?: Map<string, PromiseWithResolvers<string | undefined>>
  heartbeat?: NodeJS.Timeout
  dead: boolean
}

interface Outgoing {
  channel: string
  payload: string
  stored?: { id: string, frame: string }
  chars: number
  sent: PromiseWithResolvers<void>
}

function listenSql (channel: string): string {
  return `LISTEN ${pg.escapeIdentifier(channel)}`
}

export function createPostgresBus (options: PostgresBusOptions): PostgresBus {
  const { connectionString, log } = options
  const namespace = options.namespace ?? 'chatty'
  const applicationName = options.applicationName ?? 'chatty-bus'
  const heartbeatMs = options.heartbeatMs ?? 10_000
  const storedFrameTtlMs = options.storedFrameTtlMs ?? 60_000

  let closed = false
  /** Channels wanted at the broker, and the topic each stands for. */
  const wanted = new Map<string, string>()
  const subscriptions = createSubscriptions({ listen, unlisten }, log)

  // --- the listening connection ---------------------------------------------------------------

  let live: Connection | undefined
  let connecting: { socket: Socket, done: Promise<void> } | undefined
  let retryTimer: NodeJS.Timeout | undefined
  let failures = 0
  let everConnected = false
  const waiters: Array<PromiseWithResolvers<Connection>> = []

  /** The live listening connection; while there is none, waits for the next one. */
  function connection (): Promise<Connection> {
    if (closed) return Promise.reject(new BusClosedError())
    if (live !== undefined) return Promise.resolve(live)
    const waiter = Promise.withResolvers<Connection>()
    waiters.push(waiter)
    connectSoon()
    return waiter.promise
  }

  function connectSoon (): void {
    if (closed || connecting !== undefined || retryTimer !== undefined) return
    // Our own socket, so a connection that stops answering can be cut at once (see heartbeat).
    const socket = new Socket()
    connecting = { socket, done: connect(socket).finally(() => { connecting = undefined }) }
  }

  function retryLater (): void {
    if (closed || retryTimer !== undefined) return
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** failures++) * (0.5 + Math.random() / 2)
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      // Nobody needs the connection any more: connect again on the next subscribe.
      if (wanted.size > 0 || waiters.length > 0) connectSoon()
    }, delay)
  }

  async function connect (socket: Socket): Promise<void> {
    const client = new pg.Client({
      connectionString,
      application_name: `${applicationName} listen`,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
      stream: () => socket
    })
    const conn: Connection = { client, socket, channels: new Set(), backlog: [], dead: false }
    client.on('error', (error) => lost(conn, error))
    client.on('end', () => lost(conn))
    client.on('notification', (notification) => receive(conn, notification))
    try {
      await client.connect()
      // LISTEN to what is wanted now; subscribes and unsubscribes may land meanwhile, so repeat
      // until nothing changed during the last round trip.
      for (;;) {
        const add = [...wanted.keys()].filter((channel) => !conn.channels.has(channel))
        const drop = [...conn.channels].filter((channel) => !wanted.has(channel))
        if (add.length === 0 && drop.length === 0) break
        await client.query([...add.map(listenSql), ...drop.map((channel) => `UN${listenSql(channel)}`)].join('; '))
        for (const channel of add) conn.channels.add(channel)
        for (const channel of drop) conn.channels.delete(channel)
      }
      if (conn.dead) throw new Error('connection lost while listening')
      if (closed) throw new BusClosedError()
    } catch (error) {
      conn.dead = true
      socket.destroy()
      if (closed) return
      // A reconnect after a loss was logged already; later attempts of one outage stay quiet.
      if (!everConnected && failures === 0) log?.('warn', 'bus: cannot LISTEN on Postgres; retrying', error)
      retryLater()
      return
    }
    live = conn
    failures = 0
    if (everConnected) log?.('info', `bus: listening on Postgres again (${conn.channels.size} channels)`)
    everConnected = true
    startHeartbeat(conn)
    for (const waiter of waiters.splice(0)) waiter.resolve(conn)
  }

  function lost (conn: Connection, error?: unknown): void {
    if (conn.dead) return
    conn.dead = true
    clearInterval(conn.heartbeat)
    conn.socket.destroy()
    if (live !== conn) return
    live = undefined
    if (closed) return
    log?.('warn', 'bus: lost the Postgres LISTEN connection; reconnecting', error)
    if (wanted.size > 0 || waiters.length > 0) retryLater()
  }

  // A connection can die without a word (a network partition, a frozen server): only a query
  // that goes unanswered for a whole period tells. Then it is cut and replaced.
  function startHeartbeat (conn: Connection): void {
    let unanswered = false
    conn.heartbeat = setInterval(() => {
      if (unanswered) return lost(conn, new Error(`no answer from Postgres within ${heartbeatMs} ms`))
      unanswered = true
      conn.client.query('SELECT 1').then(() => { unanswered = false }, () => {})
    }, heartbeatMs)
    conn.heartbeat.unref()
  }

  function receive (conn: Connection, notification: pg.Notification): void {
    const topic = wanted.get(notification.channel)
    if (topic === undefined) return
    const decoded = decodePayload(notification.payload ?? '')
    if (decoded === undefined) return
    if ('frame' in decoded && conn.backlog.length === 0) {
      subscriptions.deliver(topic, decoded.frame)
      return
    }
    conn.backlog.push({ topic, frame: 'frame' in decoded ? decoded.frame : fetchStored(conn, decoded.reference) })
    if (conn.backlog.length === 1) void deliverBacklog(conn)
  }

  /** Delivers the backlog in order, each fetched frame once it is here. */
  async function deliverBacklog (conn: Connection): Promise<void> {
    while (conn.backlog.length > 0) {
      const { topic, frame } = conn.backlog[0]!
      const text = await frame
      conn.backlog.shift()
      if (text !== undefined) subscriptions.deliver(topic, text)
    }
  }

  /** A stored frame, fetched on the listening connection with the others referenced in this turn. */
  function fetchStored (conn: Connection, id: string): Promise<string | undefined> {
    let batch = conn.fetches
    if (batch === undefined) {
      const fetches = new Map<string, PromiseWithResolvers<string | undefined>>()
      conn.fetches = batch = fetches
      queueMicrotask(() => {
        conn.fetches = undefined
        void fetchBatch(conn, fetches)
      })
    }
    const waiter = Promise.withResolvers<string | undefined>()
    batch.set(id, waiter)
    return waiter.promise
  }

  async function fetchBatch (conn: Connection, batch: Map<string, PromiseWithResolvers<string | undefined>>): Promise<void> {
    let found = new Map<string, string>()
    try {
      const { rows } = await conn.client.query<{ id: string, frame: string }>(FETCH_SQL, [[...batch.keys()]])
      found = new Map(rows.map((row) => [row.id, row.frame]))
      const missing = batch.size - found.size
      if (missing > 0) log?.('warn', `bus: ${missing} stored frame(s) expired before they were fetched; dropped`)
    } catch (error) {
      // The connection is gone (it is replaced), or the table is missing (migrations not run).
      log?.('warn', `bus: could not fetch ${batch.size} stored frame(s); dropped`, error)
    }
    for (const [id, waiter] of batch) waiter.resolve(found.get(id))
  }

  async function listen (topic: string): Promise<void> {
    const channel = postgresChannel(namespace, topic)
    wanted.set(channel, topic)
    try {
      for (;;) {
        const conn = await connection()
        if (conn.channels.has(channel)) return
        try {
          await conn.client.query(listenSql(channel))
          conn.channels.add(channel)
          return
        } catch (error) {
          // LISTEN only fails with its connection. The next one LISTENs to every wanted channel.
          lost(conn, error)
        }
      }
    } catch (error) {
      wanted.delete(channel)
      throw error
    }
  }

  async function unlisten (topic: string): Promise<void> {
    const channel = postgresChannel(namespace, topic)
    wanted.delete(channel)
    const conn = live
    if (conn === undefined || !conn.channels.has(channel)) return
    conn.channels.delete(channel)
    // A failure means the connection is gone, and its replacement will not LISTEN here.
    await conn.client.query(`UN${listenSql(channel)}`).catch(() => {})
  }

  // --- publishing ---------------------------------------------------------------------------

  const pool = new pg.Pool({
    connectionString,
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

  // --- the bus ------------------------------------------------------------------------------

  return {
    publish (topic, frame) {
      if (closed) return Promise.reject(new BusClosedError())
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

    async subscribe (topic: string, listener: Listener): Promise<Unsubscribe> {
      if (closed) throw new BusClosedError()
      await subscriptions.add(topic, listener)
      return () => subscriptions.remove(topic, listener)
    },

    async unsubscribe (topic, listener) {
      await subscriptions.remove(topic, listener)
    },

    async listeningTopics () {
      const conn = live
      if (conn === undefined) return []
      const { rows } = await conn.client.query<{ channel: string }>('SELECT pg_listening_channels() AS channel')
      return rows.map((row) => wanted.get(row.channel) ?? row.channel)
    },

    async close () {
      if (closed) return
      closed = true
      subscriptions.clear()
      wanted.clear()
      clearTimeout(retryTimer)
      clearTimeout(expireTimer)
      for (const waiter of waiters.splice(0)) waiter.reject(new BusClosedError())
      const attempt = connecting
      attempt?.socket.destroy()
      await attempt?.done
      const conn = live
      live = undefined
      if (conn !== undefined) {
        conn.dead = true
        clearInterval(conn.heartbeat)
        await conn.client.end().catch(() => {})
      }
      // Publishes accepted before close still go out.
      await sending
      await pool.end()
    }
  }
}
