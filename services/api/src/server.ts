// The api process: reads its configuration from the environment (one validated object, logging
// included), builds the app from it, listens, and shuts down gracefully on SIGINT/SIGTERM
// (in-flight requests finish, sockets close, pools drain).
import { runService } from '@chatty/server'
import { buildApp } from './app.ts'
import { loadConfig } from './plugins/external/env.ts'

await runService({
  name: 'api',
  configure: loadConfig,
  build: (config, logger) => buildApp({ config, logger }),
  address: (config) => ({ port: config.PORT, host: config.HOST }),
  graceMs: 10_000,
  closing: 'shutting down'
})
