// OpenAPI generated from the route schemas, with a UI at /docs to read and try every route.
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

export default fp(async (fastify) => {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'chatty',
        description: 'Chat API: conversations, messages stored in Postgres and delivered live. ' +
          'Errors are always {"error", "code"}.',
        version: '1.0.0'
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'With AUTH_MODE=jwt' } }
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'chat', description: 'Conversations and messages (go-chatty routes)' },
        { name: 'users', description: 'A user\'s blocks and conversations' },
        { name: 'reactions', description: 'Reactions to messages' },
        { name: 'pins', description: 'Pinned messages of a conversation' },
        { name: 'search', description: 'Full-text search over the messages of a user\'s conversations' },
        { name: 'health', description: 'Liveness and readiness' }
      ]
    }
  })
  // The UI, its assets and the document itself are public (plugins/app/access.ts).
  await fastify.register(async (docs) => {
    docs.addHook('onRoute', (route) => { route.config = { ...route.config, access: 'public' } })
    await docs.register(swaggerUi, { routePrefix: '/docs' })
  })
}, { name: 'swagger' })
