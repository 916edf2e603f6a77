// Users and conversations for a scenario, created through the api's REST routes (so they go
// through the same code, cache invalidation included, as a real client's).
import { randomUUID } from 'node:crypto'
import pg from 'pg'

export interface Room {
  id: string
  members: string[]
}

export async function createRooms (apiUrl: string, count: number, size: number, concurrency = 16): Promise<Room[]> {
  const rooms: Room[] = new Array(count)
  let next = 0
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const members = Array.from({ length: size }, () => randomUUID())
      const response = await fetch(`${apiUrl}/api/v1/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ participant_ids: members })
      })
      if (response.status !== 201) throw new Error(`POST /api/v1/chat answered ${response.status}: ${await response.text()}`)
      const { id } = await response.json() as { id: string }
      rooms[i] = { id, members }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return rooms
}

export interface StoredCheck {
  /** Rows stored per conversation. */
  stored: Record<string, number>
  /** Conversations whose seqs are not exactly 1..count. */
  seqProblems: string[]
}

/** What the database holds for these conversations: row counts, and whether seq is 1..n with no gap. */
export async function checkStored (dbUrl: string, conversationIds: string[]): Promise<StoredCheck> {
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ id: string, n: string, max: string | null, min: string | null, last_seq: string }>(`
      SELECT c.id, count(m.id) AS n, max(m.seq) AS max, min(m.seq) AS min, c.last_seq
        FROM chat.conversation c LEFT JOIN chat.message m ON m.conversation_id = c.id
       WHERE c.id = ANY ($1::uuid[]) GROUP BY c.id`, [conversationIds])
    const stored: Record<string, number> = {}
    const seqProblems: string[] = []
    for (const row of rows) {
      const n = Number(row.n)
      stored[row.id] = n
      if (n > 0 && (Number(row.min) !== 1 || Number(row.max) !== n)) seqProblems.push(row.id)
      if (Number(row.last_seq) !== n) seqProblems.push(row.id)
    }
    return { stored, seqProblems }
  } finally {
    await client.end()
  }
}
