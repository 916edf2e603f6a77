import t from 'tap'
import { createDb } from '@chatty/db'
import { onTeardown, testDatabase } from '@chatty/db/testing'
import { createPostgresPresence } from '../src/index.ts'
import { presenceContract, TTL_MS } from './contract.ts'

const { url } = await testDatabase(t)
const { db, destroy } = createDb(url, { max: 4 })
onTeardown(t, destroy)

presenceContract(t, async (t) => {
  const store = createPostgresPresence({ db, ttlMs: TTL_MS })
  t.teardown(() => store.close())
  return store
})
