// The dashboard's JSON API (/admin/api), over the queue's admin port, so it reads and repairs
// either backend the same way.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { parseQueueWeights, type JobInfo, type QueueAdmin } from '@chatty/queue'
import type { AdminAuth } from './auth.ts'
import { jobNotFound, jobRunning, setAdminNotFoundHandler, unauthorized } from './errors.ts'
import {
  CountsSchema, ErrorSchema, JobPageSchema, JobParamsSchema, JobSchema, ListJobsQuerySchema, RetriedSchema,
  ThroughputQuerySchema, ThroughputSchema, type Job
} from './schemas.ts'

const MINUTE = 60_000

export function toJob (info: JobInfo): Job {
  return {
    id: info.id,
    type: info.type,
    queue: info.queue,
    state: info.state,
    attempts: info.attempts,
    max_attempts: info.maxAttempts,
    last_error: info.lastError,
    payload: info.payload,
    created_at: info.createdAt.toISOString(),
    run_at: info.runAt?.toISOString() ?? null,
    failed_at: info.failedAt?.toISOString() ?? null
  }
}

/** The job, or a 404; a 409 when it is running, which the port cannot retry or delete. */
async function repairable (admin: QueueAdmin, id: string): Promise<JobInfo> {
  const job = await admin.getJob(id)
  if (job === undefined) throw jobNotFound(id)
  if (job.state === 'active') throw jobRunning(id)
  return job
}

/** After the port said no: tell a job that has gone from one that started running meanwhile. */
async function refusal (admin: QueueAdmin, id: string): Promise<Error> {
  return (await admin.getJob(id)) === undefined ? jobNotFound(id) : jobRunning(id)
}

const routes: FastifyPluginAsyncTypebox<{ auth: AdminAuth, admin: QueueAdmin }> = async (fastify, { auth, admin }) => {
  const config = fastify.jobsConfig
  const weights = parseQueueWeights(config.WORKER_QUEUES)
  const denied = { 400: ErrorSchema, 401: ErrorSchema, 500: ErrorSchema }

  setAdminNotFoundHandler(fastify)
  fastify.addHook('onRequest', async (request) => {
    if (!auth.allows(request.headers)) throw unauthorized()
  })

  fastify.get('/counts', {
    schema: { summary: 'Jobs per queue and state', response: { 200: CountsSchema, ...denied } }
  }, async () => {
    const counts = await admin.counts()
    const total = { pending: 0, scheduled: 0, active: 0, failed: 0 }
    const queues = counts
      .map((row) => {
        for (const state of ['pending', 'scheduled', 'active', 'failed'] as const) total[state] += row[state]
        return { queue: row.queue, weight: weights[row.queue] ?? null, pending: row.pending, scheduled: row.scheduled, active: row.active, failed: row.failed }
      })
      // Served queues first, heaviest first, as WORKER_QUEUES lists them; then the others by name.
      .sort((a, b) => (b.weight ?? 0) - (a.weight ?? 0) || a.queue.localeCompare(b.queue))
    return { backend: config.QUEUE_BACKEND, queues, total }
  })

  fastify.get('/throughput', {
    schema: { summary: 'Completed and failed attempts per minute', querystring: ThroughputQuerySchema, response: { 200: ThroughputSchema, ...denied } }
  }, async (request) => {
    const { minutes } = request.query
    const first = Math.floor(Date.now() / MINUTE) * MINUTE - (minutes - 1) * MINUTE
    const buckets = Array.from({ length: minutes }, (_, i) => ({ minute: first + i * MINUTE, completed: 0, failed: 0 }))
    const perQueue = new Map<string, { queue: string, completed: number, failed: number }>()
    for (const point of await admin.throughput(new Date(first))) {
      const bucket = buckets[Math.floor((point.minute.getTime() - first) / MINUTE)]
      if (bucket === undefined) continue
      bucket.completed += point.completed
      bucket.failed += point.failed
      const queue = perQueue.get(point.queue) ?? { queue: point.queue, completed: 0, failed: 0 }
      queue.completed += point.completed
      queue.failed += point.failed
      perQueue.set(point.queue, queue)
    }
    return {
      since: new Date(first).toISOString(),
      minutes: buckets.map((bucket) => ({ ...bucket, minute: new Date(bucket.minute).toISOString() })),
      queues: [...perQueue.values()].sort((a, b) => a.queue.localeCompare(b.queue))
    }
  })

  fastify.get('/jobs', {
    schema: { summary: 'One page of the jobs in a state (failed by default)', querystring: ListJobsQuerySchema, response: { 200: JobPageSchema, ...denied } }
  }, async (request) => {
    const { state, queue, limit, offset } = request.query
    // One more than asked tells whether there is a next page.
    const jobs = await admin.listJobs({ state, queue, limit: limit + 1, offset })
    return { state, queue: queue ?? null, limit, offset, has_more: jobs.length > limit, jobs: jobs.slice(0, limit).map(toJob) }
  })

  fastify.get('/jobs/:id', {
    schema: { summary: 'One job', params: JobParamsSchema, response: { 200: JobSchema, 404: ErrorSchema, ...denied } }
  }, async (request) => {
    const job = await admin.getJob(request.params.id)
    if (job === undefined) throw jobNotFound(request.params.id)
    return toJob(job)
  })

  fastify.post('/jobs/:id/retry', {
    schema: {
      summary: 'Run a failed or scheduled job now (a failed job gets a fresh set of attempts)',
      params: JobParamsSchema,
      response: { 202: RetriedSchema, 404: ErrorSchema, 409: ErrorSchema, 403: ErrorSchema, ...denied }
    }
  }, async (request, reply) => {
    const { id } = request.params
    await repairable(admin, id)
    if (!(await admin.retryNow(id))) throw await refusal(admin, id)
    request.log.info({ job: id }, 'job retried from the dashboard')
    return reply.code(202).send({ id, retried: true })
  })

  fastify.delete('/jobs/:id', {
    schema: {
      summary: 'Remove a job that is not running',
      params: JobParamsSchema,
      response: { 204: Type.Null(), 404: ErrorSchema, 409: ErrorSchema, 403: ErrorSchema, ...denied }
    }
  }, async (request, reply) => {
    const { id } = request.params
    await repairable(admin, id)
    if (!(await admin.delete(id))) throw await refusal(admin, id)
    request.log.info({ job: id }, 'job deleted from the dashboard')
    return reply.code(204).send(null)
  })
}

export default routes
