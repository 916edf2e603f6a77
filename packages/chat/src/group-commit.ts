// Group commit: the messages that arrive while earlier writes are in flight (or within a short
// window) are stored together, in one statement and one transaction: one multi-row INSERT, one
// seq bump per conversation, one commit (one WAL flush) for all of them. Each caller is still
// answered only after that commit, with its own stored message; nothing changes for callers of
// storeMessage except that concurrent sends share a round trip.
//
// Guarantees kept from the one-message path (messages.ts):
// - seq is gap-free and strictly increasing per conversation: a batch locks its conversations
//   (in id order, so concurrent batches cannot deadlock), numbers its messages after last_seq in
//   arrival order, and bumps last_seq by exactly the number of rows it inserts, in one statement
//   that either stores every row or none;
// - a sender's messages to one conversation are numbered in the order they were handed to
//   store(), even when the later ones arrive before the first is stored: a message waits while
//   an earlier one of the same sender and conversation is in a batch in flight (takeBatch), and a
//   batch ends only after the messages it left to the one-message path are stored;
// - a repeated id or dedupe key returns the first message: repeats inside a batch wait for the
//   first and get its message; repeats of stored rows are found by the statement and returned
//   as they are; a row committed elsewhere between the statement's snapshot and its lock makes
//   the INSERT fail on the unique index, and the fallback below settles it;
// - a new message is stored only while its sender is a member (and, in a direct conversation,
//   not blocked by the other member): after the conversation's row, the statement locks the
//   sender's participant row (FOR KEY SHARE, which a removal's DELETE conflicts with), so a
//   removal that committed while the statement waited for the conversation drops the sender
//   (a locked row is read as it is now, not as of the statement's snapshot), and one that comes
//   later waits for this commit. Blocks are read as of the statement's start. A refused message
//   is not stored and its sender gets NotParticipantError or BlockedError;
// - nobody gets a false ack: when the batch statement fails, nothing of it was stored, and every
//   message is stored again on its own, in arrival order, through the one-message path, so one
//   bad row fails only its own sender;
// - a reply is counted on its parent (reply_count, last_reply_at) by the statement that stores
//   it, and only then: a repeat is not counted again. A parent the statement cannot see as a
//   top-level message of the conversation (wrong, or stored by this same batch) leaves the reply
//   to the one-message path, after the batch, which stores it or refuses it (InvalidInputError);
// - mentions are recorded by user (chat.message_mention) by the statement that stores the message.
import { CompiledQuery, type Kysely } from 'kysely'
import type { Database } from '@chatty/db'
import { BlockedError, ConversationNotFoundError, NotParticipantError } from './errors.ts'
import { messageIdOf, storeSingle, toMessage, type MessageRowLike } from './messages.ts'
import type { MessageWriter } from './context.ts'
import type { Stored, StoreMessageInput } from './model.ts'

export interface GroupCommitOptions {
  /** Most messages written by one statement. Default 256. */
  maxBatch?: number
  /**
   * Full batches written at once. Default 4. A partial batch is not written beside another
   * write: the batches of one moment share conversations, so a second one would only wait for the
   * first one's row locks and commit (docs/performance.md, "Latency at a fixed rate"); its
   * messages gather until the write in flight finishes, then go as one batch.
   */
  maxInFlight?: number
  /**
   * How long the first message of a batch waits for company when a write slot is free, in ms.
   * 0 (the default) gathers what arrives in the same event-loop turn: no added latency when idle.
   */
  windowMs?: number
  /**
   * Runs the batch statement as a named prepared statement (parsed and planned once per
   * connection) when given the process's pg pool; otherwise it goes through Kysely unnamed.
   */
  pool?: { query (config: { name: string, text: string, values: unknown[] }): Promise<{ rows: unknown[] }> }
}

export interface GroupCommit extends MessageWriter {
  store (input: StoreMessageInput): Promise<Stored>
  /** Writes what is waiting and resolves when every batch in flight has finished. */
  close (): Promise<void>
  /**
   * Batches written and messages in them since start, for logs and the benchmark, and the
   * messages waiting now for a batch.
   */
  stats (): { batches: number, messages: number, fallbacks: number, waiting: number }
}

/** The one-message path, used for a failed batch's members. */
type StoreOne = (db: Kysely<Database>, input: StoreMessageInput) => Promise<Stored>

interface Pending {
  input: StoreMessageInput
  id: string
  /** Its sender and conversation. */
  key: string
  resolve (stored: Stored): void
  reject (error: unknown): void
}

/** The timestamps come as Postgres' text (`created_at::text`): toMessage turns them into ISO strings without a Date. */
type BatchRow = MessageRowLike & {
  ord: number
  created: boolean
  /** Why a new message was not stored (its other columns are then null); null when it was. */
  refused: 'not_participant' | 'blocked' | 'parent' | null
}

const STATEMENT_NAME = 'chatty_store_messages_v5'

// One statement, so one implicit transaction and one round trip. $1..$11 are parallel arrays, one
// element per message in arrival order (ord). given_id is the caller's id, when it chose one;
// mentions the mentioned user ids joined with commas ('' for none: arrays of arrays must be
// rectangular).
const STORE_BATCH_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int2[], $6::text[], $7::text[], $8::text[], $9::uuid[], $10::uuid[], $11::text[])
    WITH ORDINALITY AS t (id, conversation_id, sender_id, body, msg_type, attachment_url, attachment_meta, dedupe_key, given_id, parent_id, mentions, ord)
),
existing AS (
  SELECT DISTINCT ON (e.ord) e.* FROM (
    SELECT i.ord, m.* FROM input i JOIN chat.message m ON m.id = i.given_id AND m.conversation_id = i.conversation_id
    UNION ALL
    SELECT i.ord, m.* FROM input i JOIN chat.message m
      ON m.conversation_id = i.conversation_id AND m.sender_id = i.sender_id AND m.dedupe_key = i.dedupe_key
  ) e ORDER BY e.ord, e.seq
),
fresh AS (
  SELECT * FROM input WHERE ord NOT IN (SELECT ord FROM existing)
),
locked AS (
  SELECT c.id, c.last_seq FROM chat.conversation c
   WHERE c.id IN (SELECT conversation_id FROM fresh)
   ORDER BY c.id
   FOR UPDATE
),
senders AS (
  SELECT p.conversation_id, p.user_id FROM chat.participant p JOIN locked l ON l.id = p.conversation_id
   WHERE (p.conversation_id, p.user_id) IN (SELECT conversation_id, sender_id FROM fresh)
   FOR KEY SHARE OF p
),
checked AS (
  SELECT f.*, s.user_id IS NOT NULL AS member,
         s.user_id IS NOT NULL
         AND (SELECT count(*) FROM (SELECT 1 FROM chat.participant m WHERE m.conversation_id = f.conversation_id LIMIT 3) n) = 2
         AND EXISTS (SELECT 1 FROM chat.participant o JOIN chat.block b ON b.blocker_id = o.user_id
                      WHERE o.conversation_id = f.conversation_id AND o.user_id <> f.sender_id AND b.blocked_id = f.sender_id) AS blocked,
         f.parent_id IS NULL
         OR EXISTS (SELECT 1 FROM chat.message p WHERE p.id = f.parent_id AND p.conversation_id = f.conversation_id AND p.parent_id IS NULL) AS parent_ok
    FROM fresh f
    JOIN locked l ON l.id = f.conversation_id
    LEFT JOIN senders s ON s.conversation_id = f.conversation_id AND s.user_id = f.sender_id
),
numbered AS (
  SELECT k.*, l.last_seq + row_number() OVER (PARTITION BY k.conversation_id ORDER BY k.ord) AS seq
    FROM checked k JOIN locked l ON l.id = k.conversation_id
   WHERE k.member AND NOT k.blocked AND k.parent_ok
),
bumped AS (
  UPDATE chat.conversation c SET last_seq = c.last_seq + n.count
    FROM (SELECT conversation_id, count(*) AS count FROM numbered GROUP BY conversation_id) n
   WHERE c.id = n.conversation_id
),
inserted AS (
  INSERT INTO chat.message (id, conversation_id, sender_id, seq, body, msg_type, attachment_url, attachment_meta, dedupe_key, parent_id, mentioned_user_ids)
  SELECT id, conversation_id, sender_id, seq, body, msg_type, attachment_url, attachment_meta::json, dedupe_key, parent_id,
         string_to_array(mentions, ',')::uuid[]
    FROM numbered
  RETURNING *
),
replied AS (
  UPDATE chat.message p SET reply_count = p.reply_count + r.count, last_reply_at = greatest(p.last_reply_at, r.at)
    FROM (SELECT parent_id, count(*) AS count, max(created_at) AS at FROM inserted WHERE parent_id IS NOT NULL GROUP BY parent_id) r
   WHERE p.id = r.parent_id
),
mentioned AS (
  INSERT INTO chat.message_mention (user_id, conversation_id, seq, message_id, created_at)
  SELECT DISTINCT u.user_id, i.conversation_id, i.seq, i.id, i.created_at
    FROM inserted i CROSS JOIN LATERAL unnest(i.mentioned_user_ids) AS u (user_id)
   WHERE u.user_id <> i.sender_id
)
SELECT n.ord, true AS created, m.id, m.conversation_id, m.sender_id, m.created_at::text AS created_at, m.body, m.msg_type,
       m.attachment_url, m.attachment_meta, m.dedupe_key, m.seq, m.edited_at::text AS edited_at, m.deleted_at::text AS deleted_at,
       m.parent_id, m.reply_count, m.last_reply_at::text AS last_reply_at, m.mentioned_user_ids, NULL::text AS refused
  FROM inserted m JOIN numbered n ON n.id = m.id
UNION ALL
SELECT e.ord, false AS created, e.id, e.conversation_id, e.sender_id, e.created_at::text, e.body, e.msg_type,
       e.attachment_url, e.attachment_meta, e.dedupe_key, e.seq, e.edited_at::text, e.deleted_at::text,
       e.parent_id, e.reply_count, e.last_reply_at::text, e.mentioned_user_ids, NULL AS refused
  FROM existing e
UNION ALL
SELECT k.ord, false AS created, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       CASE WHEN NOT k.member THEN 'not_participant' WHEN k.blocked THEN 'blocked' ELSE 'parent' END AS refused
  FROM checked k WHERE NOT k.member OR k.blocked OR NOT k.parent_ok`

/** Keys under which a repeat of this send would find it: its id, and its dedupe key. */
function identities (input: StoreMessageInput): string[] {
  const keys: string[] = []
  const conversation = input.conversationId.toLowerCase()
  if (input.id !== undefined) keys.push(`${conversation} id ${input.id.toLowerCase()}`)
  const dedupeKey = input.content.dedupe_key
  if (dedupeKey !== null) keys.push(`${conversation} ${input.senderId.toLowerCase()} key ${dedupeKey}`)
  return keys
}

/**
 * The writer a service hands to createChat: concurrent stores share one statement. One per
 * process and database; close() it before destroying the database.
 */
export function createGroupCommit (db: Kysely<Database>, options: GroupCommitOptions = {}): GroupCommit {
  const storeOne: StoreOne = storeSingle
  const maxBatch = options.maxBatch ?? 256
  const maxInFlight = options.maxInFlight ?? 4
  const windowMs = options.windowMs ?? 0
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`)
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`maxInFlight must be a positive integer, got ${maxInFlight}`)
  const { pool } = options

  let waiting: Pending[] = []
  let inFlight = 0
  let scheduled = false
  let closed = false
  const running = new Set<Promise<void>>()
  const counts = { batches: 0, messages: 0, fallbacks: 0 }
  /**
   * Messages in the batches in flight, per sender and conversation. A client may hand a
   * conversation several messages before the first is stored (a websocket keeps its sends
   * outstanding), and two batches written at once take the conversation's row lock in whichever
   * order Postgres serves them, so a sender's message waits while an earlier one of the same
   * conversation is in a batch in flight: each sender's messages are numbered in the order given.
   */
  const inFlightBySender = new Map<string, number>()
  /** Messages waiting, per sender and conversation. */
  const waitingBySender = new Map<string, number>()
  /** Messages waiting whose sender has none in flight: what the next batch can take. */
  let ready = 0

  function senderKey (input: StoreMessageInput): string {
    return `${input.conversationId.toLowerCase()} ${input.senderId.toLowerCase()}`
  }

  function add (map: Map<string, number>, key: string, n: number): number {
    const count = (map.get(key) ?? 0) + n
    if (count === 0) map.delete(key)
    else map.set(key, count)
    return count
  }

  function enqueue (entry: Pending): void {
    waiting.push(entry)
    add(waitingBySender, entry.key, 1)
    if (!inFlightBySender.has(entry.key)) ready++
  }

  /**
   * The next batch: the first messages waiting whose sender has no earlier one in flight. Beside
   * another write only a full batch goes (`full`): a smaller one would wait for that write's row
   * locks anyway. Undefined when there is no such batch.
   */
  function takeBatch (full: boolean): Pending[] | undefined {
    if (ready === 0 || (full && ready < maxBatch)) return undefined
    let batch: Pending[]
    if (ready === waiting.length) {
      batch = waiting.length <= maxBatch ? waiting : waiting.slice(0, maxBatch)
      waiting = waiting.length <= maxBatch ? [] : waiting.slice(maxBatch)
    } else {
      batch = []
      const held: Pending[] = []
      for (const entry of waiting) {
        if (batch.length < maxBatch && !inFlightBySender.has(entry.key)) batch.push(entry)
        else held.push(entry)
      }
      waiting = held
    }
    ready -= batch.length
    for (const entry of batch) add(waitingBySender, entry.key, -1)
    for (const entry of batch) {
      // A sender's later messages wait while this one is in flight.
      if (add(inFlightBySender, entry.key, 1) === 1) ready -= waitingBySender.get(entry.key) ?? 0
    }
    return batch
  }

  function release (batch: Pending[]): void {
    for (const entry of batch) {
      if (add(inFlightBySender, entry.key, -1) === 0) ready += waitingBySender.get(entry.key) ?? 0
    }
  }

  function schedule (): void {
    if (scheduled || ready === 0) return
    if (ready >= maxBatch) {
      flush()
      return
    }
    // A write in flight flushes what gathered when it finishes.
    if (inFlight > 0) return
    scheduled = true
    const fire = () => {
      scheduled = false
      flush()
    }
    if (windowMs > 0) setTimeout(fire, windowMs)
    else setImmediate(fire)
  }

  function flush (): void {
    while (waiting.length > 0 && inFlight < maxInFlight) {
      const batch = takeBatch(inFlight > 0)
      // The end of a write in flight flushes again.
      if (batch === undefined) return
      inFlight++
      const done: Promise<void> = write(batch).finally(() => {
        inFlight--
        release(batch)
        running.delete(done)
        // What gathered meanwhile goes out at once: it has waited a whole write already.
        if (waiting.length > 0) flush()
      })
      running.add(done)
    }
  }

  async function run (values: unknown[]): Promise<BatchRow[]> {
    if (pool !== undefined) return (await pool.query({ name: STATEMENT_NAME, text: STORE_BATCH_SQL, values })).rows as BatchRow[]
    return (await db.executeQuery<BatchRow>(CompiledQuery.raw(STORE_BATCH_SQL, values))).rows
  }

  async function write (batch: Pending[]): Promise<void> {
    // Messages stored on their own after the batch: the batch ends with them, so that a sender's
    // next messages wait for them (takeBatch).
    const after: Array<Promise<void>> = []
    try {
      await writeBatch(batch, after)
    } finally {
      // A repeat of a message that then failed is tried on its own too, and joins the list.
      while (after.length > 0) await Promise.all(after.splice(0))
    }
  }

  async function writeBatch (batch: Pending[], after: Array<Promise<void>>): Promise<void> {
    // Repeats inside the batch follow the first send with the same id or dedupe key.
    const leaders: Pending[] = []
    const followers = new Map<Pending, Pending[]>()
    const byIdentity = new Map<string, Pending>()
    for (const entry of batch) {
      const keys = identities(entry.input)
      const leader = keys.map((key) => byIdentity.get(key)).find((found) => found !== undefined)
      if (leader === undefined) {
        leaders.push(entry)
        for (const key of keys) byIdentity.set(key, entry)
      } else {
        const list = followers.get(leader)
        if (list === undefined) followers.set(leader, [entry])
        else list.push(entry)
      }
    }
    const settle = (leader: Pending, outcome: { stored: Stored } | { error: unknown }) => {
      if ('stored' in outcome) leader.resolve(outcome.stored)
      else leader.reject(outcome.error)
      for (const follower of followers.get(leader) ?? []) {
        // A repeat gets the first message; if the first failed, the repeat is tried on its own.
        if ('stored' in outcome) follower.resolve({ message: outcome.stored.message, created: false })
        else after.push(storeOne(db, follower.input).then(follower.resolve, follower.reject))
      }
    }

    counts.batches++
    counts.messages += leaders.length
    let rows: BatchRow[]
    try {
      rows = await run([
        leaders.map((e) => e.id),
        leaders.map((e) => e.input.conversationId),
        leaders.map((e) => e.input.senderId),
        leaders.map((e) => e.input.content.body),
        leaders.map((e) => e.input.content.msg_type),
        leaders.map((e) => e.input.content.attachment_url),
        leaders.map((e) => e.input.content.attachment_meta),
        leaders.map((e) => e.input.content.dedupe_key),
        leaders.map((e) => e.input.id ?? null),
        leaders.map((e) => e.input.content.parent_id ?? null),
        leaders.map((e) => (e.input.content.mentioned_user_ids ?? []).join(','))
      ])
    } catch {
      // Nothing of the batch was stored. Each message is stored on its own, in arrival order, so
      // a row that cannot be stored fails its own sender only and seq order is kept.
      counts.fallbacks++
      for (const leader of leaders) {
        try {
          // With the id the batch used: had the batch committed after all (a connection lost
          // after COMMIT), the retry finds that row instead of storing a second.
          settle(leader, { stored: await storeOne(db, { ...leader.input, id: leader.id }) })
        } catch (error) {
          settle(leader, { error })
        }
      }
      return
    }
    const byOrd = new Map<number, BatchRow>()
    for (const row of rows) byOrd.set(Number(row.ord), row)
    leaders.forEach((leader, i) => {
      const row = byOrd.get(i + 1)
      // No row: its conversation does not exist (or was deleted before the batch locked it).
      if (row === undefined) {
        settle(leader, { error: new ConversationNotFoundError() })
        return
      }
      if (row.refused === 'parent') {
        // Its parent may be in this very batch, invisible to the statement: the one-message
        // path, now that the batch has committed, stores the reply or refuses it.
        after.push(storeOne(db, { ...leader.input, id: leader.id }).then((stored) => settle(leader, { stored }), (error: unknown) => settle(leader, { error })))
        return
      }
      if (row.refused !== null) {
        settle(leader, { error: row.refused === 'blocked' ? new BlockedError() : new NotParticipantError() })
        return
      }
      const { ord: _ord, created, refused: _refused, ...message } = row
      settle(leader, { stored: { message: toMessage(message), created } })
    })
  }

  return {
    store (input) {
      if (closed) return storeOne(db, input)
      return new Promise<Stored>((resolve, reject) => {
        enqueue({ input, id: messageIdOf(input), key: senderKey(input), resolve, reject })
        schedule()
      })
    },
    async close () {
      closed = true
      flush()
      while (running.size > 0 || waiting.length > 0) {
        await Promise.allSettled([...running])
        flush()
      }
    },
    stats: () => ({ ...counts, waiting: waiting.length })
  }
}
