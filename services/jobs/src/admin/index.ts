// The queue dashboard the jobs service serves on JOBS_ADMIN_PORT: the page at /admin, its JSON
// API at /admin/api, and /healthz. Backed by the queue's admin port, so it works on both backends.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { createQueueAdmin } from '@chatty/queue'
import { guardRequests, handleErrors, HttpError } from '@chatty/server'
import { queueConfig } from '../plugins/env.ts'
import api from './api.ts'
import { createAdminAuth } from './auth.ts'
import { setAdminNotFoundHandler } from './errors.ts'
import page from './page.ts'
import { HealthSchema } from './schemas.ts'

const admin: FastifyPluginAsyncTypebox = async (fastify) => {
  const config = fastify.jobsConfig
  const queueAdmin = createQueueAdmin(queueConfig(config))
  fastify.addHook('onClose', () => queueAdmin.close())
  const auth = createAdminAuth(config.JOBS_ADMIN_TOKEN)
  if (!auth.required) fastify.log.warn('the queue dashboard is open: set JOBS_ADMIN_TOKEN to require a token')
  handleErrors(fastify, { failureMessage: 'admin request failed' })
  setAdminNotFoundHandler(fastify)
  // Checks made before anything else (Expect, Host, shutting down), as {error, code}.
  guardRequests(fastify)

  // A cookie-authenticated change must come from the page itself, not from another site's form.
  fastify.addHook('onRequest', async (request) => {
    if (request.method === 'GET' || request.method === 'HEAD') return
    const origin = request.headers.origin
    const host = `${request.protocol}://${request.headers.host ?? ''}`
    const sameOrigin = origin === undefined
      ? request.headers['sec-fetch-site'] !== 'cross-site'
      : URL.canParse(origin) && URL.canParse(host) && new URL(origin).host === new URL(host).host
    if (!sameOrigin) throw new HttpError(403, 'forbidden', 'cross-origin requests cannot change jobs')
  })

  fastify.get('/healthz', { schema: { summary: 'The jobs process is up', response: { 200: HealthSchema } } }, async () => ({ status: 'ok' as const }))
  await fastify.register(page, { prefix: '/admin', auth })
  await fastify.register(api, { prefix: '/admin/api', auth, admin: queueAdmin })
}

export default admin
