// Membership facts served from the cache port instead of a query per send and per join: a
// conversation's member list and, for a direct conversation, which of its two members blocked
// the other (`members:<conversation>`). Whatever changes them deletes the key after committing,
// which reaches every process through the cache's invalidation channel (Redis pub/sub, or
// Postgres NOTIFY without Redis).
//
// A delete can fail (Redis unreachable when the change commits), and a Redis restarted from its
// append-only file brings old values back, so a cached fact is never trusted on its own: it
// carries the conversation's member_version (migration 000009) it was read at, and is used only
// while that is still the conversation's version. Every change bumps the version in its own
// transaction and NOTIFYs MEMBERSHIP_CHANNEL there too, so the versions a process keeps (the
// `versions` cache: in memory, dropped by those notifications, and kept only while it listens)
// are current without a query per check; without them, each check reads the version (one
// primary-key row).
import { sql, type Kysely, type Transaction } from 'kysely'
import type { Cache } from '@chatty/cache'
import type { Database } from '@chatty/db'

/** The Postgres NOTIFY channel of membership changes; the payload is the conversation id. */
export const MEMBERSHIP_CHANNEL = 'chatty_membership'

export interface MembershipCacheOptions {
  /** How long a fact is kept without an invalidation. Default 60 s. */
  ttlMs?: number
  /**
   * Conversation versions (conversation id -> member_version) kept in this process, dropped by
   * MEMBERSHIP_CHANNEL's notifications: an in-memory cache wired to that channel. Without it,
   * every check reads the version from the database.
   */
  versions?: Pick<Cache, 'getOrLoad'>
}

/** A conversation's membership as of one member_version. */
export interface MembershipFacts {
  version: number
  /** Lower-case member ids. */
  members: string[]
  /** In a direct (two-member) conversation, the members who blocked the other one; else empty. */
  blockers: string[]
}

export interface MembershipView {
  members: ReadonlySet<string>
  blockers: readonly string[]
  /** Whether the facts came from the cache (and may predate a change not yet announced here). */
  cached: boolean
}

export interface MembershipLoaders {
  /** The conversation's member_version; undefined when it does not exist. */
  version (): Promise<number | undefined>
  /** The facts, read from the database; null when the conversation does not exist. */
  facts (): Promise<MembershipFacts | null>
}

export interface MembershipCache {
  /** The membership, current as of the conversation's version; null when it does not exist. */
  membership (conversationId: string, load: MembershipLoaders): Promise<MembershipView | null>
  /** After a membership or block change has committed (its version bumped). */
  forget (conversationIds: string | readonly string[]): Promise<void>
}

const membersKey = (conversationId: string) => `members:${conversationId.toLowerCase()}`

export function createMembershipCache (cache: Pick<Cache, 'getOrLoad' | 'delete'>, options: MembershipCacheOptions = {}): MembershipCache {
  const ttlMs = options.ttlMs ?? 60_000
  const { versions } = options
  // Cached facts are shared, frozen objects: one Set per object, built on its first use.
  const sets = new WeakMap<MembershipFacts, ReadonlySet<string>>()
  const view = (facts: MembershipFacts, cached: boolean): MembershipView => {
    let members = sets.get(facts)
    if (members === undefined) {
      members = new Set(facts.members)
      sets.set(facts, members)
    }
    return { members, blockers: facts.blockers, cached }
  }
  const forget = (conversationIds: string | readonly string[]) =>
    cache.delete((typeof conversationIds === 'string' ? [conversationIds] : conversationIds).map(membersKey))

  return {
    async membership (conversationId, load) {
      const key = conversationId.toLowerCase()
      // The version of a conversation that does not exist is not kept (the load answers
      // undefined): there is nothing to check against.
      const version = versions === undefined
        ? await load.version()
        : await versions.getOrLoad<number>(key, load.version, ttlMs)
      if (version === undefined) return null
      let loaded: MembershipFacts | null | undefined
      const facts = await cache.getOrLoad<MembershipFacts | null>(membersKey(key), async () => (loaded = await load.facts()), ttlMs)
      if (loaded !== undefined) return loaded === null ? null : view(loaded, false)
      if (facts !== undefined && facts !== null && facts.version === version) return view(facts, true)
      // The cache missed an invalidation (or the version here is a moment behind): read the
      // facts again, and drop the stale ones for everyone (best effort: that is what failed).
      const fresh = await load.facts()
      await forget(key).catch(() => {})
      return fresh === null ? null : view(fresh, false)
    },
    forget
  }
}

/**
 * Bumps the membership version of conversations, inside the transaction that changes their
 * members or the blocks between them, and announces it on MEMBERSHIP_CHANNEL (delivered when the
 * transaction commits, and only then). Returns the ids bumped.
 */
export async function bumpMemberVersion (trx: Transaction<Database>, conversationIds: readonly string[]): Promise<string[]> {
  if (conversationIds.length === 0) return []
  const rows = await trx.updateTable('chat.conversation')
    .set((eb) => ({ member_version: eb('member_version', '+', 1) }))
    .where('id', '=', sql<string>`any(${conversationIds}::uuid[])`)
    .returning('id')
    .execute()
  const ids = rows.map((row) => row.id)
  if (ids.length > 0) await sql`SELECT pg_notify(${MEMBERSHIP_CHANNEL}, id::text) FROM unnest(${ids}::uuid[]) AS id`.execute(trx)
  return ids
}
