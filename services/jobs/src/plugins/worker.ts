// The queue worker: runs the chat tasks (tasks/) from ready until close, then finishes the jobs
// in flight before the database and the bus are let go (plugins close in reverse order).
import fp from 'fastify-plugin'
import { createQueueServer } from '@chatty/queue'
import { NOTIFY_OFFLINE_TASK, SEND_MESSAGE_TASK, type Message } from '@chatty/chat'
import { createPresenceStore } from '@chatty/presence'
import { queueConfig } from './env.ts'
import { sendMessageTask } from '../tasks/send-message.ts'
import { notifyOfflineTask } from '../tasks/notify-offline.ts'

/** chat:send_message jobs one worker slot runs at once. */
const SEND_MESSAGES_PER_SLOT = 16

export interface WorkerOptions {
  /** Queues the offline notification of a stored message; absent without WEBHOOK_URL. */
  notify?: (message: Message) => Promise<void>
}

export default fp<WorkerOptions>(async (fastify, options) => {
  const config = fastify.jobsConfig
  const server = createQueueServer(queueConfig(config, (level, message) => fastify.log[level === 'error' ? 'error' : 'warn']({ queue: true }, message)))
  const webhook = config.WEBHOOK_URL === undefined
    ? undefined
    : { url: config.WEBHOOK_URL, secret: config.WEBHOOK_SECRET!, timeoutMs: config.WEBHOOK_TIMEOUT_MS }
  // Who has no socket open, for the offline notifications: only read here (the TTL is the api
  // processes' business).
  const presence = webhook === undefined ? undefined : createPresenceStore({
    db: fastify.db,
    redisUrl: config.REDIS_URL,
    ttlMs: 30_000,
    keyPrefix: `${config.REDIS_KEY_PREFIX}presence:`,
    onError: (err) => fastify.log.warn({ err, presence: true }, 'presence store error')
  })
  // A send job mostly waits for the group commit that stores its message with others, so a slot
  // runs several: WORKER_CONCURRENCY slots store up to that many times SEND_MESSAGES_PER_SLOT
  // messages at once, in larger batches.
  server.register(SEND_MESSAGE_TASK, sendMessageTask({ chat: fastify.chat, feed: fastify.feed, notify: options.notify, log: fastify.log }), { perSlot: SEND_MESSAGES_PER_SLOT })
  server.register(NOTIFY_OFFLINE_TASK, notifyOfflineTask({ db: fastify.db, presence, webhook, log: fastify.log }), { timeoutMs: config.WEBHOOK_TIMEOUT_MS + 5000 })

  const stop = new AbortController()
  let running: Promise<void> | undefined
  fastify.addHook('onReady', async () => {
    running = server.run(stop.signal).catch((err: unknown) => {
      fastify.log.error({ err }, 'queue worker stopped with an error')
    })
  })
  fastify.addHook('onClose', async () => {
    stop.abort()
    await running
    await presence?.close()
  })
}, { name: 'worker', dependencies: ['config', 'chat', 'feed'] })
