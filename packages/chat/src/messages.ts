// Storing and reading messages. Every stored message takes the next seq of its conversation in
// the same transaction, so seq is strictly increasing per conversation; edits and deletes take
// seqs of their own (edits.ts), so the conversation's seqs are gap-free over messages and those
// events together.
import { randomUUID } from 'node:crypto'
import { CompiledQuery, sql, type Kysely, type SelectQueryBuilder, type Transaction } from 'kysely'
import { v5 as uuidV5 } from 'uuid'
import type { Database, MessageRow } from '@chatty/db'
import { requireCanSend, requireCanSendNow, requireConversation, requireParticipant, requireParticipantNow, type Executor } from './conversations.ts'
import { ConversationNotFoundError, MessageNotFoundError } from './errors.ts'
import type { Chat } from './context.ts'
import type { Message, Stored, StoreMessageInput } from './model.ts'
import { countReply, recordMentions, requireReplyAndMentions } from './replies.ts'
import { checkMessageInput, type MessageContent, type MessageInput } from './rules.ts'

export type { Message, Stored, StoreMessageInput } from './model.ts'

/**
 * A message row with its timestamps either as Dates (the pool's `timestamp` parser) or as
 * Postgres' own text for them (`created_at::text`, see MESSAGE_COLUMNS): reads of many rows take
 * the text, which becomes the same ISO string without a Date on the way.
 */
export type MessageRowLike = Omit<MessageRow, 'created_at' | 'edited_at' | 'deleted_at' | 'last_reply_at' | 'pinned_at'> & {
  created_at: Date | string
  edited_at: Date | string | null
  deleted_at: Date | string | null
  last_reply_at: Date | string | null
  pinned_at: Date | string | null
}

/**
 * Postgres' text for a `timestamp` in the ISO DateStyle, years 0001-9999, up to microseconds. Every
 * connection chatty opens pins that style (@chatty/db's pinSessionSettings), so a database set to
 * another one does not change it.
 */
const PG_TIMESTAMP_TEXT = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?$/

/**
 * A `timestamp` (UTC, the schema's convention) as Date.prototype.toISOString writes it:
 * milliseconds always present, finer digits dropped (as V8 does when it parses them). Any
 * other text goes through a Date as the pool's parser would take it.
 */
export function isoTimestamp (value: Date | string): string {
  if (typeof value !== 'string') return value.toISOString()
  if (!PG_TIMESTAMP_TEXT.test(value)) return new Date(value.replace(' ', 'T') + 'Z').toISOString()
  const millis = value.length === 19 ? '000' : value.length >= 23 ? value.slice(20, 23) : (value.slice(20) + '00').slice(0, 3)
  return value.slice(0, 10) + 'T' + value.slice(11, 19) + '.' + millis + 'Z'
}

function isoTimestampOrNull (value: Date | string | null | undefined): string | null {
  return value === null || value === undefined ? null : isoTimestamp(value)
}

export function toMessage (row: MessageRowLike): Message {
  return {
    id: row.id,
    conversation_id: row.conversation_id,
    sender_id: row.sender_id,
    seq: row.seq,
    created_at: isoTimestamp(row.created_at),
    body: row.body,
    msg_type: row.msg_type,
    attachment_url: row.attachment_url,
    attachment_meta: row.attachment_meta ?? null,
    dedupe_key: row.dedupe_key,
    edited_at: isoTimestampOrNull(row.edited_at),
    deleted_at: isoTimestampOrNull(row.deleted_at),
    parent_id: row.parent_id,
    reply_count: row.reply_count,
    last_reply_at: isoTimestampOrNull(row.last_reply_at),
    mentioned_user_ids: row.mentioned_user_ids,
    reactions: row.reactions ?? {},
    pinned_at: isoTimestampOrNull(row.pinned_at),
    pinned_by: row.pinned_by ?? null
  }
}

/**
 * Every column of chat.message, the timestamps as Postgres' text (the cast runs the output
 * function Postgres runs anyway to send a column as text): history pages map them to ISO strings
 * by slicing instead of a Date parsed and formatted per timestamp (docs/performance.md).
 */
const MESSAGE_COLUMNS = [
  'id', 'conversation_id', 'sender_id', 'seq', sql<string>`created_at::text`.as('created_at'), 'body', 'msg_type',
  'attachment_url', 'attachment_meta', 'dedupe_key', sql<string | null>`edited_at::text`.as('edited_at'),
  sql<string | null>`deleted_at::text`.as('deleted_at'), 'parent_id', 'reply_count', sql<string | null>`last_reply_at::text`.as('last_reply_at'),
  'mentioned_user_ids', 'reactions', sql<string | null>`pinned_at::text`.as('pinned_at'), 'pinned_by'
] as const

class AlreadyStored extends Error {}

/** Namespace of the ids derived from dedupe keys. Fixed: changing it would change every derived id. */
const DEDUPED_ID_NAMESPACE = '6f0c3f0e-5a57-4d5e-9a3c-2b8f1d7c4e91'

/**
 * The id of the message stored by a send with a dedupe key: a name-based uuid (v5) of the triple
 * the unique index holds, (conversation, sender, dedupe_key), so every repeat of the send, over
 * any path, before or after the first one is stored, names the same message.
 */
export function dedupedMessageId (conversationId: string, senderId: string, dedupeKey: string): string {
  return uuidV5(`${conversationId.toLowerCase()}/${senderId.toLowerCase()}/${dedupeKey}`, DEDUPED_ID_NAMESPACE)
}

/** The id a store of this input uses: the one given, else derived from its dedupe key, else new. */
export function messageIdOf (input: StoreMessageInput): string {
  if (input.id !== undefined) return input.id
  const dedupeKey = input.content.dedupe_key
  return dedupeKey === null ? randomUUID() : dedupedMessageId(input.conversationId, input.senderId, dedupeKey)
}

/**
 * The id an accepted send will be stored under, answered before it is stored (the HTTP path):
 * without a dedupe key a new one; with one, the id of the message already stored with that key
 * (it may predate derived ids), else the derived id, which every retry derives alike.
 */
export async function acceptedMessageId (db: Executor, conversationId: string, senderId: string, dedupeKey: string | null): Promise<string> {
  if (dedupeKey === null) return randomUUID()
  const stored = await db.selectFrom('chat.message').select('id')
    .where('conversation_id', '=', conversationId).where('sender_id', '=', senderId).where('dedupe_key', '=', dedupeKey)
    .executeTakeFirst()
  return stored?.id ?? dedupedMessageId(conversationId, senderId, dedupeKey)
}

async function findExisting (db: Executor, input: StoreMessageInput): Promise<MessageRow | undefined> {
  let query = db.selectFrom('chat.message').selectAll().where('conversation_id', '=', input.conversationId)
  const dedupeKey = input.content.dedupe_key
  query = query.where((eb) => {
    const byId = input.id === undefined ? [] : [eb('id', '=', input.id)]
    const byKey = dedupeKey === null ? [] : [eb.and([eb('sender_id', '=', input.senderId), eb('dedupe_key', '=', dedupeKey)])]
    return eb.or([...byId, ...byKey])
  })
  return query.executeTakeFirst()
}

/**
 * Stores checked content exactly once. Concurrent sends to one conversation serialise on its
 * row (the seq bump), so a repeated id or dedupe key always finds the first message. Through
 * the chat's writer (the group commit, in the services) concurrent sends share one write.
 *
 * The sender is checked again as the message is stored, under the conversation's row lock (which
 * every membership change takes): a sender removed, or blocked in a direct conversation, since
 * the send was accepted gets NotParticipantError or BlockedError and nothing is stored. A repeat
 * of a message already stored still finds it.
 */
export async function storeMessage (chat: Chat, input: StoreMessageInput): Promise<Stored> {
  return chat.writer === null ? await storeSingle(chat.db, input) : await chat.writer.store(input)
}

/**
 * Takes the conversation's next seq (for a message or a message event): bumps last_seq, which
 * locks the conversation's row until the transaction ends, so seqs commit in order and a
 * rolled-back transaction gives its seq back.
 */
export async function takeNextSeq (trx: Transaction<Database>, conversationId: string): Promise<number> {
  const conversation = await trx.updateTable('chat.conversation')
    .set((eb) => ({ last_seq: eb('last_seq', '+', 1) }))
    .where('id', '=', conversationId)
    .returning('last_seq')
    .executeTakeFirst()
  if (conversation === undefined) throw new ConversationNotFoundError()
  return conversation.last_seq
}

/**
 * Takes the conversation's next seq for an event about one of its messages (a reaction, a pin),
 * then, under that row lock, checks that the user is a member and finds the message:
 * NotParticipantError or MessageNotFoundError otherwise.
 */
export async function lockMessageForEvent (trx: Transaction<Database>, input: { conversationId: string, messageId: string, userId: string }): Promise<{ seq: number, row: MessageRow }> {
  const seq = await takeNextSeq(trx, input.conversationId)
  await requireParticipantNow(trx, input.conversationId, input.userId)
  const row = await trx.selectFrom('chat.message').selectAll()
    .where('id', '=', input.messageId).where('conversation_id', '=', input.conversationId)
    .executeTakeFirst()
  if (row === undefined) throw new MessageNotFoundError()
  return { seq, row }
}

/** storeMessage for one message in a transaction of its own. */
export async function storeSingle (db: Kysely<Database>, input: StoreMessageInput): Promise<Stored> {
  try {
    const row = await db.transaction().execute(async (trx) => {
      const seq = await takeNextSeq(trx, input.conversationId)
      await countReply(trx, input.conversationId, input.content.parent_id)
      const inserted = await trx.insertInto('chat.message')
        .values({
          id: messageIdOf(input),
          conversation_id: input.conversationId,
          sender_id: input.senderId,
          seq,
          ...input.content
        })
        .onConflict((oc) => oc.doNothing())
        .returningAll()
        .executeTakeFirst()
      // Rolling back returns the seq, keeping the sequence gap-free.
      if (inserted === undefined) throw new AlreadyStored()
      // A statement of its own, after the lock: it sees every membership change committed before
      // this transaction got the conversation's row. Throwing rolls the new row back.
      await requireCanSendNow(trx, input.conversationId, input.senderId)
      await recordMentions(trx, inserted)
      return inserted
    })
    return { message: toMessage(row), created: true }
  } catch (error) {
    if (!(error instanceof AlreadyStored)) throw error
    const existing = await findExisting(db, input)
    if (existing === undefined) throw new Error('message conflicted but no earlier copy was found')
    return { message: toMessage(existing), created: false }
  }
}

/**
 * Stores a message as part of a larger transaction (a membership change and the system message
 * recording it): takes the conversation's next seq under its row lock. No dedupe: the caller's
 * transaction decides whether it happens at all.
 */
export async function insertNextMessage (trx: Transaction<Database>, input: StoreMessageInput): Promise<Message> {
  const seq = await takeNextSeq(trx, input.conversationId)
  const row = await trx.insertInto('chat.message')
    .values({ id: input.id ?? randomUUID(), conversation_id: input.conversationId, sender_id: input.senderId, seq, ...input.content })
    .returningAll()
    .executeTakeFirstOrThrow()
  return toMessage(row)
}

export interface SendMessageInput extends MessageInput {
  id?: string
  conversationId: string
  senderId: string
}

/** The send use case: content rules, membership and blocks, parent and mentions, then store. */
export async function sendMessage (chat: Chat, input: SendMessageInput): Promise<Stored> {
  return (await acceptMessage(chat, input)).stored
}

/**
 * The send use case in two steps, for a client that keeps several sends outstanding: checks the
 * send as sendMessage does, then hands it to the chat's writer and resolves at once; `stored`
 * settles when it is stored (or refused under the lock). With a writer, sends accepted one
 * after another are stored in that order (MessageWriter). `stored` is already handled, so a
 * caller that looks at it later causes no unhandled rejection.
 */
export async function acceptMessage (chat: Chat, input: SendMessageInput): Promise<{ stored: Promise<Stored> }> {
  const content = await checkSend(chat, input)
  const stored = storeMessage(chat, { id: input.id, conversationId: input.conversationId, senderId: input.senderId, content })
  stored.catch(ignore)
  return { stored }
}

function ignore (): void {}

/** What a send is checked against before it is accepted for later storage (the HTTP path). */
export async function checkSend (chat: Chat, input: SendMessageInput): Promise<MessageContent> {
  const content = checkMessageInput(input)
  await requireCanSend(chat, input.conversationId, input.senderId)
  await requireReplyAndMentions(chat.db, input.conversationId, content)
  return content
}

export interface ListMessagesInput {
  conversationId: string
  /**
   * Who reads, when known: must be a participant (NotParticipantError otherwise). One membership
   * lookup answers both that and whether the conversation exists.
   */
  readerId?: string
  limit: number
  offset: number
  /** Only messages with seq below this; the page nearest to it. */
  beforeSeq?: number
  /** Only messages with seq above this; the page nearest to it. */
  afterSeq?: number
  /** The messages on both sides of this seq (see listAround); excludes the other cursors and offset. */
  aroundSeq?: number
  /** A thread: only the replies to this message (which must be in the conversation). */
  parentId?: string
  /** Only top-level messages: replies left out. */
  topLevel?: boolean
}

/**
 * Newest first. With after_seq the page is the `limit` messages just after the cursor (the next
 * page forward), still returned newest first.
 */
export async function listMessages (chat: Chat, input: ListMessagesInput): Promise<Message[]> {
  const { db } = chat
  if (input.readerId !== undefined) await requireParticipant(chat, input.conversationId, input.readerId)
  else await requireConversation(chat, input.conversationId)
  if (input.parentId !== undefined) await requireMessage(db, input.conversationId, input.parentId)
  if (input.aroundSeq !== undefined) return listAround(db, input, input.aroundSeq, input.limit)
  const ascending = input.afterSeq !== undefined && input.beforeSeq === undefined
  const rows = await runPageQuery(chat, input, ascending)
  if (ascending) rows.reverse()
  return rows.map(toMessage)
}

/** A page query's text, built by Kysely once per shape (thread, cursors), and its statement name. */
interface PageStatement {
  name: string
  text: string
}

/** Per Kysely instance (its plugins could write the text differently), per shape. */
const pageStatements = new WeakMap<Kysely<Database>, Map<string, PageStatement>>()

/**
 * The values of a page query, in the order Kysely's compiled text numbers them:
 * conversation, parent (a thread), before_seq, after_seq, limit, offset.
 */
function pageValues (input: ListMessagesInput): unknown[] {
  const values: unknown[] = [input.conversationId]
  if (input.parentId !== undefined) values.push(input.parentId)
  if (input.beforeSeq !== undefined) values.push(input.beforeSeq)
  if (input.afterSeq !== undefined) values.push(input.afterSeq)
  values.push(input.limit, input.offset)
  return values
}

function pageQuery (db: Executor, input: ListMessagesInput, ascending: boolean) {
  let query = threadOf(db.selectFrom('chat.message').select(MESSAGE_COLUMNS).where('conversation_id', '=', input.conversationId), input)
  if (input.beforeSeq !== undefined) query = query.where('seq', '<', input.beforeSeq)
  if (input.afterSeq !== undefined) query = query.where('seq', '>', input.afterSeq)
  return query.orderBy('seq', ascending ? 'asc' : 'desc').limit(input.limit).offset(input.offset)
}

/**
 * A history page's rows. The query's text depends only on the page's shape, so it is compiled
 * once per shape and then sent with the request's values, as a named prepared statement when
 * the chat has the pool for it: no Kysely compile, and no parse and plan in Postgres, per page
 * (docs/performance.md, history reads).
 */
async function runPageQuery (chat: Chat, input: ListMessagesInput, ascending: boolean): Promise<MessageRowLike[]> {
  const shape = `${input.parentId !== undefined ? 'thread' : input.topLevel === true ? 'top' : 'all'}_${input.beforeSeq !== undefined ? 'b' : ''}${input.afterSeq !== undefined ? 'a' : ''}`
  const values = pageValues(input)
  let statements = pageStatements.get(chat.db)
  if (statements === undefined) pageStatements.set(chat.db, statements = new Map())
  let statement = statements.get(shape)
  if (statement === undefined) {
    const compiled = pageQuery(chat.db, input, ascending).compile()
    // The values are put in order by hand for every later page: they must be the compiled ones.
    if (JSON.stringify(compiled.parameters) !== JSON.stringify(values)) throw new Error(`page query ${shape}: parameters ${JSON.stringify(compiled.parameters)} are not in the expected order`)
    statement = { name: `chatty_history_${shape}_v1`, text: compiled.sql }
    statements.set(shape, statement)
  }
  if (chat.statements !== null) return (await chat.statements.query({ name: statement.name, text: statement.text, values })).rows as MessageRowLike[]
  return (await chat.db.executeQuery<MessageRowLike>(CompiledQuery.raw(statement.text, values))).rows
}

/**
 * The page around a seq (jump to a message, open at the read position), newest first: the
 * message at the seq and the older ones get ceil(limit / 2) places, the newer ones the rest; a
 * side with fewer messages leaves its places to the other, so the page is full whenever the
 * conversation has `limit` messages.
 */
async function listAround (db: Executor, input: ListMessagesInput, aroundSeq: number, limit: number): Promise<Message[]> {
  const side = (operator: '<=' | '>', order: 'asc' | 'desc') => threadOf(db.selectFrom('chat.message').select(MESSAGE_COLUMNS), input)
    .where('conversation_id', '=', input.conversationId).where('seq', operator, aroundSeq)
    .orderBy('seq', order).limit(limit).execute()
  const [older, newer] = await Promise.all([side('<=', 'desc'), side('>', 'asc')])
  const newerCount = Math.min(newer.length, Math.max(Math.floor(limit / 2), limit - older.length))
  const olderCount = Math.min(older.length, limit - newerCount)
  return [...newer.slice(0, newerCount).reverse(), ...older.slice(0, olderCount)].map(toMessage)
}

/** The part of history a listing asks for: a thread, the top-level messages, or all. */
function threadOf<Q extends SelectQueryBuilder<Database, 'chat.message', any>> (query: Q, input: ListMessagesInput): Q {
  if (input.parentId !== undefined) return query.where('parent_id', '=', input.parentId) as Q
  if (input.topLevel === true) return query.where('parent_id', 'is', null) as Q
  return query
}

async function requireMessage (db: Executor, conversationId: string, messageId: string): Promise<void> {
  const row = await db.selectFrom('chat.message').select('id')
    .where('id', '=', messageId).where('conversation_id', '=', conversationId)
    .executeTakeFirst()
  if (row === undefined) throw new MessageNotFoundError()
}

/** Messages after a seq in ascending order: the replay for a reconnecting client. */
export async function messagesSince (db: Executor, conversationId: string, sinceSeq: number, limit: number): Promise<Message[]> {
  const rows = await db.selectFrom('chat.message').select(MESSAGE_COLUMNS)
    .where('conversation_id', '=', conversationId)
    .where('seq', '>', sinceSeq)
    .orderBy('seq', 'asc')
    .limit(limit)
    .execute()
  return rows.map(toMessage)
}
