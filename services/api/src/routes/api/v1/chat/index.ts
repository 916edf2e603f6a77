// go-chatty's REST routes under /api/v1/chat.
import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { checkSend, createConversation, listMessages, listParticipants, requireParticipant } from '@chatty/chat'
import { errorResponses } from '../../../../schemas/common.ts'
import {
  ChatCreatedSchema, ChatParamsSchema, CreateChatBodySchema, ListMessagesQuerySchema, MessagePageSchema,
  ParticipantsSchema, ReaderHeadersSchema, SendAcceptedSchema, SendMessageBodySchema
} from '../../../../schemas/chat.ts'
import { SEND_MESSAGE_TASK, type SendMessagePayload } from '@chatty/chat'

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db } = fastify

  fastify.post('/chat', {
    schema: {
      summary: 'Create a conversation',
      tags: ['chat'],
      body: CreateChatBodySchema,
      response: { 201: ChatCreatedSchema, ...errorResponses }
    }
  }, async (request, reply) => {
    const created = await createConversation(db, { participantIds: request.body.participant_ids, tenantId: request.body.tenant_id })
    return reply.code(201).send({ ...created, created_at: created.created_at.toISOString() })
  })

  fastify.post('/chat/:chat_id', {
    schema: {
      summary: 'Send a message',
      description: 'Checks membership and content now, then queues the message for storage and live delivery. ' +
        'A retried send with the same dedupe_key stores one message.',
      tags: ['chat'],
      params: ChatParamsSchema,
      body: SendMessageBodySchema,
      response: { 202: SendAcceptedSchema, ...errorResponses }
    }
  }, async (request, reply) => {
    const { chat_id: conversationId } = request.params
    const { sender_id: senderId, ...input } = request.body
    const content = await checkSend(db, { ...input, conversationId, senderId })
    const messageId = randomUUID()
    const payload: SendMessagePayload = { message_id: messageId, conversation_id: conversationId, sender_id: senderId, content }
    const taskId = await fastify.queue.enqueue({ type: SEND_MESSAGE_TASK, payload })
    return reply.code(202).send({ task_id: taskId, message_id: messageId })
  })

  fastify.get('/chat/:chat_id/messages', {
    schema: {
      summary: 'Read the history of a conversation',
      description: 'Newest first. before_seq / after_seq select the page just before / after a seq. ' +
        'An X-User-Id header, when sent, must name a participant.',
      tags: ['chat'],
      params: ChatParamsSchema,
      querystring: ListMessagesQuerySchema,
      headers: ReaderHeadersSchema,
      response: { 200: MessagePageSchema, ...errorResponses }
    }
  }, async (request) => {
    const { chat_id: conversationId } = request.params
    const reader = request.headers['x-user-id']
    if (reader !== undefined) await requireParticipant(db, conversationId, reader)
    const { limit, offset, before_seq: beforeSeq, after_seq: afterSeq } = request.query
    const messages = await listMessages(db, { conversationId, limit, offset, beforeSeq, afterSeq })
    return { messages, limit, offset, count: messages.length }
  })

  fastify.get('/chat/:chat_id/participants', {
    schema: {
      summary: 'List the members of a conversation',
      tags: ['chat'],
      params: ChatParamsSchema,
      headers: ReaderHeadersSchema,
      response: { 200: ParticipantsSchema, ...errorResponses }
    }
  }, async (request) => {
    const { chat_id: conversationId } = request.params
    const reader = request.headers['x-user-id']
    if (reader !== undefined) await requireParticipant(db, conversationId, reader)
    return { participant_ids: await listParticipants(db, conversationId) }
  })
}

export default routes
