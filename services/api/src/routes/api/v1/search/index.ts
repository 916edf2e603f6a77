// GET /api/v1/search: full-text search over the messages of the caller's current conversations
// (packages/chat/src/search.ts). The caller is `user_id` in AUTH_MODE=none, the token's user otherwise.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { searchMessages } from '@chatty/chat'
import { HttpError } from '@chatty/server'
import { actingUser } from '../../../../plugins/app/auth.ts'
import { acceptCamelAliases } from '../../../../camel-case.ts'
import { errorResponses } from '../../../../schemas/common.ts'
import { SearchPageSchema, SearchQuerySchema } from '../../../../schemas/features.ts'

const routes: FastifyPluginAsyncTypebox = async (fastify) => {

  fastify.addHook('preValidation', acceptCamelAliases)

  fastify.get('/search', {
    schema: {
      summary: 'Search messages',
      description: 'Postgres full-text search (web-search syntax: words, "a phrase", -word, or; the `simple` configuration, word by word in any language) ' +
        'over the messages of the conversations the caller is a member of now, newest first, a page at a time: pass next_cursor as cursor for the next page. ' +
        'Deleted messages never match; edited ones match their current body. conversation_id narrows it to one conversation (403 unless a member).',
      tags: ['search'],
      querystring: SearchQuerySchema,
      response: { 200: SearchPageSchema, ...errorResponses }
    }
  }, async (request) => {
    const userId = actingUser(request, request.query.user_id)
    if (userId === undefined) throw new HttpError(400, 'bad_request', 'querystring must have required property \'user_id\'')
    const { q, conversation_id: conversationId, limit, cursor } = request.query
    return searchMessages(fastify.chat, { userId, q, conversationId, limit, cursor })
  })
}

export default routes
