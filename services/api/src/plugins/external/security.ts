// Security headers (@fastify/helmet) and CORS (@fastify/cors, only for CORS_ORIGINS).
import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import cors from '@fastify/cors'

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
    await fastify.register(cors, {
      origin: origins === '*' ? true : origins.split(',').map((origin) => origin.trim()),
      methods: ['GET', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-user-id'],
      maxAge: 600
    })
  }
}, { name: 'security', dependencies: ['config'] })
