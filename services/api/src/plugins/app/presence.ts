// `fastify.presence`: who is online (docs/design.md section 6 extended). A user is online while any
// socket of theirs is open on any api process. This process counts its sockets per user, mirrors
// "has at least one" into the presence store (packages/presence: Redis with REDIS_URL, else
// Postgres) under a process id of its own, and keeps that id alive with a heartbeat every third
// of PRESENCE_TTL_MS. A process that dies stops its heartbeat: its users count as offline one TTL
// later, and the first live process to sweep tells their conversations.
//
// Transitions become `presence` frames published to every conversation the user is a participant
// through the conversation feed (feed.event), so they reach the sockets joined to those conversations on every
// process; a socket that asked for them reports each change once (socket/membership.ts). A user's
// presence never reaches the users they blocked (the frame names them for the rooms to skip).
import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { sql, type Kysely } from 'kysely'
import type { Database } from '@chatty/db'
import { createPresenceStore, type PresenceStore } from '@chatty/presence'
import type { ConversationFeed } from '@chatty/chat'

export interface Presence {
  /** This process's id in the presence store. */
  readonly processId: string
  /** A socket of the user opened on this process. */
  connect (userId: string): void
  /** A socket of the user closed on this process. */
  disconnect (userId: string): void
  /** Those of the users with a socket open on some api process. */
  online (userIds: string[]): Promise<Set<string>>
}

declare module 'fastify' {
  interface FastifyInstance {
    presence: Presence
  }
}

/**
 * The `presence` frame (docs/protocol.md), as heard through one conversation. `hiddenFrom`: the
 * members the user has blocked; the rooms take the list off and hand them nothing.
 */
export function presenceFrame (conversationId: string, userId: string, online: boolean, at: Date, hiddenFrom: string[] = []): string {
  const frame = { type: 'presence', conversation_id: conversationId, user_id: userId, online, at: at.toISOString() }
  return JSON.stringify(hiddenFrom.length === 0 ? frame : { ...frame, hidden_from: hiddenFrom })
}

export interface PresenceTrackerDeps {
  store: PresenceStore
  db: Kysely<Database>
  feed: Pick<ConversationFeed, 'event'>
  ttlMs: number
  log: { warn (object: object, message: string): void }
}

export interface PresenceTracker extends Presence {
  /** Registers the process (before the first socket) and starts the heartbeat. */
  start (): Promise<void>
  /** Stops the heartbeat, removes this process's users at once and announces who went offline. */
  stop (): Promise<void>
}

/** Users in one presence flush at most (a Postgres insert takes two parameters a user). */
const MAX_FLUSH_USERS = 1000
/** Flushes start at least this far apart: presence frames wait at most this long for a batch. */
const FLUSH_INTERVAL_MS = 20

export function createPresenceTracker ({ store, db, feed, ttlMs, log }: PresenceTrackerDeps): PresenceTracker {
  const processId = randomUUID()
  /** Open sockets per user on this process. */
  const sockets = new Map<string, number>()
  /** Users this process has recorded in the store. */
  const recorded = new Set<string>()
  /** Users whose sockets changed since the last flush began: the next flush looks at them. */
  let dirty = new Set<string>()
  /** The flush running now; flushes run one at a time, so one user's changes apply in order. */
  let flushing: Promise<void> | undefined
  /** Settles when the flush that takes in today's dirty users is over. */
  let nextFlush: { promise: Promise<void>, resolve: () => void } | undefined
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  /** When the last flush started (performance.now()), and whether the next one is waiting to. */
  let lastStart = -Infinity
  let waiting = false

  /**
   * Publishes transitions to every conversation of the users, hidden from the members each
   * blocked: one query for all of them (each participant row with the members of its
   * conversation its user blocked, looked up by the block's primary key, so a user who blocked
   * nobody costs one empty index probe).
   */
  async function announce (userIds: string[], online: boolean): Promise<void> {
    if (userIds.length === 0) return
    const { rows } = await sql<{ user_id: string, conversation_id: string, hidden: string[] }>`
      SELECT p.user_id, p.conversation_id, ARRAY(
        SELECT b.blocked_id FROM chat.block b
        JOIN chat.participant o ON o.conversation_id = p.conversation_id AND o.user_id = b.blocked_id
        WHERE b.blocker_id = p.user_id
      ) AS hidden
      FROM chat.participant p
      WHERE p.user_id = any(${userIds}::uuid[])`.execute(db)
    const at = new Date()
    await Promise.all(rows.map((row) => {
      const frame = presenceFrame(row.conversation_id, row.user_id.toLowerCase(), online, at, row.hidden.map((id) => id.toLowerCase()))
      return feed.event(row.conversation_id, frame, 'a presence change')
    }))
  }

  /**
   * Brings the store in line with this process's sockets for the dirty users, announcing the
   * changes: every add and remove of the batch in one call each, then one lookup and one
   * announcement per direction. What a user's sockets are is read now, so a connect and a quick
   * disconnect in one batch are no change, and a later batch sees whatever came after.
   */
  async function reconcile (userIds: string[]): Promise<void> {
    if (stopped) return
    const adds: string[] = []
    const removes: string[] = []
    for (const userId of userIds) {
      const open = sockets.has(userId)
      if (open && !recorded.has(userId)) adds.push(userId)
      else if (!open && recorded.has(userId)) removes.push(userId)
    }
    await Promise.all([
      (async () => {
        if (adds.length === 0) return
        // One round trip: the add answers who of them is online on another process too.
        const elsewhere = await store.add(processId, adds)
        for (const userId of adds) recorded.add(userId)
        await announce(adds.filter((userId) => !elsewhere.has(userId)), true)
      })(),
      (async () => {
        if (removes.length === 0) return
        await store.remove(processId, removes)
        for (const userId of removes) recorded.delete(userId)
        const still = await store.online(removes)
        await announce(removes.filter((userId) => !still.has(userId)), false)
      })()
    ])
  }

  async function flush (): Promise<void> {
    const done = nextFlush
    nextFlush = undefined
    const batch = [...dirty]
    dirty = new Set()
    try {
      for (let i = 0; i < batch.length; i += MAX_FLUSH_USERS) {
        const part = batch.slice(i, i + MAX_FLUSH_USERS)
        await reconcile(part).catch((err: unknown) => log.warn({ err, users: part.length }, 'cannot update presence; the next heartbeat retries'))
      }
    } finally {
      done?.resolve()
    }
  }

  function startFlush (): void {
    lastStart = performance.now()
    const run: Promise<void> = flush().finally(() => {
      flushing = undefined
      if (dirty.size > 0) startSoon()
    })
    flushing = run
  }

  /**
   * Starts the next flush once the one running is over and FLUSH_INTERVAL_MS after the last one
   * started. A flush costs a few round trips whatever its size, so without the interval a burst
   * of upgrades made as many flushes as the round trips allowed, each of a few users.
   */
  function startSoon (): void {
    if (waiting || flushing !== undefined) return
    waiting = true
    const wait = lastStart + FLUSH_INTERVAL_MS - performance.now()
    if (wait > 0) setTimeout(startWaited, wait)
    else setImmediate(startWaited)
  }

  function startWaited (): void {
    waiting = false
    if (flushing === undefined && dirty.size > 0) startFlush()
  }

  /**
   * Marks a user's sockets as changed. Changes that arrive while a flush runs or waits for its
   * interval (a burst of upgrades) go to the store together, in the next flush.
   */
  function schedule (userId: string): void {
    dirty.add(userId)
    if (nextFlush !== undefined) return
    let resolve!: () => void
    const promise = new Promise<void>((settle) => { resolve = settle })
    nextFlush = { promise, resolve }
    startSoon()
  }

  /** Resolves once every change made before the call is in the store (and announced). */
  async function settled (): Promise<void> {
    if (nextFlush !== undefined) await nextFlush.promise
    else if (flushing !== undefined) await flushing
  }

  async function beat (): Promise<void> {
    try {
      if (!await store.heartbeat(processId)) {
        // Swept while this process was unreachable or stalled: its entries are gone.
        recorded.clear()
      }
      for (const userId of sockets.keys()) if (!recorded.has(userId)) schedule(userId)
      for (const userId of recorded) if (!sockets.has(userId)) schedule(userId)
      const gone = [...new Set(await store.sweep())]
      if (gone.length > 0) {
        const online = await store.online(gone)
        await announce(gone.filter((userId) => !online.has(userId)), false)
      }
    } catch (err) {
      log.warn({ err }, 'presence heartbeat failed')
    }
  }

  function loop (): void {
    timer = setTimeout(() => { void beat().finally(() => { if (!stopped) loop() }) }, Math.max(50, Math.floor(ttlMs / 3)))
  }

  return {
    processId,
    connect (userId) {
      const user = userId.toLowerCase()
      const count = sockets.get(user) ?? 0
      sockets.set(user, count + 1)
      if (count === 0) schedule(user)
    },
    disconnect (userId) {
      const user = userId.toLowerCase()
      const count = sockets.get(user) ?? 0
      if (count <= 1) {
        sockets.delete(user)
        schedule(user)
      } else {
        sockets.set(user, count - 1)
      }
    },
    async online (userIds) {
      // A lookup on this process sees the sockets opened and closed here before it.
      await settled()
      return await store.online(userIds.map((userId) => userId.toLowerCase()))
    },
    async start () {
      // A store that is down now is retried by the loop; sockets are recorded once it answers.
      await beat()
      loop()
    },
    async stop () {
      while (nextFlush !== undefined || flushing !== undefined) await settled()
      stopped = true
      clearTimeout(timer)
      try {
        const users = [...new Set(await store.removeProcess(processId))]
        const online = await store.online(users)
        await announce(users.filter((userId) => !online.has(userId)), false)
      } catch (err) {
        log.warn({ err }, 'cannot clear presence at shutdown; the TTL will')
      }
    }
  }
}

export default fp(async (fastify) => {
  const { config } = fastify
  const store = createPresenceStore({
    db: fastify.db,
    redisUrl: config.REDIS_URL,
    ttlMs: config.PRESENCE_TTL_MS,
    keyPrefix: `${config.REDIS_KEY_PREFIX}presence:`,
    onError: (err) => fastify.log.warn({ err, presence: true }, 'presence store error')
  })
  const tracker = createPresenceTracker({ store, db: fastify.db, feed: fastify.feed, ttlMs: config.PRESENCE_TTL_MS, log: fastify.log })
  fastify.decorate('presence', tracker)
  fastify.addHook('onReady', () => tracker.start())
  // Sockets are closed before this runs (@fastify/websocket's preClose), then the rest goes at once.
  fastify.addHook('onClose', async () => {
    await tracker.stop()
    await store.close()
  })
}, { name: 'presence', dependencies: ['config', 'chat', 'feed'] })
