// The queue contract both adapters must keep. postgres.test.ts and redis.test.ts run it, each
// with a harness on a fresh database or key prefix.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { sleep, waitFor } from '@chatty/db/testing'
import { JobTimeoutError, PermanentJobError, type JobContext, type JobInfo, type JobState, type QueueAdmin, type QueueClient, type QueueConfig, type QueueServer } from '../src/index.ts'
import { createQueueAdmin, createQueueClient, createQueueServer } from '../src/index.ts'

export interface Harness {
  /** Backend connection settings; tests add worker settings on top. */
  config: QueueConfig
}

export type MakeHarness = (t: Test) => Promise<Harness>

/** Waits until the admin sees the job in `state`, and returns it as seen then. */
function jobInState (admin: QueueAdmin, id: string, state: JobState, what: string): Promise<JobInfo> {
  return waitFor(async () => {
    const job = await admin.getJob(id)
    return job?.state === state ? job : undefined
  }, what)
}

/** Worker settings that keep the suite fast: short polls, locks and backoff. */
const FAST = { pollIntervalMs: 200, lockTimeoutMs: 2000, backoff: { baseMs: 20, maxMs: 200 } }

interface Setup {
  client: QueueClient
  admin: QueueAdmin
  config: QueueConfig
  /** A server with FAST settings plus these. */
  server (options?: Partial<QueueConfig>): QueueServer
}

async function setUp (t: Test, makeHarness: MakeHarness, queues?: Record<string, number>): Promise<Setup> {
  const { config: base } = await makeHarness(t)
  const config: QueueConfig = { ...base, ...FAST, ...(queues === undefined ? {} : { queues }) }
  const client = createQueueClient(config)
  const admin = createQueueAdmin(config)
  t.teardown(async () => {
    await client.close()
    await admin.close()
  })
  return { client, admin, config, server: (options = {}) => createQueueServer({ ...config, ...options }) }
}

interface Started {
  stop (): Promise<void>
  done: Promise<void>
  controller: AbortController
}

/** Runs a server until the test ends (or stop()); a run() that throws fails the test. */
function start (t: Test, server: QueueServer): Started {
  const controller = new AbortController()
  const done = server.run(controller.signal)
  const stop = async () => {
    controller.abort()
    await done
  }
  t.teardown(stop)
  return { stop, done, controller }
}

export function runContractSuite (t: Test, makeHarness: MakeHarness): void {
  t.test('an enqueued job runs once with its payload and context, then is gone', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    const runs: Array<{ payload: unknown, job: Omit<JobContext, 'signal'> }> = []
    const worker = server()
    worker.register<{ text: string }>('greet', async (payload, { signal, ...job }) => {
      runs.push({ payload, job })
    })
    start(t, worker)
    const id = await client.enqueue({ type: 'greet', payload: { text: 'hello' } })
    t.type(id, 'string')
    await waitFor(() => runs.length === 1, 'the job to run')
    t.same(runs, [{ payload: { text: 'hello' }, job: { id, type: 'greet', attempt: 1, maxAttempts: 25, queue: 'default' } }])
    await waitFor(async () => (await admin.getJob(id)) === undefined, 'the job to be removed')
    // The marker: a later job through the same worker; a second run of the first comes before it.
    const marker = await client.enqueue({ type: 'greet', payload: { text: 'marker' } })
    await waitFor(async () => runs.some((run) => run.job.id === marker) && (await admin.getJob(marker)) === undefined, 'the marker job to run and be removed')
    t.same(runs.map((run) => run.job.id), [id, marker], 'ran exactly once')
    t.same(await admin.counts(), [{ queue: 'default', pending: 0, scheduled: 0, active: 0, failed: 0 }])
  })

  t.test('a delayed job waits, visible as scheduled, until its time', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    const ranAt = new Map<string, number>()
    const worker = server()
    worker.register('later', async (_payload, job) => { ranAt.set(job.id, Date.now()) })
    start(t, worker)
    const enqueuedAt = Date.now()
    const byDelay = await client.enqueue({ type: 'later', payload: {} }, { delayMs: 600 })
    const runAt = new Date(enqueuedAt + 900)
    const byRunAt = await client.enqueue({ type: 'later', payload: {} }, { runAt })
    const scheduled = await admin.getJob(byRunAt)
    t.equal(scheduled?.state, 'scheduled')
    t.ok(scheduled?.runAt !== null && Math.abs(scheduled!.runAt!.getTime() - runAt.getTime()) < 50, 'reports when it will run')
    t.same((await admin.counts())[0], { queue: 'default', pending: 0, scheduled: 2, active: 0, failed: 0 })
    await waitFor(() => ranAt.size === 2, 'both jobs to run')
    t.ok(ranAt.get(byDelay)! - enqueuedAt >= 590, `delayMs job ran after ${ranAt.get(byDelay)! - enqueuedAt} ms`)
    t.ok(ranAt.get(byDelay)! - enqueuedAt < 1500, 'and not much later')
    t.ok(ranAt.get(byRunAt)! >= runAt.getTime() - 10, 'runAt job ran no earlier than runAt')
    t.ok(ranAt.get(byRunAt)! - runAt.getTime() < 1000, 'and not much later')
  })

  t.test('a job that keeps failing ends failed, keeping its last error and attempt count', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    const attempts: number[] = []
    const worker = server()
    worker.register('flaky', async (_payload, job) => {
      attempts.push(job.attempt)
      throw new Error(`boom on attempt ${job.attempt}`)
    })
    start(t, worker)
    const id = await client.enqueue({ type: 'flaky', payload: { n: 1 } }, { maxAttempts: 3 })
    const failed = await jobInState(admin, id, 'failed', 'the failed state')
    t.same(attempts, [1, 2, 3], 'three attempts, then no more')
    t.match(failed, { id, type: 'flaky', queue: 'default', payload: { n: 1 }, state: 'failed', attempts: 3, lastError: 'boom on attempt 3' })
    t.ok(failed.failedAt instanceof Date, 'knows when it failed')
    const listed = await admin.listJobs({ state: 'failed' })
    t.same(listed.map((job) => [job.id, job.lastError, job.attempts]), [[id, 'boom on attempt 3', 3]])
    t.same((await admin.counts())[0], { queue: 'default', pending: 0, scheduled: 0, active: 0, failed: 1 })
    // The marker: a later job through the same worker, run once to its failure.
    const marker = await client.enqueue({ type: 'flaky', payload: { n: 2 } }, { maxAttempts: 1 })
    await waitFor(async () => (await admin.getJob(marker))?.state === 'failed', 'the marker job to fail')
    t.same(attempts, [1, 2, 3, 1], 'a failed job is not run again by itself: only the marker ran since')
  })

  t.test('a PermanentJobError fails the job at once, whatever attempts are left', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    let runs = 0
    const worker = server()
    worker.register('invalid', async () => {
      runs++
      throw new PermanentJobError('payload can never be valid')
    })
    start(t, worker)
    const id = await client.enqueue({ type: 'invalid', payload: {} }, { maxAttempts: 5 })
    const failed = await jobInState(admin, id, 'failed', 'the failed state')
    t.equal(runs, 1)
    t.match(failed, { attempts: 1, lastError: 'payload can never be valid' })
  })

  t.test('retry delays grow exponentially, with jitter, and are visible as scheduled retries', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    const times: number[] = []
    const worker = server({ backoff: { baseMs: 150, maxMs: 10_000, jitter: 0.5 } })
    worker.register('failing', async () => {
      times.push(Date.now())
      throw new Error('still down')
    })
    start(t, worker)
    const id = await client.enqueue({ type: 'failing', payload: {} }, { maxAttempts: 4 })
    const retrying = await jobInState(admin, id, 'scheduled', 'a scheduled retry')
    t.match(retrying, { attempts: 1, lastError: 'still down' }, 'between attempts the job is scheduled with its error')
    await waitFor(() => times.length === 4, 'four attempts')
    const gaps = times.slice(1).map((at, i) => at - times[i]!)
    // Attempt n fails -> wait uniform in [d/2, d], d = 150 * 2^(n-1): [75,150], [150,300], [300,600].
    const ceilings = [150, 300, 600]
    gaps.forEach((gap, i) => {
      t.ok(gap >= ceilings[i]! / 2 - 5, `gap ${i + 1} (${gap} ms) is at least ${ceilings[i]! / 2} ms`)
      t.ok(gap <= ceilings[i]! + 250, `gap ${i + 1} (${gap} ms) is at most about ${ceilings[i]} ms`)
    })
    t.ok(gaps[2]! > gaps[0]!, `gaps grow: ${gaps.join(', ')} ms`)
  })

  t.test('a second enqueue with the same unique key while the first is unfinished returns the first id', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    const first = await client.enqueue({ type: 'digest', payload: { n: 1 } }, { uniqueKey: 'user-1', delayMs: 60_000 })
    const second = await client.enqueue({ type: 'digest', payload: { n: 2 } }, { uniqueKey: 'user-1' })
    t.equal(second, first, 'no-op returning the first id')
    t.not(await client.enqueue({ type: 'digest', payload: {} }, { uniqueKey: 'user-2', delayMs: 60_000 }), first, 'another key is another job')
    t.not(await client.enqueue({ type: 'digest', payload: {} }, { uniqueKey: 'user-1', queue: 'low', delayMs: 60_000 }), first, 'keys are unique within a queue')
    t.match(await admin.getJob(first), { payload: { n: 1 } }, 'the first payload is kept')
    t.equal((await admin.listJobs({ state: 'scheduled', queue: 'default' })).length, 2)

    t.ok(await admin.delete(first), 'once the first job is gone...')
    const third = await client.enqueue({ type: 'digest', payload: { n: 3 } }, { uniqueKey: 'user-1' })
    t.not(third, first, '...the key is free again')

    const ran: string[] = []
    const worker = server()
    worker.register('digest', async (_payload, job) => { ran.push(job.id) })
    start(t, worker)
    await waitFor(() => ran.includes(third), 'the job to run')
    await waitFor(async () => (await admin.getJob(third)) === undefined, 'the job to be removed')
    const fourth = await client.enqueue({ type: 'digest', payload: { n: 4 } }, { uniqueKey: 'user-1' })
    t.not(fourth, third, 'a completed job releases its key')
    await waitFor(() => ran.includes(fourth), 'the new job to run')
  })

  t.test('a hanging handler is cut off at its timeout: its signal aborts and the attempt fails', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    const reasons: unknown[] = []
    const hang = async (_payload: unknown, job: JobContext) => {
      await new Promise((resolve) => job.signal.addEventListener('abort', resolve, { once: true }))
      reasons.push(job.signal.reason)
      await new Promise(() => {}) // ignores the signal: the worker must move on anyway
    }
    const worker = server({ timeoutMs: 300 })
    worker.register('hang-task-timeout', hang, { timeoutMs: 150 })
    worker.register('hang-global-timeout', hang)
    start(t, worker)
    const startedAt = Date.now()
    const perTask = await client.enqueue({ type: 'hang-task-timeout', payload: {} }, { maxAttempts: 1 })
    const global = await client.enqueue({ type: 'hang-global-timeout', payload: {} }, { maxAttempts: 1 })
    const failedPerTask = await jobInState(admin, perTask, 'failed', 'the per-task timeout')
    const failedGlobal = await jobInState(admin, global, 'failed', 'the global timeout')
    t.ok(Date.now() - startedAt < 3000, 'neither hang held its worker')
    t.match(failedPerTask, { attempts: 1, lastError: 'job attempt timed out after 150 ms' })
    t.match(failedGlobal, { attempts: 1, lastError: 'job attempt timed out after 300 ms' })
    t.equal(reasons.length, 2)
    t.ok(reasons.every((reason) => reason instanceof JobTimeoutError), 'the handlers saw their signal abort with a JobTimeoutError')
  })

  t.test('aborting run() stops taking jobs and lets in-flight jobs finish before it resolves', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    const started: string[] = []
    const finished: string[] = []
    let abortedSignals = 0
    const worker = server({ concurrency: 3 })
    worker.register('slow', async (_payload, job) => {
      started.push(job.id)
      await sleep(400)
      if (job.signal.aborted) abortedSignals++
      finished.push(job.id)
    })
    const ids = await Promise.all([1, 2, 3].map((n) => client.enqueue({ type: 'slow', payload: { n } })))
    const running = start(t, worker)
    await waitFor(() => started.length === 3, 'three jobs in flight')
    const late = await client.enqueue({ type: 'slow', payload: { n: 4 } })
    running.controller.abort()
    await running.done
    t.same([...finished].sort(), [...ids].sort(), 'every in-flight job finished before run() resolved')
    t.equal(abortedSignals, 0, 'their signals were not aborted')
    t.notOk(started.includes(late), 'no job was taken after the abort')
    t.match(await admin.getJob(late), { state: 'pending', attempts: 0 }, 'the waiting job is still there for the next worker')
    t.same((await admin.counts())[0], { queue: 'default', pending: 1, scheduled: 0, active: 0, failed: 0 })
  })

  t.test('with prefetch, jobs claimed ahead run once each within the concurrency, and go back unstarted on abort', async (t) => {
    const { client, admin, server, config } = await setUp(t, makeHarness)
    const runs = new Map<number, number>()
    let running = 0
    let peak = 0
    let hold = Promise.withResolvers<void>()
    const worker = server({ concurrency: 2, prefetch: 2 })
    worker.register('held', async (payload: { n: number }) => {
      runs.set(payload.n, (runs.get(payload.n) ?? 0) + 1)
      running++
      peak = Math.max(peak, running)
      await hold.promise
      running--
    })
    await Promise.all(Array.from({ length: 10 }, (_, n) => client.enqueue({ type: 'held', payload: { n } })))
    const started = start(t, worker)
    // Ten jobs, two slots: each pair is let go once it has started.
    for (let done = 0; done < 10; done += 2) {
      await waitFor(() => running === 2 && runs.size === done + 2, `jobs ${done + 1} and ${done + 2} running`)
      const pair = hold
      hold = Promise.withResolvers<void>()
      pair.resolve()
    }
    await waitFor(async () => (await admin.counts())[0]?.active === 0 && running === 0, 'every job completed')
    t.equal(peak, 2, 'never more than the concurrency running')
    t.same([...runs.values()], Array(10).fill(1), 'each job ran once')

    // Two running, two more claimed ahead (Postgres) or waiting (Redis) when the worker stops.
    const ids = await Promise.all([10, 11, 12, 13].map((n) => client.enqueue({ type: 'held', payload: { n } })))
    await waitFor(() => running === 2, 'two more running')
    const ahead = ids.filter((_, i) => !runs.has(10 + i))
    t.equal(ahead.length, 2)
    if (config.backend === 'postgres') {
      for (const id of ahead) await jobInState(admin, id, 'active', 'a job claimed ahead is locked')
    }
    started.controller.abort()
    hold.resolve()
    await started.done
    t.equal(runs.size, 12, 'the jobs claimed ahead did not start')
    for (const id of ahead) t.match(await admin.getJob(id), { state: 'pending', attempts: 0 }, 'a job claimed ahead is back, its claim not counted as an attempt')
  })

  t.test('a task run several to a slot shares each slot among that many jobs, and a whole-slot job waits for a whole slot', async (t) => {
    const { client, config, server } = await setUp(t, makeHarness)
    // Two slots; a light job takes a third of one (a unit), a heavy one a whole slot (3 units).
    const worker = server({ concurrency: 2 })
    const runs = new Map<string, number>()
    const releases: Array<() => void> = []
    let units = 0
    let peakUnits = 0
    let lights = 0
    let peakLights = 0
    let heavyStarted = false
    const held = (cost: number) => async (_payload: unknown, job: JobContext) => {
      runs.set(job.id, (runs.get(job.id) ?? 0) + 1)
      units += cost
      peakUnits = Math.max(peakUnits, units)
      if (cost === 1) peakLights = Math.max(peakLights, ++lights)
      else heavyStarted = true
      await new Promise<void>((resolve) => releases.push(resolve))
      units -= cost
      if (cost === 1) lights--
    }
    worker.register('light', held(1), { perSlot: 3 })
    worker.register('heavy', held(3))
    const lightIds = []
    for (let n = 0; n < 8; n++) lightIds.push(await client.enqueue({ type: 'light', payload: { n } }))
    const heavyId = await client.enqueue({ type: 'heavy', payload: {} })
    start(t, worker)
    // Postgres claims as many as fit and holds what does not fit yet. Redis cannot give a claimed
    // job back, so it claims one job at a time while a whole slot is free: four light jobs fill
    // four units, and a fifth would leave no whole slot for a heavy job it might claim next.
    const together = config.backend === 'postgres' ? 6 : 4
    await waitFor(() => lights === together, `${together} light jobs running in two slots`)
    t.equal(peakLights, together, 'light jobs share the slots up to their perSlot')
    t.notOk(heavyStarted, 'the heavy job has no whole slot yet')
    // Three let go. Postgres: the two other light jobs start (five running, five units), and the
    // heavy job claimed with them is held until a whole slot is free. Redis: three more light
    // jobs start (four running) and the eighth waits for a whole free slot, the heavy one behind it.
    for (let i = 0; i < 3; i++) releases.shift()!()
    const started = config.backend === 'postgres' ? 8 : 7
    await waitFor(() => runs.size === started && lights === started - 3, `${started} light jobs started, ${started - 3} running`)
    t.notOk(heavyStarted, 'the heavy job still has no whole slot')
    await waitFor(() => {
      while (releases.length > 0) releases.shift()!()
      return runs.size === 9 && units === 0
    }, 'every job ran and finished')
    t.ok(heavyStarted, 'the heavy job ran')
    t.ok(peakUnits <= 6, `never more than two slots in use (peak ${peakUnits} units of 6)`)
    t.same([...lightIds, heavyId].map((id) => runs.get(id)), Array(9).fill(1), 'each job ran once')
  })

  t.test('perSlot must be an integer from 1 to 1000', async (t) => {
    const { server } = await setUp(t, makeHarness)
    const worker = server()
    for (const perSlot of [0, 1.5, 1001]) t.throws(() => worker.register('x', async () => {}, { perSlot }), RangeError, `perSlot ${perSlot} refused`)
  })

  for (const prefetch of [0, 3]) t.test(`with every queue backlogged, processed work is shared by weight, also across two workers (prefetch ${prefetch})`, async (t) => {
    const weights = { critical: 6, default: 3, low: 1 }
    const { client, server } = await setUp(t, makeHarness, weights)
    const perQueue = 200
    const sample = 200
    for (const queue of Object.keys(weights)) {
      await Promise.all(Array.from({ length: perQueue }, (_, n) => client.enqueue({ type: 'work', payload: { n } }, { queue })))
    }
    const order: string[] = []
    const sampled = new AbortController()
    const workers = [server({ concurrency: 3, prefetch }), server({ concurrency: 3, prefetch })]
    for (const worker of workers) {
      worker.register('work', async (_payload, job) => {
        order.push(job.queue)
        if (order.length === sample) sampled.abort()
        await sleep(1)
      })
    }
    const running = workers.map((worker) => start(t, worker))
    sampled.signal.addEventListener('abort', () => { for (const each of running) each.controller.abort() })
    await Promise.all(running.map((each) => each.done))
    const shares = Object.fromEntries(Object.keys(weights).map((queue) => [queue, order.slice(0, sample).filter((q) => q === queue).length]))
    t.comment(`first ${sample} jobs by queue: ${JSON.stringify(shares)}`)
    for (const [queue, weight] of Object.entries(weights)) {
      const expected = sample * weight / 10
      t.ok(Math.abs(shares[queue]! - expected) <= expected * 0.2, `${queue}: ${shares[queue]} of ${sample}, expected ${expected} +-20%`)
    }
  })

  t.test('with only one queue backlogged, it gets every worker', async (t) => {
    const weights = { critical: 6, default: 3, low: 1 }
    const { client, server } = await setUp(t, makeHarness, weights)
    let running = 0
    let peak = 0
    const release = Promise.withResolvers<void>()
    const worker = server({ concurrency: 4 })
    worker.register('low-work', async () => {
      running++
      peak = Math.max(peak, running)
      await release.promise
      running--
    })
    const ids = await Promise.all(Array.from({ length: 8 }, (_, n) => client.enqueue({ type: 'low-work', payload: { n } }, { queue: 'low' })))
    start(t, worker)
    await waitFor(() => running === 4, 'all four workers busy')
    await sleep(200)
    t.equal(peak, 4, 'the weight-1 queue used all 4 workers, not a 1/10 share')
    release.resolve()
    t.equal(ids.length, 8)
  })

  t.test('admin: retry a failed job now, run a scheduled one now, delete one that is waiting', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    let healthy = false
    const ran: string[] = []
    const worker = server()
    worker.register('fragile', async (_payload, job) => {
      if (!healthy) throw new Error('dependency down')
      ran.push(job.id)
    })
    start(t, worker)
    const id = await client.enqueue({ type: 'fragile', payload: {} }, { maxAttempts: 2 })
    await waitFor(async () => (await admin.getJob(id))?.state === 'failed', 'the failed state')
    t.match(await admin.listJobs({ state: 'failed', queue: 'default' }), [{ id, lastError: 'dependency down', attempts: 2 }])
    healthy = true
    t.equal(await admin.retryNow(id), true, 'retryNow accepts a failed job')
    await waitFor(() => ran.includes(id), 'the retried job to succeed')
    await waitFor(async () => (await admin.getJob(id)) === undefined, 'the job to be removed')

    const scheduled = await client.enqueue({ type: 'fragile', payload: {} }, { delayMs: 60_000 })
    t.equal(await admin.retryNow(scheduled), true, 'retryNow runs a scheduled job now')
    await waitFor(() => ran.includes(scheduled), 'the scheduled job to run')

    const doomed = await client.enqueue({ type: 'fragile', payload: {} }, { delayMs: 60_000 })
    t.equal(await admin.delete(doomed), true)
    t.equal(await admin.getJob(doomed), undefined)
    t.equal(await admin.delete(doomed), false, 'deleting twice says it is gone')
    t.equal(await admin.retryNow(doomed), false)
    t.equal(await admin.getJob('no-such-job'), undefined)
    t.equal(await admin.retryNow('no-such-job'), false)
    t.same((await admin.counts())[0], { queue: 'default', pending: 0, scheduled: 0, active: 0, failed: 0 })
  })

  t.test('admin: a running job can be seen but not deleted', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness)
    const release = Promise.withResolvers<void>()
    let started = false
    const worker = server()
    worker.register('busy', async () => {
      started = true
      await release.promise
    })
    start(t, worker)
    const id = await client.enqueue({ type: 'busy', payload: { x: 1 } })
    await waitFor(() => started, 'the job to start')
    t.match(await admin.listJobs({ state: 'active' }), [{ id, type: 'busy', state: 'active', attempts: 1, payload: { x: 1 } }])
    t.equal(await admin.delete(id), false)
    t.equal(await admin.retryNow(id), false)
    release.resolve()
  })

  t.test('throughput counts completed and failed attempts per minute and queue', async (t) => {
    const { client, admin, server } = await setUp(t, makeHarness, { default: 1, low: 1 })
    const since = new Date(Date.now() - 60_000)
    let done = 0
    const worker = server()
    worker.register('count', async (payload: { fail: boolean }) => {
      done++
      if (payload.fail) throw new Error('no')
    })
    const running = start(t, worker)
    await client.enqueue({ type: 'count', payload: { fail: false } })
    await client.enqueue({ type: 'count', payload: { fail: false } }, { queue: 'low' })
    await client.enqueue({ type: 'count', payload: { fail: true } }, { queue: 'low', maxAttempts: 1 })
    await waitFor(() => done === 3, 'three attempts')
    await running.stop() // flushes the counts
    const points = await admin.throughput(since)
    const total = (queue: string, key: 'completed' | 'failed') => points.filter((p) => p.queue === queue).reduce((sum, p) => sum + p[key], 0)
    t.same({ default: [total('default', 'completed'), total('default', 'failed')], low: [total('low', 'completed'), total('low', 'failed')] },
      { default: [1, 0], low: [1, 1] })
    t.ok(points.every((p) => p.minute.getTime() % 60_000 === 0), 'points are whole minutes')
  })

  t.test('a job whose worker process is killed mid-attempt runs again on another worker', async (t) => {
    const { client, admin, config, server } = await setUp(t, makeHarness)
    const lockTimeoutMs = 1000
    const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/crash-worker.ts', import.meta.url))], {
      env: { ...process.env, QUEUE_CONFIG: JSON.stringify({ ...config, log: undefined, lockTimeoutMs }) },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    t.teardown(() => { child.kill('SIGKILL') })
    const id = await client.enqueue({ type: 'fragile-host', payload: { n: 1 } })
    const [line] = await once(child.stdout, 'data') as [Buffer]
    t.equal(line.toString().trim(), `started ${id}`, 'the first worker took the job')
    child.kill('SIGKILL')
    await once(child, 'exit')
    const killedAt = Date.now()
    t.match(await admin.getJob(id), { state: 'active' }, 'the job still looks taken')

    const ran: number[] = []
    const survivor = server({ lockTimeoutMs })
    survivor.register('fragile-host', async (_payload, job) => { ran.push(job.attempt) })
    start(t, survivor)
    await waitFor(() => ran.length === 1, 'the job to run again')
    const recoveryMs = Date.now() - killedAt
    t.comment(`recovered ${recoveryMs} ms after the kill (lockTimeoutMs ${lockTimeoutMs})`)
    t.ok(recoveryMs <= 2.5 * lockTimeoutMs, 'within about 2 x lockTimeoutMs')
    await waitFor(async () => (await admin.getJob(id)) === undefined, 'the job to be removed')
  })
}
