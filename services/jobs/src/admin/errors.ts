// The dashboard's errors, built on @chatty/server's HttpError (whose handler both services use),
// and its answer to an unknown route.
import type { FastifyInstance } from 'fastify'
import { HttpError } from '@chatty/server'

export const jobNotFound = (id: string) => new HttpError(404, 'not_found', `no job ${JSON.stringify(id)}`)
export const jobRunning = (id: string) => new HttpError(409, 'job_running', `job ${JSON.stringify(id)} is running; wait until it finishes`)
export const unauthorized = () => new HttpError(401, 'unauthorized', 'a valid admin token is required (Authorization: Bearer <JOBS_ADMIN_TOKEN>)', {},
  { 'www-authenticate': 'Bearer realm="chatty jobs"' })

/** An unknown route is an {error, code} answer too (the whole admin port, and /admin/api). */
export function setAdminNotFoundHandler (fastify: FastifyInstance): void {
  fastify.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}`, code: 'not_found' })
  })
}
