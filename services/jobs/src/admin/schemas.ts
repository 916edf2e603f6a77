// Request and answer shapes of the dashboard's JSON API (/admin/api).
import { Type, type Static } from 'typebox'

export const ErrorSchema = Type.Object({
  error: Type.String({ description: 'What went wrong, for people' }),
  code: Type.String({ description: 'What went wrong, for programs: bad_request, unauthorized, forbidden, not_found, job_running, internal_error' })
}, { description: 'Every error answer' })

export const JobStateSchema = Type.Union([Type.Literal('pending'), Type.Literal('scheduled'), Type.Literal('active'), Type.Literal('failed')], {
  description: 'pending: ready to run; scheduled: waiting for its run time (a delay or a retry backoff); active: running; failed: out of attempts'
})

const StateCountsSchema = Type.Object({
  pending: Type.Integer(),
  scheduled: Type.Integer(),
  active: Type.Integer(),
  failed: Type.Integer()
})

export const CountsSchema = Type.Object({
  backend: Type.Union([Type.Literal('postgres'), Type.Literal('redis')]),
  queues: Type.Array(Type.Object({
    queue: Type.String(),
    weight: Type.Union([Type.Integer(), Type.Null()], { description: 'Its weight in this process\'s WORKER_QUEUES; null for a queue this process does not serve' }),
    ...StateCountsSchema.properties
  })),
  total: StateCountsSchema
})

export const ThroughputQuerySchema = Type.Object({
  minutes: Type.Integer({ minimum: 1, maximum: 1440, default: 60, description: 'How far back, in minutes' })
})

export const ThroughputSchema = Type.Object({
  since: Type.String({ format: 'date-time', description: 'Start of the first minute' }),
  minutes: Type.Array(Type.Object({
    minute: Type.String({ format: 'date-time' }),
    completed: Type.Integer(),
    failed: Type.Integer({ description: 'Failed attempts, retried or not' })
  }), { description: 'One entry per minute, oldest first, every queue together' }),
  queues: Type.Array(Type.Object({
    queue: Type.String(),
    completed: Type.Integer(),
    failed: Type.Integer()
  }), { description: 'Totals over the whole window, per queue' })
})

export const QueueNameSchema = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' })

export const ListJobsQuerySchema = Type.Object({
  state: Type.Union([Type.Literal('pending'), Type.Literal('scheduled'), Type.Literal('active'), Type.Literal('failed')], { default: 'failed' }),
  queue: Type.Optional(QueueNameSchema),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  offset: Type.Integer({ minimum: 0, maximum: 100_000, default: 0 })
})

export const JobSchema = Type.Object({
  id: Type.String(),
  type: Type.String(),
  queue: Type.String(),
  state: JobStateSchema,
  attempts: Type.Integer({ description: 'Attempts started so far' }),
  max_attempts: Type.Integer(),
  last_error: Type.Union([Type.String(), Type.Null()], { description: 'The error of the latest failed attempt' }),
  payload: Type.Unknown(),
  created_at: Type.String({ format: 'date-time' }),
  run_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  failed_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
})

export const JobPageSchema = Type.Object({
  state: JobStateSchema,
  queue: Type.Union([QueueNameSchema, Type.Null()]),
  limit: Type.Integer(),
  offset: Type.Integer(),
  has_more: Type.Boolean(),
  jobs: Type.Array(JobSchema, { description: 'Failed and active jobs newest first; pending and scheduled by run time' })
})

export const JobParamsSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:-]+$', description: 'A job id as listed' })
})

export const RetriedSchema = Type.Object({ id: Type.String(), retried: Type.Literal(true) })

export const HealthSchema = Type.Object({ status: Type.Literal('ok') })

export const LoginBodySchema = Type.Object({ token: Type.String({ maxLength: 1000 }) })

export const PageQuerySchema = Type.Object({ token: Type.Optional(Type.String({ maxLength: 1000 })) })

export type Job = Static<typeof JobSchema>
