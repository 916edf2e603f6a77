// The jobs process: reads its configuration from the environment (one validated object, logging
// included), runs the queue worker and serves the queue dashboard on JOBS_ADMIN_PORT until
// SIGINT/SIGTERM, then finishes in-flight jobs.
import { runService } from '@chatty/server'
import { buildJobs } from './app.ts'
import { loadConfig } from './plugins/env.ts'

// The worker starts when the app is ready; the dashboard and /healthz answer on the admin port.
const app = await runService({
  name: 'jobs',
  configure: loadConfig,
  build: (config, logger) => buildJobs({ config, logger }),
  address: (config) => ({ port: config.JOBS_ADMIN_PORT, host: config.JOBS_ADMIN_HOST }),
  graceMs: 30_000,
  closing: 'finishing in-flight jobs'
})
// (Tests wait for this exact message.)
app.log.info('jobs worker running')
