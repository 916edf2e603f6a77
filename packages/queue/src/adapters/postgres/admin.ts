// The Postgres queue's admin side: counts, job listings and the operator's retry and delete.
import pg from 'pg'
import { pinSessionSettings } from '@chatty/db'
import type { JobInfo, JobState, ListJobsFilter, QueueAdmin, QueueCounts } from '../../port.ts'
import { JOB_STATES } from '../../port.ts'
import { assertQueueName, checkQueueWeights, DEFAULT_QUEUE } from '../../weights.ts'
import { CHANNEL, COUNTS_SQL, DELETE_JOB_SQL, FLAG_PREFIX, GET_JOB_SQL, listJobsSql, RETRY_NOW_SQL, THROUGHPUT_SQL } from './sql.ts'

/** A job as the listing queries return it: JobInfo's plain fields, and the rest in the table's own terms. */
type JobRow = Pick<JobInfo, 'id' | 'type' | 'queue' | 'payload' | 'state' | 'attempts'> & {
  max_attempts: number
  last_error: string | null
  created_at: Date
  run_at: Date
  updated_at: Date
}

function toJobInfo (row: JobRow): JobInfo {
  return {
    id: row.id,
    type: row.type,
    queue: row.queue,
    payload: row.payload,
    state: row.state,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    lastError: row.last_error,
    createdAt: row.created_at,
    runAt: row.state === 'pending' || row.state === 'scheduled' ? row.run_at : null,
    failedAt: row.state === 'failed' ? row.updated_at : null
  }
}

const isJobId = (id: string) => /^[0-9]{1,18}$/.test(id)

export function createPostgresQueueAdmin (options: { connectionString: string, queues?: Record<string, number> }): QueueAdmin {
  const pool = new pg.Pool({ connectionString: pinSessionSettings(options.connectionString), max: 2 })
  pool.on('error', () => {})
  const configured = Object.keys(checkQueueWeights(options.queues ?? { [DEFAULT_QUEUE]: 1 }))
  return {
    async counts () {
      const { rows } = await pool.query<{ queue: string, state: JobState, n: number }>(COUNTS_SQL)
      const counts = new Map<string, QueueCounts>()
      const entry = (queue: string) => {
        let found = counts.get(queue)
        if (found === undefined) {
          found = { queue, pending: 0, scheduled: 0, active: 0, failed: 0 }
          counts.set(queue, found)
        }
        return found
      }
      for (const queue of configured) entry(queue)
      for (const row of rows) if (row.queue !== null) entry(row.queue)[row.state] += row.n
      return [...counts.values()]
    },

    async listJobs (filter: ListJobsFilter) {
      if (!JOB_STATES.includes(filter.state)) throw new RangeError(`unknown job state ${JSON.stringify(filter.state)}`)
      if (filter.queue !== undefined) assertQueueName(filter.queue)
      const { rows } = await pool.query<JobRow>(listJobsSql(filter.state),
        [filter.queue ?? null, FLAG_PREFIX, clampLimit(filter.limit), Math.max(0, filter.offset ?? 0)])
      return rows.map(toJobInfo)
    },

    async getJob (id: string) {
      if (!isJobId(id)) return undefined
      const { rows } = await pool.query<JobRow>(GET_JOB_SQL, [id])
      return rows[0] === undefined ? undefined : toJobInfo(rows[0])
    },

    async retryNow (id: string) {
      if (!isJobId(id)) return false
      const { rows } = await pool.query(RETRY_NOW_SQL, [id, CHANNEL])
      return rows.length > 0
    },

    async delete (id: string) {
      if (!isJobId(id)) return false
      const { rowCount } = await pool.query(DELETE_JOB_SQL, [id])
      return rowCount === 1
    },

    async throughput (since: Date) {
      try {
        const { rows } = await pool.query<{ queue: string, minute: Date, completed: string, failed: string }>(THROUGHPUT_SQL, [since.toISOString()])
        return rows.map((row) => ({ queue: row.queue, minute: row.minute, completed: Number(row.completed), failed: Number(row.failed) }))
      } catch (error) {
        if ((error as { code?: string }).code === '42P01') return [] // no worker has run yet
        throw error
      }
    },

    async close () {
      await pool.end()
    }
  }
}

function clampLimit (limit: number | undefined): number {
  return Math.min(Math.max(Math.trunc(limit ?? 50), 1), 1000)
}
