// The jobs service as a plugin, built from the same shared plugins as the api (@chatty/server):
// configuration, the chat core on the database, the conversation feed, the queue worker running
// the chat tasks from ready until close, and the queue dashboard (admin/). server.ts runs it on
// JOBS_ADMIN_PORT; tests build it with buildJobs().
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { DEFAULT_QUEUE } from '@chatty/queue'
import { notifyOfflineJob, type Message } from '@chatty/chat'
import { answerClientError, answerFrameworkError, chatPlugin, feedPlugin, HTTP_SERVER_OPTIONS, queuePlugin } from '@chatty/server'
import env, { queueConfig } from './plugins/env.ts'
import worker from './plugins/worker.ts'
import admin from './admin/index.ts'

export const jobs = fp<{ data?: Record<string, unknown> }>(async (fastify, options) => {
  await fastify.register(env, options)
  const config = fastify.jobsConfig
  // Send tasks running at once share one write (packages/chat/src/group-commit.ts).
  await fastify.register(chatPlugin, {
    dbUrl: config.DB_URL,
    poolMax: config.DB_POOL_MAX,
    applicationName: 'chatty-jobs',
    groupCommitMaxBatch: config.GROUP_COMMIT_MAX_BATCH,
    groupCommitWindowMs: config.GROUP_COMMIT_WINDOW_MS
  })
  // Live delivery of what the tasks store: the api's `message` frame (docs/design.md section 4),
  // which every api process with sockets in the conversation hands to them as it is.
  await fastify.register(feedPlugin, { dbUrl: config.DB_URL, redisUrl: config.REDIS_URL })
  // Offline notifications (docs/webhooks.md): queued after every message this process stores,
  // when WEBHOOK_URL is set.
  let notify: ((message: Message) => Promise<void>) | undefined
  if (config.WEBHOOK_URL !== undefined) {
    const { log: _log, ...client } = queueConfig(config)
    await fastify.register(queuePlugin, client)
    // Enqueued whether or not this attempt created the row: a retried job whose first attempt
    // stored the message but failed before enqueueing must still notify. The unique key and the
    // delivery id (the message id) keep repeats harmless.
    notify = async (message) => {
      const { task, uniqueKey, maxAttempts } = notifyOfflineJob(message)
      await fastify.queue.enqueue(task, { queue: DEFAULT_QUEUE, uniqueKey, maxAttempts })
    }
  }
  await fastify.register(worker, { notify })
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
