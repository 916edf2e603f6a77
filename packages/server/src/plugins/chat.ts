// `fastify.db` and `fastify.chat`: the process's one Kysely instance, and the chat core built on it
// (packages/chat/src/context.ts) with its writer (the group commit, unless turned off) and, when
// the service has one, its membership cache. Both services register it; the writer is closed,
// then the pool, when the server closes.
import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import { createDb, type Database } from '@chatty/db'
import { createChat, createGroupCommit, type Chat, type MembershipCache } from '@chatty/chat'

declare module 'fastify' {
  interface FastifyInstance {
    db: Kysely<Database>
    chat: Chat
  }
}

export interface ChatPluginOptions {
  dbUrl: string
  poolMax: number
  /** Shown in pg_stat_activity. */
  applicationName: string
  /** Most messages one statement stores; 0 stores each message in a transaction of its own. */
  groupCommitMaxBatch: number
  groupCommitWindowMs: number
  membership?: MembershipCache | null
}

export const chatPlugin = fp<ChatPluginOptions>(async (fastify, options) => {
  const { db, pool, destroy } = createDb(options.dbUrl, { max: options.poolMax, applicationName: options.applicationName })
  // Concurrent sends share one write (packages/chat/src/group-commit.ts).
  const writer = options.groupCommitMaxBatch > 0
    ? createGroupCommit(db, { maxBatch: options.groupCommitMaxBatch, windowMs: options.groupCommitWindowMs, pool })
    : null
  fastify.decorate('db', db)
  fastify.decorate('chat', createChat({ db, writer, membership: options.membership, statements: pool }))
  fastify.addHook('onClose', async () => {
    await writer?.close()
    await destroy()
  })
}, { name: 'chat' })
