// Postgres queue adapter on graphile-worker: jobs live in the same database as the chat data.
import { Logger, makeWorkerUtils, run, runMigrations, type LogFunctionFactory, type Runner, type TaskList, type WorkerUtils } from 'graphile-worker'
import type pg from 'pg'
import type { EnqueueOptions, Handler, QueueClient, QueueServer, Task } from '../port.ts'

export interface PostgresQueueOptions {
  connectionString: string
  concurrency?: number
  pollIntervalMs?: number
  log?: (level: string, message: string) => void
}

function makeLogger (log?: PostgresQueueOptions['log']): Logger {
  const factory: LogFunctionFactory = () => (level, message) => {
    if (level === 'error' || level === 'warning') log?.(level, message)
  }
  return new Logger(factory)
}

/** Installs graphile-worker's own schema; safe to run concurrently and repeatedly. */
export async function installQueueSchema (connectionString: string): Promise<void> {
  await runMigrations({ connectionString, logger: makeLogger() })
}

function toSpec (options: EnqueueOptions) {
  const runAt = options.runAt ?? (options.delayMs !== undefined ? new Date(Date.now() + options.delayMs) : undefined)
  return {
    runAt,
    maxAttempts: options.maxAttempts,
    jobKey: options.uniqueKey,
    jobKeyMode: options.uniqueKey === undefined ? undefined : 'unsafe_dedupe' as const
  }
}

export function createPostgresQueueClient (options: PostgresQueueOptions): QueueClient {
  let utils: Promise<WorkerUtils> | undefined
  const getUtils = () => (utils ??= makeWorkerUtils({ connectionString: options.connectionString, logger: makeLogger(options.log) }))
  return {
    async enqueue<P>(task: Task<P>, enqueueOptions: EnqueueOptions = {}): Promise<string> {
      const job = await (await getUtils()).addJob(task.type, task.payload as unknown as object, toSpec(enqueueOptions))
      return String(job.id)
    },
    async close () {
      if (utils !== undefined) await (await utils).release()
    }
  }
}

/** Adds a job inside the caller's transaction: it exists exactly when the caller's rows commit. */
export async function enqueueInTransaction<P> (client: pg.ClientBase, task: Task<P>, options: EnqueueOptions = {}): Promise<string> {
  const spec = toSpec(options)
  const { rows } = await client.query<{ id: string }>(
    'SELECT id FROM graphile_worker.add_job($1, $2::json, run_at => $3, max_attempts => $4, job_key => $5, job_key_mode => $6)',
    [task.type, JSON.stringify(task.payload), spec.runAt?.toISOString() ?? null, spec.maxAttempts ?? null, spec.jobKey ?? null, spec.jobKeyMode ?? null]
  )
  return String(rows[0]!.id)
}

export function createPostgresQueueServer (options: PostgresQueueOptions): QueueServer {
  const taskList: TaskList = {}
  return {
    register<P>(type: string, handler: Handler<P>) {
      taskList[type] = async (payload, helpers) => {
        await handler(payload as P, {
          id: String(helpers.job.id),
          attempt: helpers.job.attempts,
          maxAttempts: helpers.job.max_attempts,
          queue: 'default',
          signal: helpers.abortSignal ?? new AbortController().signal
        })
      }
    },
    async run (signal: AbortSignal) {
      const runner: Runner = await run({
        connectionString: options.connectionString,
        concurrency: options.concurrency ?? 10,
        pollInterval: options.pollIntervalMs ?? 2000,
        noHandleSignals: true,
        logger: makeLogger(options.log),
        taskList
      })
      const stop = () => { runner.stop().catch(() => {}) }
      if (signal.aborted) stop()
      else signal.addEventListener('abort', stop, { once: true })
      await runner.promise
    }
  }
}
