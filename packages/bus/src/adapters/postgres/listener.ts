// The Postgres bus's listening side: one dedicated connection LISTENs to the channel of every
// topic this process has listeners for; when it drops, or stops answering its heartbeat, it is
// replaced with backoff and LISTENs again. Frames too large for NOTIFY arrive as references,
// fetched from chat.bus_frame in one query per event-loop turn and delivered in arrival order.
import { Socket } from 'node:net'
import pg from 'pg'
import { pinSessionSettings } from '@chatty/db'
import type { BusLog } from '../../port.ts'
import { BusClosedError } from '../../errors.ts'
import { decodePayload } from '../notify-payload.ts'
import { postgresChannel } from './channel.ts'

const RECONNECT_MIN_MS = 100
const RECONNECT_MAX_MS = 5_000

const FETCH_SQL = 'SELECT id, frame FROM chat.bus_frame WHERE id = ANY($1::text[])'

export interface PostgresListenerOptions {
  connectionString: string
  namespace: string
  applicationName: string
  heartbeatMs: number
  log?: BusLog
  /** Hands a received frame to this process's listeners of its topic. */
  deliver: (topic: string, frame: string) => void
}

export interface PostgresListener {
  listen (topic: string): Promise<void>
  unlisten (topic: string): Promise<void>
  /** The topics Postgres says the listening connection is subscribed to. */
  listeningTopics (): Promise<string[]>
  close (): Promise<void>
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

function listenSql (channel: string): string {
  return `LISTEN ${pg.escapeIdentifier(channel)}`
}

export function createPostgresListener (options: PostgresListenerOptions): PostgresListener {
  const { connectionString, namespace, applicationName, heartbeatMs, log, deliver } = options

  let closed = false
  /** Channels wanted at the broker, and the topic each stands for. */
  const wanted = new Map<string, string>()

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
      connectionString: pinSessionSettings(connectionString),
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
      deliver(topic, decoded.frame)
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
      if (text !== undefined) deliver(topic, text)
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

  return {
    listen,
    unlisten,

    async listeningTopics () {
      const conn = live
      if (conn === undefined) return []
      const { rows } = await conn.client.query<{ channel: string }>('SELECT pg_listening_channels() AS channel')
      return rows.map((row) => wanted.get(row.channel) ?? row.channel)
    },

    async close () {
      closed = true
      wanted.clear()
      clearTimeout(retryTimer)
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
    }
  }
}
