// The jobs service as a plugin: configuration, database, the queue worker running the chat tasks
// from ready until close, and the queue dashboard (admin/). server.ts runs it on JOBS_ADMIN_PORT;
// tests build it with buildJobs().
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { createDb } from '@chatty/db'
import { createQueueClient, createQueueServer, DEFAULT_QUEUE } from '@chatty/queue'
import { NOTIFY_OFFLINE_TASK, SEND_MESSAGE_TASK, messageFrame, notifyOfflineJob, useGroupCommit, type Message } from '@chatty/chat'
import { createPresenceStore } from '@chatty/presence'
import { conversationTopic, createBus } from '@chatty/bus'
import { answerClientError, answerFrameworkError, HTTP_SERVER_OPTIONS } from '@chatty/server'
import env, { queueConfig } from './plugins/env.ts'
import admin from './admin/index.ts'
import { sendMessageTask } from './tasks/send-message.ts'
import { notifyOfflineTask } from './tasks/notify-offline.ts'

export const jobs = fp<{ data?: Record<string, unknown> }>(async (fastify, options) => {
  await fastify.register(env, options)
  const config = fastify.jobsConfig
  const { db, pool, destroy } = createDb(config.DB_URL, { max: config.DB_POOL_MAX, applicationName: 'chatty-jobs' })
  // Send tasks running at once share one write (packages/chat/src/group-commit.ts).
  const group = config.GROUP_COMMIT_MAX_BATCH > 0
    ? useGroupCommit(db, { maxBatch: config.GROUP_COMMIT_MAX_BATCH, windowMs: config.GROUP_COMMIT_WINDOW_MS, pool })
    : undefined

  const server = createQueueServer(queueConfig(config, (level, message) => fastify.log[level === 'error' ? 'error' : 'warn']({ queue: true }, message)))
  // Live delivery of what the tasks store: the api's `message` frame (docs/design.md section 4), which
  // every api process with sockets in the conversation hands to them as it is.
  const bus = createBus({
    dbUrl: config.DB_URL,
    redisUrl: config.REDIS_URL,
    log: (level, message, err) => fastify.log[level]({ bus: true, err }, message)
  })
  const publish = (message: Message): Promise<void> =>
    bus.publish(conversationTopic(message.conversation_id), messageFrame(message))
  // Offline notifications (docs/webhooks.md): queued after every message this process stores,
  // when WEBHOOK_URL is set; the presence store says who has no socket open.
  const webhook = config.WEBHOOK_URL === undefined
    ? undefined
    : { url: config.WEBHOOK_URL, secret: config.WEBHOOK_SECRET!, timeoutMs: config.WEBHOOK_TIMEOUT_MS }
  const queue = webhook === undefined ? undefined : createQueueClient(queueConfig(config))
  // Enqueued whether or not this attempt created the row: a retried job whose first attempt
  // stored the message but failed before enqueueing must still notify. The unique key and the
  // delivery id (the message id) keep repeats harmless.
  const notify = queue === undefined
    ? undefined
    : async (message: Message): Promise<void> => {
      const { task, uniqueKey, maxAttempts } = notifyOfflineJob(message)
      await queue.enqueue(task, { queue: DEFAULT_QUEUE, uniqueKey, maxAttempts })
    }
  const presence = webhook === undefined ? undefined : createPresenceStore({
    db,
    redisUrl: config.REDIS_URL,
    // Only read here: the TTL is the api processes' business.
    ttlMs: 30_000,
    keyPrefix: `${config.REDIS_KEY_PREFIX}presence:`,
    onError: (err) => fastify.log.warn({ err, presence: true }, 'presence store error')
  })
  server.register(SEND_MESSAGE_TASK, sendMessageTask({ db, publish, notify, log: fastify.log }))
  server.register(NOTIFY_OFFLINE_TASK, notifyOfflineTask({ db, presence, webhook, log: fastify.log }), { timeoutMs: config.WEBHOOK_TIMEOUT_MS + 5000 })

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
    await queue?.close()
    await presence?.close()
    await bus.close()
    await group?.close()
    await destroy()
  })

  await fastify.register(admin)
}, { name: 'chatty-jobs' })

export async function buildJobs (options: { config: Record<string, unknown>, logger?: FastifyServerOptions['logger'] }): Promise<FastifyInstance> {
  const fastify = Fastify({
    logger: options.logger ?? false,
    // Every answer is {error, code}: requests refused before routing (a bad url, 431, a malformed
    // request line) included.
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
    // The dashboard answers requests that arrive while closing: 503 {error, code}.
    return503OnClosing: false,
    // A missing Host header is refused by the dashboard's first hook, with {error, code}.
    http: HTTP_SERVER_OPTIONS
  })
  await fastify.register(jobs, { data: options.config })
  return fastify
}
