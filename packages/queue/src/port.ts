// The queue port: what services see of background work, whichever backend runs it.
// Mirrors go-chatty's queue port (Task, Handler, Client, Server) so its task names carry over.

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
  /** While a job with this key is pending, enqueueing another is a no-op that returns the first id. */
  uniqueKey?: string
}

export interface JobContext {
  id: string
  attempt: number
  maxAttempts: number
  queue: string
  signal: AbortSignal
}

/** Throwing means "retry later" (until maxAttempts); returning means done. */
export type Handler<P = unknown> = (payload: P, job: JobContext) => Promise<void>

export interface QueueClient {
  enqueue<P>(task: Task<P>, options?: EnqueueOptions): Promise<string>
  close(): Promise<void>
}

export interface QueueServer {
  register<P>(type: string, handler: Handler<P>): void
  /** Processes jobs until the signal aborts, then finishes in-flight jobs and resolves. */
  run(signal: AbortSignal): Promise<void>
}
