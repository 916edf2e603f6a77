// The queue dashboard the jobs service serves on JOBS_ADMIN_PORT: the page at /admin, its JSON
// API at /admin/api, and /healthz. Backed by the queue's admin port, so it works on both backends.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { createQueueAdmin } from '@chatty/queue'
import { answerExpectationFailed, lacksHost } from '@chatty/server'
import { queueConfig } from '../plugins/env.ts'
import api from './api.ts'
import { createAdminAuth } from './auth.ts'
import { AdminError, setAdminErrorHandler, setAdminNotFoundHandler } from './errors.ts'
import page from './page.ts'
import { HealthSchema } from './schemas.ts'

const admin: FastifyPluginAsyncTypebox = async (fastify) => {
  const config = fastify.jobsConfig
  const queueAdmin = createQueueAdmin(queueConfig(config))
  fastify.addHook('onClose', () => queueAdmin.close())
  const auth = createAdminAuth(config.JOBS_ADMIN_TOKEN)
  if (!auth.required) fastify.log.warn('the queue dashboard is open: set JOBS_ADMIN_TOKEN to require a token')
  setAdminErrorHandler(fastify)
  setAdminNotFoundHandler(fastify)
  // Checks Node makes before Fastify, answered here as {error, code} (@chatty/server).
  fastify.server.on('checkExpectation', answerExpectationFailed)
  // Requests that arrive on an open connection once close() began: Fastify's own answer
  // (return503OnClosing, off in buildJobs) is {error, message, statusCode}.
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  fastify.addHook('onRequest', async (request, reply) => {
    if (lacksHost(request)) throw new AdminError(400, 'bad_request', 'an HTTP/1.1 request needs a Host header')
    if (closing) {
      void reply.header('connection', 'close')
      throw new AdminError(503, 'unavailable', 'the jobs service is shutting down; retry')
    }
  })

  // A cookie-authenticated change must come from the page itself, not from another site's form.
  fastify.addHook('onRequest', async (request) => {
    if (request.method === 'GET' || request.method === 'HEAD') return
    const origin = request.headers.origin
    const host = `${request.protocol}://${request.headers.host ?? ''}`
    const sameOrigin = origin === undefined
      ? request.headers['sec-fetch-site'] !== 'cross-site'
      : URL.canParse(origin) && URL.canParse(host) && new URL(origin).host === new URL(host).host
    if (!sameOrigin) throw new AdminError(403, 'forbidden', 'cross-origin requests cannot change jobs')
  })

  fastify.get('/healthz', { schema: { summary: 'The jobs process is up', response: { 200: HealthSchema } } }, async () => ({ status: 'ok' as const }))
  await fastify.register(page, { prefix: '/admin', auth })
  await fastify.register(api, { prefix: '/admin/api', auth, admin: queueAdmin })
}

export default admin
