// Baseline: graphile-worker's own runner draining no-op jobs (a child process of bench/run.ts).
// Jobs live in a schema of their own (bench_graphile_worker) so chatty's workers never see them.
// The backlog is added first, then the runner (default settings, the given concurrency) is timed
// until every job has completed.
import { Logger, makeWorkerUtils, run, type Runner } from 'graphile-worker'
import { serveRequests } from '../lib/child.ts'

export interface DrainRequest {
  url: string
  jobs: number
  concurrency: number
  /** graphile-worker's batching options (preset.worker), e.g. { localQueue: { size: 11 }, completeJobBatchDelay: 0 }. */
  worker?: Record<string, unknown>
}

export interface DrainResult {
  jobs: number
  completed: number
  elapsedMs: number
  jobsPerSecond: number
}

const SCHEMA = 'bench_graphile_worker'
const quiet = { logger: new Logger(() => () => {}) }

async function drain (request: DrainRequest): Promise<DrainResult> {
  const utils = await makeWorkerUtils({ connectionString: request.url, schema: SCHEMA, ...quiet })
  try {
    await utils.migrate()
    await utils.withPgClient((client) => client.query(`DELETE FROM ${SCHEMA}._private_jobs`))
    for (let added = 0; added < request.jobs; added += 1000) {
      const n = Math.min(1000, request.jobs - added)
      await utils.addJobs(Array.from({ length: n }, (_, i) => ({ identifier: 'noop', payload: { n: added + i } })))
    }
  } finally {
    await utils.release()
  }
  let completed = 0
  const done = Promise.withResolvers<void>()
  let runner: Runner | undefined
  const started = performance.now()
  runner = await run({
    connectionString: request.url,
    schema: SCHEMA,
    concurrency: request.concurrency,
    noHandleSignals: true,
    ...quiet,
    pollInterval: 1000,
    taskList: {
      noop: async () => {
        completed++
        if (completed === request.jobs) done.resolve()
      }
    },
    preset: { worker: { ...request.worker } }
  })
  await Promise.race([done.promise, new Promise((resolve) => setTimeout(resolve, 120_000))])
  const elapsedMs = performance.now() - started
  await runner.stop()
  return { jobs: request.jobs, completed, elapsedMs, jobsPerSecond: completed / (elapsedMs / 1000) }
}

serveRequests({ drain })
