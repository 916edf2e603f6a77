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
import type { Kysely } from 'kysely'
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

export function createPresenceTracker ({ store, db, feed, ttlMs, log }: PresenceTrackerDeps): PresenceTracker {
  const processId = randomUUID()
  /** Open sockets per user on this process. */
  const sockets = new Map<string, number>()
  /** Users this process has recorded in the store. */
  const recorded = new Set<string>()
  /** Per user, the tail of its store updates: one user's changes apply in order. */
  const chains = new Map<string, Promise<void>>()
  let timer: NodeJS.Timeout | undefined
  let stopped = false

  /** Publishes a transition to every conversation of the user, hidden from the members they blocked. */
  async function announce (userId: string, online: boolean): Promise<void> {
    const [rows, blocked] = await Promise.all([
      db.selectFrom('chat.participant').select('conversation_id').where('user_id', '=', userId).execute(),
      db.selectFrom('chat.participant as mine')
        .innerJoin('chat.participant as other', 'other.conversation_id', 'mine.conversation_id')
        .innerJoin('chat.block as b', (join) => join.on('b.blocker_id', '=', userId).onRef('b.blocked_id', '=', 'other.user_id'))
        .select(['mine.conversation_id', 'other.user_id'])
        .where('mine.user_id', '=', userId)
        .execute()
    ])
    const hidden = new Map<string, string[]>()
    for (const row of blocked) hidden.set(row.conversation_id, [...hidden.get(row.conversation_id) ?? [], row.user_id.toLowerCase()])
    const at = new Date()
    await Promise.all(rows.map((row) => feed.event(row.conversation_id, presenceFrame(row.conversation_id, userId, online, at, hidden.get(row.conversation_id)), 'a presence change')))
  }

  /** Brings the store in line with this process's sockets for one user, announcing a change. */
  async function reconcile (userId: string): Promise<void> {
    const open = sockets.has(userId)
    if (stopped || open === recorded.has(userId)) return
    if (open) {
      await store.add(processId, [userId])
      recorded.add(userId)
      const elsewhere = await store.online([userId], { exceptProcess: processId })
      if (!elsewhere.has(userId)) await announce(userId, true)
    } else {
      await store.remove(processId, userId)
      recorded.delete(userId)
      const still = await store.online([userId])
      if (!still.has(userId)) await announce(userId, false)
    }
  }

  function schedule (userId: string): void {
    const next = (chains.get(userId) ?? Promise.resolve())
      .then(() => reconcile(userId))
      .catch((err: unknown) => log.warn({ err, user: userId }, 'cannot update presence; the next heartbeat retries'))
      .finally(() => { if (chains.get(userId) === next) chains.delete(userId) })
    chains.set(userId, next)
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
        await Promise.all(gone.filter((userId) => !online.has(userId)).map((userId) => announce(userId, false)))
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
    online (userIds) {
      return store.online(userIds.map((userId) => userId.toLowerCase()))
    },
    async start () {
      // A store that is down now is retried by the loop; sockets are recorded once it answers.
      await beat()
      loop()
    },
    async stop () {
      await Promise.all(chains.values())
      stopped = true
      clearTimeout(timer)
      try {
        const users = [...new Set(await store.removeProcess(processId))]
        const online = await store.online(users)
        await Promise.all(users.filter((userId) => !online.has(userId)).map((userId) => announce(userId, false)))
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
