// Baseline for the websocket send path: the store alone. The api's group commit
// (packages/chat/src/group-commit.ts, its named prepared statement on a pg pool) fed by the same
// senders in the same rooms as the websocket load, each keeping one message in the store at a time
// as a socket does (its frames about one conversation are handled one after another), in a
// process of its own: no websocket, no bus, no checks, no api. What it stores per second is the
// ceiling of the send path's stored msg/s on this machine, and deliveries can be at most the room
// size times it.
import { checkMessageInput, createGroupCommit } from '@chatty/chat'
import { createDb } from '@chatty/db'
import { serveRequests } from '../lib/child.ts'

export interface StoreLoad {
  url: string
  /** Each sender: the conversation it writes to and the member it writes as. */
  senders: { conversationId: string, senderId: string }[]
  /** Messages each sender keeps in the store at once (1: as a socket does). */
  outstanding: number
  bodyBytes: number
  durationMs: number
}

export interface StoreResult {
  stored: number
  elapsedMs: number
  batches: number
  /** This process's CPU time per stored message, in us: the group commit's own work and the pg client's. */
  cpuUsPerMessage: number
  /** Per conversation, for the stored-row check. */
  storedPerConversation: Record<string, number>
}

async function run (request: StoreLoad): Promise<StoreResult> {
  // The api's pool size (DB_POOL_MAX default); the group commit uses one connection per batch in flight.
  const { db, pool, destroy } = createDb(request.url, { max: 10, applicationName: 'chatty-bench-store' })
  const writer = createGroupCommit(db, { pool })
  const content = checkMessageInput({ body: 'x'.repeat(request.bodyBytes) })
  const storedPerConversation: Record<string, number> = {}
  let stored = 0
  try {
    // One untimed round to prepare the statement on the connections.
    await Promise.all(request.senders.map(async ({ conversationId, senderId }) => {
      await writer.store({ conversationId, senderId, content })
      storedPerConversation[conversationId] = (storedPerConversation[conversationId] ?? 0) + 1
    }))
    const before = writer.stats().batches
    const cpu = process.cpuUsage()
    const started = performance.now()
    const deadline = started + request.durationMs
    await Promise.all(request.senders.flatMap(({ conversationId, senderId }) => Array.from({ length: request.outstanding }, async () => {
      while (performance.now() < deadline) {
        await writer.store({ conversationId, senderId, content })
        storedPerConversation[conversationId] = (storedPerConversation[conversationId] ?? 0) + 1
        stored++
      }
    })))
    const elapsedMs = performance.now() - started
    const used = process.cpuUsage(cpu)
    return { stored, elapsedMs, batches: writer.stats().batches - before, cpuUsPerMessage: (used.user + used.system) / stored, storedPerConversation }
  } finally {
    await writer.close()
    await destroy()
  }
}

serveRequests({ run })
