// Every statement the Postgres queue adapter runs, one named constant (or builder) per operation,
// grouped by the role that runs it: schema install, enqueue client, worker store, admin.
import type { JobState } from '../../port.ts'

/** A job's queue is a graphile-worker flag, `queue:<name>`; graphile-worker's own queue_name means "run serially". */
export const FLAG_PREFIX = 'queue:'
export const flagOf = (queue: string) => `${FLAG_PREFIX}${queue}`
/** graphile-worker notifies this channel from add_job; we reuse it when jobs become ready again. */
export const CHANNEL = 'jobs:insert'
export const SCHEMA_LOCK = 7_412_930_001

// ---- schema ----------------------------------------------------------------------------------

/** $1 lock key: serialises concurrent installs. */
export const LOCK_SCHEMA_SQL = 'SELECT pg_advisory_xact_lock($1)'

/** What this adapter adds to graphile-worker's schema: an index to claim by queue, the throughput table. */
export const INSTALL_SCHEMA_SQL = `
      CREATE INDEX IF NOT EXISTS chatty_jobs_queue_index
        ON graphile_worker._private_jobs (flags, priority, run_at, id) WHERE is_available;
      CREATE SCHEMA IF NOT EXISTS chatty_queue;
      CREATE TABLE IF NOT EXISTS chatty_queue.throughput (
        minute timestamptz NOT NULL,
        queue text NOT NULL,
        completed bigint NOT NULL DEFAULT 0,
        failed bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (minute, queue)
      );`

// ---- client ----------------------------------------------------------------------------------

/** One job: $1 type, $2 payload json, $3 run_at, $4 max_attempts, $5 job key, $6 queue flag. Returns `id`. */
export const ADD_JOB_SQL = `SELECT id::text AS id FROM graphile_worker.add_job($1, $2::json, run_at => $3::timestamptz, max_attempts => $4::int,
      job_key => $5::text, flags => ARRAY[$6::text], job_key_mode => 'unsafe_dedupe')`

// Many jobs in one statement: graphile-worker's add_jobs, which notifies workers once for all of
// them. add_job notifies once per job, and Postgres serialises the commits of notifying
// transactions (one queue-wide lock held through the WAL flush), so one add_job per request
// tops out at a few hundred jobs/s whatever the concurrency. add_jobs returns its rows in no
// particular order: they are matched back to their callers by type, queue, attempts and payload
// text (json keeps the text as sent); jobs equal in all of these are interchangeable. Task ids
// are read once per type: a task add_jobs has just created is not visible to its own statement.
export const ADD_JOBS_SQL = `
SELECT j.id::text AS id, j.task_id, j.max_attempts, j.payload::text AS payload,
       (SELECT k FROM jsonb_object_keys(j.flags) AS k LIMIT 1) AS flag
  FROM graphile_worker.add_jobs(ARRAY(
    SELECT ROW(s.identifier, s.payload, NULL, NULL, s.max_attempts, NULL, NULL, ARRAY[s.flag])::graphile_worker.job_spec
      FROM unnest($1::text[], $2::json[], $3::int2[], $4::text[]) WITH ORDINALITY AS s(identifier, payload, max_attempts, flag, ord)
     ORDER BY s.ord)) AS j`
export const ADD_JOBS_NAME = 'chatty_queue_add_jobs_v1'

/** $1 task ids: their type names. */
export const TASK_TYPES_SQL = 'SELECT id, identifier FROM graphile_worker._private_tasks WHERE id = ANY ($1::int[])'

// ---- worker store ----------------------------------------------------------------------------

export const LISTEN_SQL = `LISTEN "${CHANNEL}"`

/** $1 lock timeout (ms): jobs of a worker that stopped renewing its locks go back to the queue. */
export const RESCUE_STALE_SQL = `
      UPDATE graphile_worker._private_jobs AS jobs
         SET locked_at = NULL, locked_by = NULL, run_at = greatest(run_at, now()), updated_at = now(),
             last_error = 'worker ' || locked_by || ' stopped renewing its lock during attempt ' || attempts || ' (crashed or stalled)',
             key = CASE WHEN attempts >= max_attempts THEN NULL ELSE key END
       WHERE locked_at < now() - $1 * interval '1 millisecond' AND flags IS NOT NULL
      RETURNING id::text`

/** $1 channel, $2 payload. */
export const NOTIFY_SQL = 'SELECT pg_notify($1, $2)'

// Tries the queues in order in one round trip: the lateral subquery runs per queue until the
// queues tried so far yielded `max` jobs, and only those jobs are locked.
/** $1 worker id, $2 queue flags in order, $3 task types, $4 most jobs. */
export const CLAIM_SQL = `
        WITH picked AS (
          SELECT j.id, o.flag
            FROM unnest($2::text[]) AS o(flag)
            CROSS JOIN LATERAL (
              SELECT jobs.id
                FROM graphile_worker._private_jobs AS jobs
               WHERE jobs.is_available AND jobs.run_at <= now()
                 AND jobs.flags = jsonb_build_object(o.flag, true)
                 AND jobs.task_id IN (SELECT tasks.id FROM graphile_worker._private_tasks AS tasks WHERE tasks.identifier = ANY ($3::text[]))
               ORDER BY jobs.priority, jobs.run_at, jobs.id
               LIMIT $4
               FOR UPDATE OF jobs SKIP LOCKED
            ) AS j
           LIMIT $4
        )
        UPDATE graphile_worker._private_jobs AS jobs
           SET attempts = jobs.attempts + 1, locked_by = $1, locked_at = now()
          FROM picked
         WHERE jobs.id = picked.id
        RETURNING jobs.id::text AS id, picked.flag, jobs.payload, jobs.attempts, jobs.max_attempts,
          (SELECT identifier FROM graphile_worker._private_tasks WHERE id = jobs.task_id) AS type`
export const CLAIM_NAME = 'chatty_queue_claim_v2'

/**
 * $1 job ids, $2 worker id, $3 channel: jobs claimed ahead and never started go back as they were
 * before the claim (its attempt not counted), and workers hear of them.
 */
export const RELEASE_SQL = `
        WITH released AS (
          UPDATE graphile_worker._private_jobs
             SET attempts = greatest(attempts - 1, 0), locked_by = NULL, locked_at = NULL
           WHERE id = ANY ($1::bigint[]) AND locked_by = $2
          RETURNING id
        )
        SELECT pg_notify($3, json_build_object('count', count(*))::text) FROM released HAVING count(*) > 0`

/** $1 job ids, $2 worker id. A lock lost to the rescue but not yet re-claimed still counts: the work is done. */
export const COMPLETE_SQL = 'DELETE FROM graphile_worker._private_jobs WHERE id = ANY ($1::bigint[]) AND (locked_by = $2 OR locked_by IS NULL)'

// Failed state: out of attempts. max_attempts drops to the attempts made when a
// PermanentJobError ends it early, so `attempts` stays the true count. The unique key is
// released, as it is when a job completes.
/** $1 job id, $2 worker id, $3 error. */
export const FAIL_FOR_GOOD_SQL = `
          UPDATE graphile_worker._private_jobs
             SET last_error = $3, max_attempts = least(max_attempts, attempts), key = NULL,
                 locked_by = NULL, locked_at = NULL, updated_at = now()
           WHERE id = $1 AND locked_by = $2`

/** $1 job id, $2 worker id, $3 error, $4 retry in (ms). */
export const FAIL_RETRY_SQL = `
        UPDATE graphile_worker._private_jobs
           SET last_error = $3, run_at = now() + $4 * interval '1 millisecond',
               locked_by = NULL, locked_at = NULL, updated_at = now()
         WHERE id = $1 AND locked_by = $2`

/** $1 job ids, $2 worker id: returns the ids still locked by this worker. */
export const HEARTBEAT_SQL = 'UPDATE graphile_worker._private_jobs SET locked_at = now() WHERE id = ANY ($1::bigint[]) AND locked_by = $2 RETURNING id::text'

/** $1 queue flags: ms until the next scheduled job in them is due (null: none). */
export const NEXT_DUE_SQL = `
        SELECT (extract(epoch FROM min(run_at) - now()) * 1000)::float8 AS due_in_ms FROM graphile_worker._private_jobs
         WHERE is_available AND run_at > now()
           AND flags = ANY (ARRAY(SELECT jsonb_build_object(f, true) FROM unnest($1::text[]) AS f))`

/** $1 minutes, $2 queues, $3 completed, $4 failed; prunes what is older than 25 hours. */
export const RECORD_THROUGHPUT_SQL = `
    WITH pruned AS (DELETE FROM chatty_queue.throughput WHERE minute < now() - interval '25 hours')
    INSERT INTO chatty_queue.throughput AS t (minute, queue, completed, failed)
    SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::bigint[])
    ON CONFLICT (minute, queue) DO UPDATE
      SET completed = t.completed + excluded.completed, failed = t.failed + excluded.failed`

// ---- admin -----------------------------------------------------------------------------------

const QUEUE_OF = `(SELECT substr(k, ${FLAG_PREFIX.length + 1}) FROM jsonb_object_keys(jobs.flags) AS k WHERE k LIKE '${FLAG_PREFIX}%' LIMIT 1)`
const STATE_OF = `CASE WHEN jobs.locked_at IS NOT NULL THEN 'active'
  WHEN jobs.attempts >= jobs.max_attempts THEN 'failed'
  WHEN jobs.run_at > now() THEN 'scheduled' ELSE 'pending' END`
const STATE_FILTER: Record<JobState, { where: string, order: string }> = {
  active: { where: 'jobs.locked_at IS NOT NULL', order: 'jobs.locked_at DESC, jobs.id DESC' },
  failed: { where: 'jobs.locked_at IS NULL AND jobs.attempts >= jobs.max_attempts', order: 'jobs.updated_at DESC, jobs.id DESC' },
  scheduled: { where: 'jobs.locked_at IS NULL AND jobs.attempts < jobs.max_attempts AND jobs.run_at > now()', order: 'jobs.run_at, jobs.id' },
  pending: { where: 'jobs.locked_at IS NULL AND jobs.attempts < jobs.max_attempts AND jobs.run_at <= now()', order: 'jobs.priority, jobs.run_at, jobs.id' }
}
const JOB_COLUMNS = `jobs.id::text AS id, tasks.identifier AS type, ${QUEUE_OF} AS queue, jobs.payload, ${STATE_OF} AS state,
  jobs.attempts, jobs.max_attempts, jobs.last_error, jobs.created_at, jobs.run_at, jobs.updated_at`
const JOBS_FROM = `graphile_worker._private_jobs AS jobs JOIN graphile_worker._private_tasks AS tasks ON tasks.id = jobs.task_id`

/** Jobs per queue and state. */
export const COUNTS_SQL = `
        SELECT ${QUEUE_OF} AS queue, ${STATE_OF} AS state, count(*)::int AS n
          FROM graphile_worker._private_jobs AS jobs
         WHERE jobs.flags IS NOT NULL
         GROUP BY 1, 2`

/** $1 queue or null, $2 flag prefix, $3 limit, $4 offset: the jobs in `state`, in that state's order. */
export function listJobsSql (state: JobState): string {
  const { where, order } = STATE_FILTER[state]
  return `
        SELECT ${JOB_COLUMNS} FROM ${JOBS_FROM}
         WHERE jobs.flags IS NOT NULL AND ${where}
           AND ($1::text IS NULL OR jobs.flags = jsonb_build_object($2::text || $1::text, true))
         ORDER BY ${order}
         LIMIT $3 OFFSET $4`
}

/** $1 job id. */
export const GET_JOB_SQL = `SELECT ${JOB_COLUMNS} FROM ${JOBS_FROM} WHERE jobs.id = $1 AND jobs.flags IS NOT NULL`

/** $1 job id, $2 channel: runs a waiting job now (a fresh set of attempts if it had failed). */
export const RETRY_NOW_SQL = `
        WITH updated AS (
          UPDATE graphile_worker._private_jobs
             SET run_at = now(), updated_at = now(),
                 attempts = CASE WHEN attempts >= max_attempts THEN 0 ELSE attempts END
           WHERE id = $1 AND locked_at IS NULL AND flags IS NOT NULL
          RETURNING id
        )
        SELECT pg_notify($2, '{"count":1}') FROM updated`

/** $1 job id: deletes it unless it is running. */
export const DELETE_JOB_SQL = 'DELETE FROM graphile_worker._private_jobs WHERE id = $1 AND locked_at IS NULL AND flags IS NOT NULL'

/** $1 since: per-minute counts from that minute on. */
export const THROUGHPUT_SQL = `SELECT queue, minute, completed, failed FROM chatty_queue.throughput
            WHERE minute >= date_trunc('minute', $1::timestamptz) ORDER BY minute, queue`
