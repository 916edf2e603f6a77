// go-chatty's REST routes under /api/v1/chat.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { acceptedMessageId, addParticipants, checkSend, createConversation, deleteMessage, editMessage, listMembers, listMessages, markRead, removeParticipant, requireParticipant, setMute, type MembershipChange } from '@chatty/chat'
import type { FastifyRequest } from 'fastify'
import { actingUser } from '../../../../plugins/app/auth.ts'
import { acceptCamelAliases } from '../../../../camel-case.ts'
import { HttpError } from '@chatty/server'
import { ErrorSchema, errorResponses } from '../../../../schemas/common.ts'
import {
  ActorQuerySchema, AddParticipantsBodySchema, ChatCreatedSchema, ChatParamsSchema, CreateChatBodySchema, EditMessageBodySchema, ListMessagesQuerySchema,
  MembershipChangeSchema, MessageChangeSchema, MessagePageSchema, MessageParamsSchema, MuteBodySchema, MuteSchema, ParticipantParamsSchema, ParticipantsSchema,
  ReadBodySchema, ReaderHeadersSchema, ReadPositionSchema, SendAcceptedSchema, SendMessageBodySchema, SenderQuerySchema
} from '../../../../schemas/chat.ts'
import { SEND_MESSAGE_TASK, type SendMessagePayload } from '@chatty/chat'
import { DEFAULT_QUEUE } from '@chatty/queue'

/**
 * Who reads: in jwt mode the token's user, who must be a participant; in none mode the
 * X-User-Id header when sent (then checked), else nobody in particular (go-chatty's open reads).
 */
export async function checkReader (request: FastifyRequest, conversationId: string): Promise<void> {
  const reader = readerOf(request)
  if (reader !== undefined) await requireParticipant(request.server.chat, conversationId, reader)
}

/** The reader checkReader checks: the token's user, else X-User-Id, else undefined. */
function readerOf (request: FastifyRequest): string | undefined {
  const header = request.headers['x-user-id']
  return actingUser(request, typeof header === 'string' ? header : undefined)
}

/** go-chatty's 202 answer to a send, in its spellings before and after its camelCase commit. */
function goChattyAccepted (taskId: string, chatId: string, senderId: string) {
  return { status: 'queued' as const, task_id: taskId, chat_id: chatId, sender_id: senderId, taskId, chatId, senderId }
}

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { chat, db, feed } = fastify
  // go-chatty's later clients spell fields in camelCase (participantIds, senderId, ...).
  fastify.addHook('preValidation', acceptCamelAliases)

  fastify.post('/chat', {
    schema: {
      summary: 'Create a conversation',
      description: 'A direct (two-member) conversation between two users one of whom blocked the other is refused (403).',
      tags: ['chat'],
      body: CreateChatBodySchema,
      response: { 201: ChatCreatedSchema, ...errorResponses }
    }
  }, async (request, reply) => {
    // With a token, the caller is always a member (and the owner) of what they create.
    const creatorId = actingUser(request, request.body.creator_id) ?? null
    const created = await createConversation(db, { participantIds: request.body.participant_ids, tenantId: request.body.tenant_id, creatorId })
    return reply.code(201).send({ ...created, created_at: created.created_at.toISOString() })
  })

  fastify.post('/chat/:chat_id', {
    schema: {
      summary: 'Send a message',
      description: 'Checks membership and content now, then queues the message for storage and live delivery. ' +
        'A retried send with the same dedupe_key stores one message, and every answer to it carries that message\'s message_id. ' +
        'The sender is checked again when the message is stored: one removed (or blocked) meanwhile is refused, and nothing is stored. ' +
        'parent_id makes it a reply (the parent\'s reply_count and last_reply_at change with it); mentioned_user_ids must name members.',
      tags: ['chat'],
      params: ChatParamsSchema,
      body: SendMessageBodySchema,
      response: { 202: SendAcceptedSchema, ...errorResponses }
    }
  }, async (request, reply) => {
    const { chat_id: conversationId } = request.params
    const { sender_id: claimed, ...input } = request.body
    const senderId = actingUser(request, claimed)
    if (senderId === undefined) throw new HttpError(400, 'bad_request', 'body must have required property \'sender_id\'')
    const content = await checkSend(chat, { ...input, conversationId, senderId })
    // A retry with the same dedupe_key answers the id of the one message it stores.
    const messageId = await acceptedMessageId(db, conversationId, senderId, content.dedupe_key)
    const payload: SendMessagePayload = { message_id: messageId, conversation_id: conversationId, sender_id: senderId, content }
    // Named, not left to the adapter's default: jobs processes run only the queues in their
    // WORKER_QUEUES, and the default list (default=1) serves this one.
    const taskId = await fastify.queue.enqueue({ type: SEND_MESSAGE_TASK, payload }, { queue: DEFAULT_QUEUE })
    return reply.code(202).send({ ...goChattyAccepted(taskId, conversationId, senderId), message_id: messageId })
  })

  fastify.get('/chat/:chat_id/messages', {
    schema: {
      summary: 'Read the history of a conversation',
      description: 'Newest first. before_seq / after_seq select the page just before / after a seq; around_seq the page around it. ' +
        'parent_id lists a thread (the replies to that message; 404 when it is not in the conversation); top_level=true leaves replies out. ' +
        'An X-User-Id header, when sent, must name a participant.',
      tags: ['chat'],
      params: ChatParamsSchema,
      querystring: ListMessagesQuerySchema,
      headers: ReaderHeadersSchema,
      response: { 200: MessagePageSchema, ...errorResponses }
    }
  }, async (request, reply) => {
    const { chat_id: conversationId } = request.params
    const { limit, offset, before_seq: beforeSeq, after_seq: afterSeq, around_seq: aroundSeq, parent_id: parentId, top_level: topLevel } = request.query
    if (aroundSeq !== undefined && (beforeSeq !== undefined || afterSeq !== undefined || offset !== 0)) {
      throw new HttpError(400, 'bad_request', 'around_seq cannot be combined with before_seq, after_seq or offset')
    }
    if (parentId !== undefined && topLevel === true) throw new HttpError(400, 'bad_request', 'parent_id cannot be combined with top_level=true')
    // listMessages checks the reader (checkReader's check) with the same membership lookup that
    // finds the conversation: one lookup per page, not two.
    const messages = await listMessages(chat, { conversationId, readerId: readerOf(request), limit, offset, beforeSeq, afterSeq, aroundSeq, parentId, topLevel })
    // JSON.stringify rather than the schema's fast-json-stringify: toMessage builds every field in
    // the schema's order, nulls included, so the bytes are the same, and V8's serialiser writes a
    // page of 50 in about 60% of the time as one flat string (docs/performance.md, history reads).
    return reply.type('application/json; charset=utf-8').serializer(JSON.stringify).send({ messages, limit, offset, count: messages.length })
  })

  fastify.patch('/chat/:chat_id/messages/:message_id', {
    schema: {
      summary: 'Edit one\'s own message',
      description: 'Replaces the body (same rules as a send). Only the sender may, while a member (and not blocked in a direct conversation); ' +
        'system messages cannot be edited, a deleted one answers 409. The edit takes a seq of its own: a message_updated frame goes to every ' +
        'socket joined to the conversation, and a client resuming with since_seq gets it. The same body again changes nothing (seq null).',
      tags: ['chat'],
      params: MessageParamsSchema,
      body: EditMessageBodySchema,
      response: { 200: MessageChangeSchema, ...errorResponses, 409: ErrorSchema }
    }
  }, async (request) => {
    const { chat_id: conversationId, message_id: messageId } = request.params
    const senderId = actingUser(request, request.body.sender_id)
    if (senderId === undefined) throw new HttpError(400, 'bad_request', 'body must have required property \'sender_id\'')
    const change = await editMessage(chat, { conversationId, messageId, senderId, body: request.body.body })
    await feed.change(change)
    return { conversation_id: change.message.conversation_id, seq: change.seq, message: change.message }
  })

  fastify.delete('/chat/:chat_id/messages/:message_id', {
    schema: {
      summary: 'Delete one\'s own message',
      description: 'Only the sender may, while a member; system messages cannot be deleted. The message stays in history as a tombstone ' +
        '(body, attachment_url and attachment_meta null, deleted_at set). The delete takes a seq of its own: a message_deleted frame goes to ' +
        'every socket joined to the conversation, and a client resuming with since_seq gets it. Deleting again changes nothing (seq null).',
      tags: ['chat'],
      params: MessageParamsSchema,
      querystring: SenderQuerySchema,
      response: { 200: MessageChangeSchema, ...errorResponses }
    }
  }, async (request) => {
    const { chat_id: conversationId, message_id: messageId } = request.params
    const senderId = actingUser(request, request.query.sender_id)
    if (senderId === undefined) throw new HttpError(400, 'bad_request', 'querystring must have required property \'sender_id\'')
    const change = await deleteMessage(chat, { conversationId, messageId, senderId })
    await feed.change(change)
    return { conversation_id: change.message.conversation_id, seq: change.seq, message: change.message }
  })

  fastify.get('/chat/:chat_id/participants', {
    schema: {
      summary: 'List the members of a conversation',
      tags: ['chat'],
      params: ChatParamsSchema,
      headers: ReaderHeadersSchema,
      response: { 200: ParticipantsSchema, ...errorResponses }
    }
  }, async (request, reply) => {
    const { chat_id: conversationId } = request.params
    await checkReader(request, conversationId)
    const participants = await listMembers(db, conversationId)
    return { participant_ids: participants.map((p) => p.user_id), participants }
  })

  /** Delivers the system message of a membership change live (the rooms drop a removed member's sockets at it). */
  async function announce (conversationId: string, change: MembershipChange) {
    if (change.message !== null) await feed.message(change.message)
    return { conversation_id: conversationId, ...change }
  }

  fastify.post('/chat/:chat_id/participants', {
    schema: {
      summary: 'Add members',
      description: 'Only an owner may add members. Stores a system message (msg_type 3) recording the change, delivered live like any message. ' +
        'Added users can join at once.',
      tags: ['chat'],
      params: ChatParamsSchema,
      body: AddParticipantsBodySchema,
      response: { 200: MembershipChangeSchema, ...errorResponses }
    }
  }, async (request) => {
    const { chat_id: conversationId } = request.params
    const actorId = actingUser(request, request.body.actor_id)
    if (actorId === undefined) throw new HttpError(400, 'bad_request', 'body must have required property \'actor_id\'')
    return announce(conversationId, await addParticipants(chat, { conversationId, actorId, userIds: request.body.user_ids }))
  })

  fastify.delete('/chat/:chat_id/participants/:user_id', {
    schema: {
      summary: 'Remove a member, or leave',
      description: 'An owner may remove anyone; any member may remove themselves. Stores a system message (msg_type 3) recording the change; ' +
        'the removed user\'s sockets leave the conversation at once (a `removed` frame) and can no longer join, send or read.',
      tags: ['chat'],
      params: ParticipantParamsSchema,
      querystring: ActorQuerySchema,
      response: { 200: MembershipChangeSchema, ...errorResponses }
    }
  }, async (request) => {
    const { chat_id: conversationId, user_id: userId } = request.params
    const actorId = actingUser(request, request.query.actor_id)
    if (actorId === undefined) throw new HttpError(400, 'bad_request', 'querystring must have required property \'actor_id\'')
    return announce(conversationId, await removeParticipant(chat, { conversationId, actorId, userId }))
  })

  fastify.put('/chat/:chat_id/mute', {
    schema: {
      summary: 'Mute or unmute a conversation for one member',
      description: 'Muted members get no offline notifications until `until`; null unmutes.',
      tags: ['chat'],
      params: ChatParamsSchema,
      body: MuteBodySchema,
      response: { 200: MuteSchema, ...errorResponses }
    }
  }, async (request) => {
    const { chat_id: conversationId } = request.params
    const userId = actingUser(request, request.body.user_id)
    if (userId === undefined) throw new HttpError(400, 'bad_request', 'body must have required property \'user_id\'')
    const until = request.body.until === null ? null : new Date(request.body.until)
    await setMute(chat, conversationId, userId, until)
    return { conversation_id: conversationId, user_id: userId, muted_until: until?.toISOString() ?? null }
  })

  fastify.post('/chat/:chat_id/read', {
    schema: {
      summary: 'Mark messages read',
      description: 'Moves the reader\'s read position to message_id (it never moves backwards), writes a read receipt for it, ' +
        'and, when the position moved, sends a read frame to every socket joined to the conversation.',
      tags: ['chat'],
      params: ChatParamsSchema,
      body: ReadBodySchema,
      response: { 200: ReadPositionSchema, ...errorResponses }
    }
  }, async (request) => {
    const { chat_id: conversationId } = request.params
    const userId = actingUser(request, request.body.user_id)
    if (userId === undefined) throw new HttpError(400, 'bad_request', 'body must have required property \'user_id\'')
    const position = await markRead(chat, conversationId, userId, request.body.message_id)
    if (position.moved) await feed.read(position)
    const { moved: _moved, ...answer } = position
    return answer
  })
}

export default routes
