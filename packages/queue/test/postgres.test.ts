// The queue contract on the Postgres (graphile-worker) adapter, plus what only it offers:
// enqueueing inside the caller's transaction.
import t, { type Test } from 'tap'
import pg from 'pg'
import { testDatabase } from '@chatty/db/testing'
import { createPostgresQueueAdmin, enqueueInTransaction, installQueueSchema, type QueueConfig } from '../src/index.ts'
import { runContractSuite } from './contract.ts'

async function postgresConfig (t: Test): Promise<QueueConfig> {
  const { url } = await testDatabase(t)
  await installQueueSchema(url)
  return { backend: 'postgres', dbUrl: url }
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
