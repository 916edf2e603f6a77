// Liveness and readiness: GET / (go-chatty's), /healthz (the process is up), /readyz (its
// dependencies answer). Public: load balancers ask without a token.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { sql } from 'kysely'
import { withTimeout } from '@chatty/server'

const CheckSchema = Type.Union([Type.Literal('ok'), Type.Literal('down')])

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    config: { access: 'public' },
    schema: { summary: 'Service status (go-chatty)', tags: ['health'], response: { 200: Type.Object({ status: Type.Literal('OK') }) } }
  }, async () => ({ status: 'OK' as const }))

  fastify.get('/healthz', {
    config: { access: 'public' },
    schema: { summary: 'The process is up', tags: ['health'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } }
  }, async () => ({ status: 'ok' as const }))

  const ReadySchema = Type.Object({ status: CheckSchema, checks: Type.Record(Type.String(), CheckSchema) })
  fastify.get('/readyz', {
    config: { access: 'public' },
    schema: { summary: 'Every dependency answers', tags: ['health'], response: { 200: ReadySchema, 503: ReadySchema } }
  }, async (_request, reply) => {
    const checks: Record<string, 'ok' | 'down'> = {}
    const probes: Record<string, () => Promise<unknown>> = {
      postgres: () => sql`SELECT 1`.execute(fastify.db),
      ...fastify.readinessProbes
    }
    await Promise.all(Object.entries(probes).map(async ([name, probe]) => {
      checks[name] = await withTimeout(probe(), 2000).then(() => 'ok' as const, () => 'down' as const)
    }))
    const ready = Object.values(checks).every((check) => check === 'ok')
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'down', checks })
  })
}

export default routes
