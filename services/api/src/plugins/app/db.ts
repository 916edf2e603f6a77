// `fastify.db`: the process's one Kysely instance, with the group commit of message writes;
// destroyed on close.
import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import { createDb, type Database } from '@chatty/db'
import { useGroupCommit } from '@chatty/chat'

declare module 'fastify' {
  interface FastifyInstance {
    db: Kysely<Database>
  }
}

export default fp(async (fastify) => {
  const { config } = fastify
  const { db, pool, destroy } = createDb(config.DB_URL, { max: config.DB_POOL_MAX, applicationName: 'chatty-api' })
  fastify.decorate('db', db)
  // Concurrent sends share one write (packages/chat/src/group-commit.ts); GROUP_COMMIT_MAX_BATCH=0 turns it off.
  const group = config.GROUP_COMMIT_MAX_BATCH > 0
    ? useGroupCommit(db, { maxBatch: config.GROUP_COMMIT_MAX_BATCH, windowMs: config.GROUP_COMMIT_WINDOW_MS, pool })
    : undefined
  fastify.addHook('onClose', async () => {
    await group?.close()
    await destroy()
  })
}, { name: 'db', dependencies: ['config'] })
