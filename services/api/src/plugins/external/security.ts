// Security headers (@fastify/helmet) and CORS (@fastify/cors, only for CORS_ORIGINS), which allows
// the methods of the registered routes.
import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import cors, { type FastifyCorsOptions } from '@fastify/cors'

export default fp(async (fastify) => {
  await fastify.register(helmet, {
    // The API answers JSON; only the /docs UI is a page, and it needs its own scripts and styles.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'validator.swagger.io'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"]
      }
    },
    crossOriginResourcePolicy: { policy: 'same-site' }
  })
  const origins = fastify.config.CORS_ORIGINS
  if (origins !== undefined) {
    // Every method some route answers, so a route added later is reachable from browsers too.
    const methods = new Set<string>()
    fastify.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) if (method !== 'OPTIONS') methods.add(method)
    })
    let options: FastifyCorsOptions | undefined
    await fastify.register(cors, {
      // Built at the first request, once every route is registered.
      delegator: (_request, callback) => {
        options ??= {
          origin: origins === '*' ? true : origins.split(',').map((origin) => origin.trim()),
          methods: [...methods].sort(),
          allowedHeaders: ['authorization', 'content-type', 'x-user-id'],
          maxAge: 600
        }
        callback(null, options)
      }
    })
  }
}, { name: 'security', dependencies: ['config'] })
