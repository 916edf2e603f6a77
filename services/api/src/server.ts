// The api process: builds the app from the environment, listens, and shuts down gracefully on
// SIGINT/SIGTERM (in-flight requests finish, sockets close, pools drain).
import closeWithGrace from 'close-with-grace'
import { loggerOptions } from '@chatty/server'
import { buildApp } from './app.ts'

const pretty = process.stdout.isTTY && process.env.NODE_ENV !== 'production'
const app = await buildApp({
  config: process.env,
  // Credentials in urls and headers are redacted (@chatty/server).
  logger: loggerOptions({ level: process.env.LOG_LEVEL ?? 'info', pretty })
}).catch((error: Error) => {
  console.error(`chatty api: cannot start: ${error.message}`)
  process.exit(1)
})

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
  else app.log.info(`${signal} received, shutting down`)
  await app.close()
})

await app.listen({ port: app.config.PORT, host: app.config.HOST })
