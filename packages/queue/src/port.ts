// The queue port: what services see of background work, whichever backend runs it.
// Mirrors go-chatty's queue port (Task, Handler, Client, Server) so its task names carry over,
// plus the admin side a queue dashboard is built on.

export interface Task<P = unknown> {
  type: string
  payload: P
}

export interface EnqueueOptions {
  /** Named queue; weights come from WORKER_QUEUES. Defaults to "default". */
  queue?: string
  /** Run no earlier than this instant. */
  runAt?: Date
  /** Run after this many milliseconds (ignored when runAt is given). */
  delayMs?: number
  /** Attempts before the job ends in the failed state. Defaults to 25. */
  maxAttempts?: number
  /**
   * While a job with this key is unfinished in the same queue (waiting, scheduled, retrying or
   * running), enqueueing another is a no-op that returns the first id. The key is released when
   * that job completes, ends in the failed state or is deleted.
   */
  uniqueKey?: string
}

export interface JobContext {
  id: string
  type: string
  /** 1 on the first attempt. */
  attempt: number
  maxAttempts: number
  queue: string
  /** Aborts when the attempt times out or the job's lock was lost to another worker. */
  signal: AbortSignal
}

/**
 * Throwing means "retry later" (with backoff, until maxAttempts); returning means done. Throw a
 * PermanentJobError to skip the remaining attempts (e.g. a payload that can never be valid).
 */
export type Handler<P = unknown> = (payload: P, job: JobContext) => Promise<void>

export interface TaskOptions {
  /** Per-attempt timeout for this task type, overriding the server's timeoutMs. */
  timeoutMs?: number
  /**
   * Jobs of this type one slot runs at once [1]. For a task whose jobs mostly wait on work they
   * share (messages stored by one group commit), so that they share it in larger batches: the
   * server's concurrency counts slots, and each such job takes 1/perSlot of one. An integer
   * from 1 to 1000.
   */
  perSlot?: number
}

export interface QueueClient {
  enqueue<P>(task: Task<P>, options?: EnqueueOptions): Promise<string>
  close(): Promise<void>
}

export interface QueueServer {
  register<P>(type: string, handler: Handler<P>, options?: TaskOptions): void
  /** Processes jobs until the signal aborts, then finishes in-flight jobs and resolves. */
  run(signal: AbortSignal): Promise<void>
}

/**
 * pending: ready to run now; scheduled: waiting for its run time (a delayed enqueue or a retry
 * backoff; `attempts > 0` tells a retry apart); active: running; failed: out of attempts (or a
 * PermanentJobError), kept with its last error until retried or deleted.
 */
export type JobState = 'pending' | 'scheduled' | 'active' | 'failed'

export const JOB_STATES: readonly JobState[] = ['pending', 'scheduled', 'active', 'failed']

export interface JobInfo {
  id: string
  type: string
  queue: string
  payload: unknown
  state: JobState
  /** Attempts started so far. */
  attempts: number
  maxAttempts: number
  /** The error of the latest failed attempt, if any. */
  lastError: string | null
  createdAt: Date
  /** When a pending or scheduled job becomes runnable; null when not known. */
  runAt: Date | null
  /** When a failed job failed for the last time; null otherwise. */
  failedAt: Date | null
}

export type QueueCounts = { queue: string } & Record<JobState, number>

/** Attempts that finished in one minute, per queue. */
export interface ThroughputPoint {
  queue: string
  /** Start of the minute. */
  minute: Date
  completed: number
  /** Failed attempts, retried or not. */
  failed: number
}

export interface ListJobsFilter {
  state: JobState
  queue?: string
  /** Defaults to 50, at most 1000. */
  limit?: number
  offset?: number
}

/** Inspection and repair, for dashboards and operators. */
export interface QueueAdmin {
  /** One row per known queue (configured or holding jobs), every state present. */
  counts(): Promise<QueueCounts[]>
  /** Failed jobs newest first; pending and scheduled by run time; active newest first. */
  listJobs(filter: ListJobsFilter): Promise<JobInfo[]>
  getJob(id: string): Promise<JobInfo | undefined>
  /**
   * Runs a failed or scheduled job now (a failed job gets a fresh set of attempts). False when the
   * job does not exist or is running.
   */
  retryNow(id: string): Promise<boolean>
  /** Removes a job that is not running. False when it does not exist or is running. */
  delete(id: string): Promise<boolean>
  /** Per-minute completed and failed attempts since the given instant (kept for 24 hours). */
  throughput(since: Date): Promise<ThroughputPoint[]>
  close(): Promise<void>
}
