// What the api and jobs processes share around their app: the configuration read once and
// validated by the service's own env plugin (@fastify/env), logging set up from that same object,
// the app built from it, and a graceful shutdown on SIGINT/SIGTERM.
import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyPluginCallback, type FastifyServerOptions } from 'fastify'
import { loggerOptions } from './logging.ts'

/**
 * The validated configuration, read before the app is built: the env plugin registered on a
 * server of its own, which decorates `key`. The app is then built from this object.
 */
export async function readConfig<C extends object> (plugin: FastifyPluginAsync<{ data?: Record<string, unknown> }> | FastifyPluginCallback<{ data?: Record<string, unknown> }>, data: Record<string, unknown>, key: string): Promise<C> {
  const probe = Fastify({ logger: false })
  try {
    await probe.register(plugin, { data })
    await probe.ready()
    return { ...(probe as unknown as Record<string, C>)[key]! }
  } finally {
    await probe.close()
  }
}

export interface ServiceProcess<C extends { LOG_LEVEL: string, NODE_ENV: string }> {
  /** In the one line printed when it cannot start: `chatty <name>: cannot start: ...`. */
  name: string
  configure (env: Record<string, unknown>): Promise<C>
  build (config: C, logger: FastifyServerOptions['logger']): Promise<FastifyInstance>
  address (config: C): { port: number, host: string }
  /** How long in-flight work may take to finish after SIGINT/SIGTERM. */
  graceMs: number
  /** Logged when a signal starts the shutdown. */
  closing: string
}

/** Runs a service until SIGINT/SIGTERM; resolves once it listens. */
export async function runService<C extends { LOG_LEVEL: string, NODE_ENV: string }> (service: ServiceProcess<C>): Promise<FastifyInstance> {
  const cannotStart = (error: Error): never => {
    console.error(`chatty ${service.name}: cannot start: ${error.message}`)
    process.exit(1)
  }
  const config = await service.configure(process.env).catch(cannotStart)
  // Credentials in urls and headers are redacted (logging.ts).
  const logger = loggerOptions({ level: config.LOG_LEVEL, pretty: process.stdout.isTTY && config.NODE_ENV !== 'production' })
  const app = await service.build(config, logger).catch(cannotStart)
  closeWithGrace({ delay: service.graceMs }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
    else app.log.info(`${signal} received, ${service.closing}`)
    await app.close()
  })
  await app.listen(service.address(config))
  return app
}
