// The jobs process: runs the queue worker and serves the queue dashboard on JOBS_ADMIN_PORT until
// SIGINT/SIGTERM, then finishes in-flight jobs.
import closeWithGrace from 'close-with-grace'
import { loggerOptions } from '@chatty/server'
import { buildJobs } from './app.ts'

const pretty = process.stdout.isTTY && process.env.NODE_ENV !== 'production'
const app = await buildJobs({
  config: process.env,
  // Credentials in urls and headers are redacted (@chatty/server).
  logger: loggerOptions({ level: process.env.LOG_LEVEL ?? 'info', pretty })
}).catch((error: Error) => {
  console.error(`chatty jobs: cannot start: ${error.message}`)
  process.exit(1)
})

closeWithGrace({ delay: 30_000 }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
  else app.log.info(`${signal} received, finishing in-flight jobs`)
  await app.close()
})

// The worker starts when the app is ready; the dashboard and /healthz answer on the admin port.
await app.listen({ port: app.jobsConfig.JOBS_ADMIN_PORT, host: app.jobsConfig.JOBS_ADMIN_HOST })
// (Tests wait for this exact message.)
app.log.info('jobs worker running')
