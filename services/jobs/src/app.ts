// The jobs service as a plugin: configuration, database, the queue worker running the chat tasks
// from ready until close, and the queue dashboard (admin/). server.ts runs it on JOBS_ADMIN_PORT;
// tests build it with buildJobs().
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { createDb } from '@chatty/db'
import { createQueueServer } from '@chatty/queue'
import { SEND_MESSAGE_TASK, messageFrame, useGroupCommit, type Message } from '@chatty/chat'
import { conversationTopic, createBus } from '@chatty/bus'
import env, { queueConfig } from './plugins/env.ts'
import admin from './admin/index.ts'
import { sendMessageTask } from './tasks/send-message.ts'

export const jobs = fp<{ data?: Record<string, unknown> }>(async (fastify, options) => {
  await fastify.register(env, options)
  const config = fastify.jobsConfig
  const { db, pool, destroy } = createDb(config.DB_URL, { max: config.DB_POOL_MAX, applicationName: 'chatty-jobs' })
  // Send tasks running at once share one write (packages/chat/src/group-commit.ts).
  const group = config.GROUP_COMMIT_MAX_BATCH > 0
    ? useGroupCommit(db, { maxBatch: config.GROUP_COMMIT_MAX_BATCH, windowMs: config.GROUP_COMMIT_WINDOW_MS, pool })
    : undefined

  const server = createQueueServer(queueConfig(config, (level, message) => fastify.log[level === 'error' ? 'error' : 'warn']({ queue: true }, message)))
  // Live delivery of what the tasks store: the api's `message` frame (DESIGN.md section 4), which
  // every api process with sockets in the conversation hands to them as it is.
  const bus = createBus({
    dbUrl: config.DB_URL,
    redisUrl: config.REDIS_URL,
    log: (level, message, err) => fastify.log[level]({ bus: true, err }, message)
  })
  const publish = (message: Message): Promise<void> =>
    bus.publish(conversationTopic(message.conversation_id), messageFrame(message))
  server.register(SEND_MESSAGE_TASK, sendMessageTask({ db, publish, log: fastify.log }))

  const stop = new AbortController()
  let running: Promise<void> | undefined
  fastify.addHook('onReady', async () => {
    running = server.run(stop.signal).catch((err: unknown) => {
      fastify.log.error({ err }, 'queue worker stopped with an error')
    })
  })
  // Finish in-flight jobs, then release the database.
  fastify.addHook('onClose', async () => {
    stop.abort()
    await running
    await bus.close()
    await group?.close()
    await destroy()
  })

  await fastify.register(admin)
}, { name: 'chatty-jobs' })

export async function buildJobs (options: { config: Record<string, unknown>, logger?: FastifyServerOptions['logger'] }): Promise<FastifyInstance> {
  const fastify = Fastify({ logger: options.logger ?? false })
  await fastify.register(jobs, { data: options.config })
  return fastify
}
