// `fastify.db`: the process's one Kysely instance, destroyed on close.
import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import { createDb, type Database } from '@chatty/db'

declare module 'fastify' {
  interface FastifyInstance {
    db: Kysely<Database>
  }
}

export default fp(async (fastify) => {
  const { db, destroy } = createDb(fastify.config.DB_URL, { max: fastify.config.DB_POOL_MAX, applicationName: 'chatty-api' })
  fastify.decorate('db', db)
  fastify.addHook('onClose', destroy)
}, { name: 'db', dependencies: ['config'] })
