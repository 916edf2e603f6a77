// The queue contract on the Postgres (graphile-worker) adapter, plus what only it offers:
// enqueueing inside the caller's transaction.
import t, { type Test } from 'tap'
import pg from 'pg'
import { queryRows, testDatabase } from '@chatty/db/testing'
import { createPostgresQueueAdmin, createPostgresQueueClient, enqueueInTransaction, installQueueSchema, type QueueConfig } from '../src/index.ts'
import { runContractSuite } from './contract.ts'

async function postgresConfig (t: Test): Promise<QueueConfig> {
  const { url } = await testDatabase(t)
  await installQueueSchema(url)
  return { backend: 'postgres', dbUrl: url }
}

/** The jobs in the queue's table, done or not, counted on a connection of its own. */
async function countJobs (dbUrl: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(dbUrl, 'SELECT count(*)::int AS n FROM graphile_worker._private_jobs')
  return row!.n
}

runContractSuite(t, async (t) => ({ config: await postgresConfig(t) }))

t.test('a job enqueued in a transaction exists exactly when the transaction commits', async (t) => {
  const { dbUrl } = await postgresConfig(t)
  const admin = createPostgresQueueAdmin({ connectionString: dbUrl })
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  t.teardown(async () => {
    await client.end()
    await admin.close()
  })

  await client.query('BEGIN')
  const rolledBack = await enqueueInTransaction(client, { type: 'welcome', payload: { user: 1 } })
  await client.query('ROLLBACK')
  t.equal(await admin.getJob(rolledBack), undefined, 'rolled back: no job')

  await client.query('BEGIN')
  const committed = await enqueueInTransaction(client, { type: 'welcome', payload: { user: 2 } }, { queue: 'low', maxAttempts: 3 })
  t.equal(await admin.getJob(committed), undefined, 'not visible to others before the commit')
  await client.query('COMMIT')
  t.match(await admin.getJob(committed), { id: committed, type: 'welcome', queue: 'low', state: 'pending', payload: { user: 2 }, maxAttempts: 3, attempts: 0 }, 'committed: the job is there')
})

t.test('concurrent enqueues share statements, and each caller gets the id of its own job', async (t) => {
  const { dbUrl } = await postgresConfig(t)
  const client = createPostgresQueueClient({ connectionString: dbUrl })
  const admin = createPostgresQueueAdmin({ connectionString: dbUrl, queues: { default: 1, low: 1 } })
  t.teardown(async () => {
    await client.close()
    await admin.close()
  })
  // Identical payloads too: interchangeable jobs, but each caller still gets an id of its own.
  const tasks = Array.from({ length: 300 }, (_, n) => ({
    task: { type: n % 3 === 0 ? 'welcome' : 'digest', payload: n % 10 === 0 ? { same: true } : { n } },
    options: { queue: n % 2 === 0 ? 'default' : 'low', maxAttempts: 1 + (n % 4) }
  }))
  const ids = await Promise.all(tasks.map(({ task, options }) => client.enqueue(task, options)))
  t.equal(new Set(ids).size, tasks.length, 'every enqueue got a distinct id')
  for (const [i, { task, options }] of tasks.entries()) {
    const job = await admin.getJob(ids[i]!)
    if (!t.match(job, { type: task.type, queue: options.queue, payload: task.payload, maxAttempts: options.maxAttempts, state: 'pending' }, `job ${i}`)) break
  }
  t.equal(await countJobs(dbUrl), tasks.length)
})

t.test('a batch that cannot be added fails every enqueue in it, and adds none of them', async (t) => {
  const { dbUrl } = await postgresConfig(t)
  const client = createPostgresQueueClient({ connectionString: dbUrl })
  t.teardown(() => client.close())
  // A type Postgres refuses (text cannot hold NUL) spoils the statement it is in.
  const results = await Promise.allSettled([
    client.enqueue({ type: 'ok', payload: { n: 1 } }),
    client.enqueue({ type: 'bad\u0000', payload: { n: 0 } }),
    client.enqueue({ type: 'ok', payload: { n: 2 } })
  ])
  t.same(results.map((r) => r.status), ['rejected', 'rejected', 'rejected'])
  t.equal(await countJobs(dbUrl), 0)
  t.ok(await client.enqueue({ type: 'ok', payload: { n: 3 } }), 'the next batch is added')
})
