// `pnpm db:migrate [up | down N | version | force V]`: the chat schema's migrations (packages/db)
// against DB_URL, or the embedded Postgres; `up` then installs the job queue's schema
// (graphile-worker's tables, unless QUEUE_BACKEND=redis), so an api started before any jobs
// process can queue sends. Both steps are idempotent and safe to run from several replicas at
// once. docker-compose's `migrate` service runs this.
import { parseArgs } from 'node:util'
import { runMigrateCommand } from '@chatty/db'
import { installQueueSchema } from '@chatty/queue'

const { positionals } = parseArgs({ allowPositionals: true })
const postgresQueue = (process.env.QUEUE_BACKEND || 'postgres') === 'postgres'
process.exitCode = await runMigrateCommand(positionals, {
  afterUp: postgresQueue
    ? async (url, log) => {
      await installQueueSchema(url)
      log('queue schema (graphile-worker) installed')
    }
    : undefined
})
