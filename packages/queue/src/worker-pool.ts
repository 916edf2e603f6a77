// The worker side both backends share: concurrency, weighted queue choice, per-attempt timeouts,
// retries with backoff, lock heartbeats, throughput counts and a graceful drain. A backend only
// supplies a JobStore: claim, complete, fail, heartbeat, wait for work.
import { createRetryDelay, type BackoffOptions, type RetryDelay } from './backoff.ts'
import { JobLockLostError, JobTimeoutError, PermanentJobError } from './errors.ts'
import type { Handler, JobContext, QueueServer, TaskOptions, ThroughputPoint } from './port.ts'
import { checkQueueWeights, DEFAULT_QUEUE, QueuePicker } from './weights.ts'

export type Log = (level: 'error' | 'warning' | 'info', message: string) => void

export interface ClaimedJob {
  id: string
  type: string
  queue: string
  payload: unknown
  /** 1 on the first attempt. */
  attempt: number
  maxAttempts: number
}

export interface JobStore<J extends ClaimedJob = ClaimedJob> {
  /** Locks the first ready job of the first queue (in this order) that has one, for a type we handle. */
  claim (queues: readonly string[], types: readonly string[]): Promise<J | undefined>
  /**
   * Up to `max` jobs in one round trip, taken from the queues in this order (the first queue's
   * jobs first), for workers with several free slots. Optional: claim() is used without it.
   */
  claimMany? (queues: readonly string[], types: readonly string[], max: number): Promise<J[]>
  /**
   * Gives claimed jobs that were never started back to the queue as if never claimed (attempt
   * count restored). Optional: without it (or claimMany) jobs are not claimed ahead.
   */
  release? (jobs: readonly J[]): Promise<void>
  complete (job: J): Promise<void>
  /** Schedules another attempt in retryInMs, or (undefined) moves the job to the failed state. */
  fail (job: J, error: Error, retryInMs: number | undefined): Promise<void>
  /** Keeps the locks of running jobs alive; returns the ids whose lock is gone. */
  heartbeat (jobs: readonly J[]): Promise<string[]>
  /** Resolves when new work may be ready, after maxMs at the latest, or when signal aborts. */
  waitForWork (maxMs: number, signal: AbortSignal): Promise<void>
  recordThroughput (points: readonly ThroughputPoint[]): Promise<void>
  close (): Promise<void>
}

export interface WorkerPoolOptions {
  concurrency: number
  queues: Record<string, number>
  timeoutMs: number
  retryDelay: RetryDelay
  /** A job whose lock is not renewed for this long is given to another worker. */
  lockTimeoutMs: number
  /** Longest idle wait between looks for work when no notification arrives. */
  pollIntervalMs: number
  /** Jobs claimed ahead of free slots, started as soon as a slot frees (0: none). */
  prefetch: number
  log: Log
}

/** Worker settings both adapters take (all optional; defaults in brackets). */
export interface QueueServerOptions {
  /** Slots of this process: each runs one job at a time, or a task's perSlot jobs [10]. */
  concurrency?: number
  /** Queues this process serves and their weights [{ default: 1 }]. */
  queues?: Record<string, number>
  /** Per-attempt timeout unless the task was registered with its own [60_000 ms]. */
  timeoutMs?: number
  /** Retry delays [base 1 s, doubling, max 1 h, jitter 0.5]. */
  backoff?: BackoffOptions
  /**
   * A running job's lock lasts this long without renewal; the worker renews it every third of
   * it. When a worker dies mid-job, another takes the job over within about 2 x this [30_000 ms].
   * Every worker sharing a queue must use the same value.
   */
  lockTimeoutMs?: number
  /** Idle look for work when no notification arrived (a safety net) [2000 ms]. */
  pollIntervalMs?: number
  /**
   * Slots' worth of jobs (jobs, times the largest perSlot registered) claimed ahead, held locked
   * (and renewed) until a slot frees, so a freed slot starts its
   * next job without waiting for a claim; given back unstarted when run() is aborted. Only with
   * a backend that claims in batches (Postgres) [0].
   */
  prefetch?: number
  log?: (level: string, message: string) => void
}

export function resolveServerOptions (options: QueueServerOptions): WorkerPoolOptions {
  const resolved: WorkerPoolOptions = {
    concurrency: options.concurrency ?? 10,
    queues: checkQueueWeights(options.queues ?? { [DEFAULT_QUEUE]: 1 }),
    timeoutMs: options.timeoutMs ?? 60_000,
    retryDelay: createRetryDelay(options.backoff),
    lockTimeoutMs: options.lockTimeoutMs ?? 30_000,
    pollIntervalMs: options.pollIntervalMs ?? 2000,
    prefetch: options.prefetch ?? 0,
    log: options.log ?? (() => {})
  }
  for (const key of ['concurrency', 'timeoutMs', 'lockTimeoutMs', 'pollIntervalMs'] as const) {
    const value = resolved[key]
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${key} must be a positive integer, got ${value}`)
  }
  if (!Number.isInteger(resolved.prefetch) || resolved.prefetch < 0) throw new RangeError(`prefetch must be a non-negative integer, got ${resolved.prefetch}`)
  return resolved
}

interface Registered {
  handler: Handler<any>
  timeoutMs: number | undefined
  perSlot: number
}

interface Running<J> {
  job: J
  controller: AbortController
  done: Promise<void>
}

const THROUGHPUT_FLUSH_MS = 5000

/** A QueueServer over a store opened when run() starts and closed when it ends. */
export function createWorkerPoolServer<J extends ClaimedJob> (openStore: () => Promise<JobStore<J>>, options: WorkerPoolOptions): QueueServer {
  const handlers = new Map<string, Registered>()
  let running = false
  return {
    register<P>(type: string, handler: Handler<P>, taskOptions: TaskOptions = {}) {
      if (taskOptions.timeoutMs !== undefined && !(taskOptions.timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${taskOptions.timeoutMs}`)
      const perSlot = taskOptions.perSlot ?? 1
      if (!Number.isInteger(perSlot) || perSlot < 1 || perSlot > 1000) throw new RangeError(`perSlot must be an integer from 1 to 1000, got ${perSlot}`)
      handlers.set(type, { handler, timeoutMs: taskOptions.timeoutMs, perSlot })
    },
    async run (signal: AbortSignal) {
      if (running) throw new Error('this queue server is already running')
      if (handlers.size === 0) throw new Error('no task handlers registered: call register() before run()')
      running = true
      try {
        const store = await openStore()
        await runPool(store, handlers, options, signal)
      } finally {
        running = false
      }
    }
  }
}

async function runPool<J extends ClaimedJob> (store: JobStore<J>, handlers: Map<string, Registered>, options: WorkerPoolOptions, signal: AbortSignal): Promise<void> {
  const { log } = options
  const picker = new QueuePicker(options.queues)
  const inFlight = new Map<string, Running<J>>()
  const slots = new SlotCounter(options.concurrency, handlers)
  // Claimed ahead and locked, waiting for a slot (see QueueServerOptions.prefetch): as many
  // slots' worth of jobs, counted as jobs of the task with the most per slot.
  const prefetch = store.claimMany !== undefined && store.release !== undefined ? options.prefetch * slots.mostPerSlot : 0
  let ready: J[] = []
  /** Completions being recorded, of jobs whose slot is already free. */
  const completions = new Set<Promise<void>>()
  const throughput = new ThroughputCounter()
  let slotFreed = Promise.withResolvers<void>()
  const aborted = new Promise<void>((resolve) => {
    if (signal.aborted) resolve()
    else signal.addEventListener('abort', () => resolve(), { once: true })
  })

  const heartbeat = setInterval(() => {
    if (inFlight.size === 0 && ready.length === 0) return
    store.heartbeat([...[...inFlight.values()].map((entry) => entry.job), ...ready]).then((lost) => {
      if (lost.length === 0) return
      const gone = new Set(lost)
      ready = ready.filter((job) => !gone.has(job.id))
      for (const id of lost) inFlight.get(id)?.controller.abort(new JobLockLostError())
    }, (error: unknown) => log('error', `could not renew job locks: ${messageOf(error)}`))
  }, Math.max(10, Math.floor(options.lockTimeoutMs / 3)))
  const flush = async () => {
    const points = throughput.take()
    if (points.length === 0) return
    await store.recordThroughput(points).catch((error: unknown) => log('warning', `could not record throughput: ${messageOf(error)}`))
  }
  const flushTimer = setInterval(flush, THROUGHPUT_FLUSH_MS)

  const finish = async (job: J, registered: Registered | undefined, controller: AbortController) => {
    let failure: Error | undefined
    try {
      if (registered === undefined) throw new Error(`no handler registered for task type "${job.type}"`)
      await attempt(registered.handler, job, controller, registered.timeoutMs ?? options.timeoutMs)
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error))
    }
    if (controller.signal.reason instanceof JobLockLostError) {
      log('warning', `job ${job.id} (${job.type}) lost its lock mid-attempt; its outcome is dropped and it runs again elsewhere`)
      return
    }
    throughput.add(job.queue, failure === undefined)
    if (failure === undefined) {
      // The slot is free once the work is done: the completion is recorded meanwhile (batched
      // with others by the store), so the next claim does not wait for it. Until it is recorded
      // the job stays locked, and should the process die first, it runs again (handlers are
      // idempotent: the at-least-once contract of every queue).
      const completion: Promise<void> = store.complete(job)
        .catch((error: unknown) => log('error', `could not record the outcome of job ${job.id} (${job.type}): ${messageOf(error)}; it runs again once its lock expires`))
        .finally(() => completions.delete(completion))
      completions.add(completion)
      return
    }
    try {
      const final = failure instanceof PermanentJobError || job.attempt >= job.maxAttempts
      const retryInMs = final ? undefined : options.retryDelay(job.attempt)
      log(final ? 'error' : 'warning', `job ${job.id} (${job.type}, queue ${job.queue}) attempt ${job.attempt} of ${job.maxAttempts} failed: ${failure.message}; ${final ? 'it is now in the failed state' : `retrying in ${retryInMs} ms`}`)
      await store.fail(job, failure, retryInMs)
    } catch (error) {
      log('error', `could not record the outcome of job ${job.id} (${job.type}): ${messageOf(error)}; it runs again once its lock expires`)
    }
  }

  const start = (job: J) => {
    const entry: Running<J> = { job, controller: new AbortController(), done: Promise.resolve() }
    inFlight.set(job.id, entry)
    slots.take(job.type)
    entry.done = finish(job, handlers.get(job.type), entry.controller).finally(() => {
      slots.give(job.type)
      if (inFlight.get(job.id) === entry) inFlight.delete(job.id)
      // A job claimed ahead takes the slot at once, in this turn: the jobs of one batch (one
      // group commit) that finish together start the next batch together.
      if (!signal.aborted) startReady()
      slotFreed.resolve()
      slotFreed = Promise.withResolvers<void>()
    })
  }

  /** Starts the jobs held, in the order claimed, while the next one fits in the free slots. */
  const startReady = () => {
    while (ready.length > 0 && slots.fits(ready[0]!.type)) start(ready.shift()!)
  }

  /** After a failed claim or wait: logs it and waits a poll interval (at least a second). */
  const backOff = async (what: string, error: unknown) => {
    log('error', `could not ${what}: ${messageOf(error)}`)
    await Promise.race([delay(Math.max(options.pollIntervalMs, 1000)), aborted])
  }
  /** Nothing to claim: until a job is added, a poll interval passes, or the pool stops. */
  const waitForWork = async () => {
    try {
      await Promise.race([store.waitForWork(options.pollIntervalMs, signal), aborted])
    } catch (error) {
      await backOff('wait for jobs', error)
    }
  }
  /** The queues before a job's queue had no more jobs for this claim. */
  const charge = (jobs: J[], order: string[]) => {
    for (const job of jobs) picker.charge(job.queue, order.slice(0, Math.max(0, order.indexOf(job.queue))))
  }

  try {
    while (!signal.aborted) {
      if (prefetch > 0) {
        // Claim when the jobs held ahead have fallen to half the prefetch, enough to fill the
        // free slots and the prefetch again, at most what the slots can run at once: a claim
        // takes its jobs from the first queue of the order that has them, so a larger claim
        // would make the weighted shares coarser than without prefetch.
        const want = Math.min(slots.mostJobs, slots.freeJobs() + prefetch - ready.length)
        if (ready.length > prefetch / 2 || want <= 0) {
          await Promise.race([slotFreed.promise, aborted])
          await new Promise((resolve) => setImmediate(resolve))
          continue
        }
        if (completions.size >= slots.mostJobs) {
          await Promise.race([Promise.race(completions), aborted])
          continue
        }
        const order = picker.order()
        let jobs: J[]
        try {
          jobs = await store.claimMany!(order, [...handlers.keys()], want)
        } catch (error) {
          await backOff('fetch jobs', error)
          continue
        }
        charge(jobs, order)
        if (signal.aborted) {
          // Claimed while stopping: back to the queue unstarted.
          ready.push(...jobs)
          break
        }
        ready.push(...jobs)
        startReady()
        if (jobs.length === 0) await waitForWork()
        continue
      }
      // Without prefetch a claim waits for room for any job (a whole slot) and for the jobs
      // claimed before to have started.
      if (!slots.fitsAny() || ready.length > 0) {
        await Promise.race([slotFreed.promise, aborted])
        // Jobs finishing together (one group commit, one batched completion) free their slots in
        // the same turn: wait for the turn to end and claim for all of them in one round trip.
        await new Promise((resolve) => setImmediate(resolve))
        continue
      }
      // Completions not yet recorded are bounded too: a store that has become slow to record
      // them (a database going away) holds back new claims.
      if (completions.size >= slots.mostJobs) {
        await Promise.race([Promise.race(completions), aborted])
        continue
      }
      const order = picker.order()
      // As many as could run now; a store that cannot give jobs back claims only what is sure
      // to start at once.
      const free = store.release === undefined ? slots.freeWholeSlots() : slots.freeJobs()
      let jobs: J[]
      try {
        if (free > 1 && store.claimMany !== undefined) {
          jobs = await store.claimMany(order, [...handlers.keys()], free)
        } else {
          const job = await store.claim(order, [...handlers.keys()])
          jobs = job === undefined ? [] : [job]
        }
      } catch (error) {
        await backOff('fetch jobs', error)
        continue
      }
      if (jobs.length === 0) {
        await waitForWork()
        continue
      }
      charge(jobs, order)
      ready.push(...jobs)
      startReady()
    }
    // Graceful drain: no new claims; jobs claimed ahead go back unstarted; in-flight jobs finish
    // (each bounded by its timeout) while the heartbeat keeps their locks.
    if (ready.length > 0) {
      const unstarted = ready
      ready = []
      await store.release!(unstarted).catch((error: unknown) => log('error', `could not give back ${unstarted.length} job(s) claimed ahead: ${messageOf(error)}; they run again once their locks expire`))
    }
    await Promise.allSettled([...inFlight.values()].map((entry) => entry.done))
    await Promise.allSettled([...completions])
  } finally {
    clearInterval(heartbeat)
    clearInterval(flushTimer)
    await flush()
    await store.close()
  }
}

/** Runs one attempt; rejects with the abort reason as soon as the timeout (or a lost lock) aborts it. */
function attempt (handler: Handler<any>, job: ClaimedJob, controller: AbortController, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { signal } = controller
    const onAbort = () => reject(signal.reason)
    const timer = setTimeout(() => controller.abort(new JobTimeoutError(timeoutMs)), timeoutMs)
    signal.addEventListener('abort', onAbort, { once: true })
    const context: JobContext = { id: job.id, type: job.type, attempt: job.attempt, maxAttempts: job.maxAttempts, queue: job.queue, signal }
    // A handler that ignores its signal keeps running after the timeout; its late outcome is ignored.
    Promise.resolve()
      .then(() => handler(job.payload, context))
      .then(() => resolve(), reject)
      .finally(() => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
      })
  })
}

/**
 * The pool's slots, in units: a slot is `unit` units, and a job of a task run `perSlot` to a
 * slot takes unit / perSlot of them (unit is the least common multiple of the tasks' perSlot,
 * so every share is whole).
 */
class SlotCounter {
  readonly #capacity: number
  readonly #unit: number
  readonly #cost = new Map<string, number>()
  readonly #leastCost: number
  #used = 0
  /** The most jobs of one task a slot runs at once. */
  readonly mostPerSlot: number
  /** The most jobs that can run at once: every slot full of the task with the most per slot. */
  readonly mostJobs: number

  constructor (concurrency: number, handlers: ReadonlyMap<string, Registered>) {
    const perSlot = [...handlers.values()].map((registered) => registered.perSlot)
    this.#unit = perSlot.reduce(lcm, 1)
    if (this.#unit > 1_000_000) throw new RangeError(`the tasks' perSlot values (${perSlot.join(', ')}) have too large a common multiple: use values that divide each other`)
    for (const [type, registered] of handlers) this.#cost.set(type, this.#unit / registered.perSlot)
    this.#capacity = concurrency * this.#unit
    this.mostPerSlot = Math.max(...perSlot)
    this.#leastCost = this.#unit / this.mostPerSlot
    this.mostJobs = concurrency * this.mostPerSlot
  }

  /** A job of no registered type (it fails at once) takes a whole slot. */
  #costOf (type: string): number {
    return this.#cost.get(type) ?? this.#unit
  }

  fits (type: string): boolean {
    return this.#used + this.#costOf(type) <= this.#capacity
  }

  /** Room for a job of any type. */
  fitsAny (): boolean {
    return this.#used + this.#unit <= this.#capacity
  }

  /** Jobs that could start now if all were of the task with the most per slot. */
  freeJobs (): number {
    return Math.floor((this.#capacity - this.#used) / this.#leastCost)
  }

  /** Jobs that could start now whatever their type. */
  freeWholeSlots (): number {
    return Math.floor((this.#capacity - this.#used) / this.#unit)
  }

  take (type: string): void {
    this.#used += this.#costOf(type)
  }

  give (type: string): void {
    this.#used -= this.#costOf(type)
  }
}

function lcm (a: number, b: number): number {
  let [x, y] = [a, b]
  while (y !== 0) [x, y] = [y, x % y]
  return (a / x) * b
}

class ThroughputCounter {
  #points = new Map<string, ThroughputPoint>()

  add (queue: string, completed: boolean): void {
    const minute = Math.floor(Date.now() / 60_000) * 60_000
    const key = `${minute} ${queue}`
    let point = this.#points.get(key)
    if (point === undefined) {
      point = { queue, minute: new Date(minute), completed: 0, failed: 0 }
      this.#points.set(key, point)
    }
    if (completed) point.completed++
    else point.failed++
  }

  take (): ThroughputPoint[] {
    const points = [...this.#points.values()]
    this.#points = new Map()
    return points
  }
}

function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

export function messageOf (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
