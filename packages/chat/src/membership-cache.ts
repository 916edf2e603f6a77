// Membership facts served from the cache port instead of a query per send and per join: a
// conversation's member list (`members:<conversation>`, null when it does not exist) and, for
// direct conversations, whether the other member blocked the sender (`block:<blocker>:<blocked>`).
// Whatever changes one of them deletes its key after committing, which reaches every process
// through the cache's invalidation channel (Redis pub/sub, or Postgres NOTIFY without Redis).
import type { Kysely } from 'kysely'
import type { Cache } from '@chatty/cache'
import type { Database } from '@chatty/db'

export interface MembershipCacheOptions {
  /** How long a fact is kept without an invalidation. Default 60 s. */
  ttlMs?: number
}

export interface MembershipCache {
  /** Lower-case member ids, or null when the conversation does not exist. */
  members (conversationId: string, load: () => Promise<string[] | null>): Promise<ReadonlySet<string> | null>
  /** Whether `blocker` has blocked `blocked`. */
  blocked (blocker: string, blocked: string, load: () => Promise<boolean>): Promise<boolean>
  /** After a membership change has committed. */
  forgetMembers (conversationId: string): Promise<void>
  /** After a block or unblock has committed. */
  forgetBlock (blocker: string, blocked: string): Promise<void>
}

const membersKey = (conversationId: string) => `members:${conversationId.toLowerCase()}`
const blockKey = (blocker: string, blocked: string) => `block:${blocker.toLowerCase()}:${blocked.toLowerCase()}`

export function createMembershipCache (cache: Pick<Cache, 'getOrLoad' | 'delete'>, options: MembershipCacheOptions = {}): MembershipCache {
  const ttlMs = options.ttlMs ?? 60_000
  // Cached lists are shared, frozen arrays: one Set per list, built on its first use.
  const sets = new WeakMap<readonly string[], ReadonlySet<string>>()
  return {
    async members (conversationId, load) {
      const ids = await cache.getOrLoad<readonly string[] | null>(membersKey(conversationId), async () => await load() ?? null, ttlMs)
      if (ids === null || ids === undefined) return null
      let set = sets.get(ids)
      if (set === undefined) {
        set = new Set(ids)
        sets.set(ids, set)
      }
      return set
    },
    async blocked (blocker, blocked, load) {
      return await cache.getOrLoad<boolean>(blockKey(blocker, blocked), load, ttlMs) === true
    },
    forgetMembers: (conversationId) => cache.delete(membersKey(conversationId)),
    forgetBlock: (blocker, blocked) => cache.delete(blockKey(blocker, blocked))
  }
}

const registry = new WeakMap<Kysely<Database>, MembershipCache>()

/**
 * Makes the membership checks (requireCanSend, requireParticipant) on this Kysely instance read
 * through the cache, and the changes made through it (createConversation, blockUser,
 * unblockUser) invalidate it. Returns a function that stops both. Changes made through a
 * transaction or another instance do not invalidate: go through the registered instance.
 */
export function useMembershipCache (db: Kysely<Database>, cache: Pick<Cache, 'getOrLoad' | 'delete'>, options: MembershipCacheOptions = {}): () => void {
  if (registry.has(db)) throw new Error('this database already has a membership cache')
  registry.set(db, createMembershipCache(cache, options))
  return () => { registry.delete(db) }
}

/** The membership cache of this instance; undefined for transactions and uncached instances. */
export function membershipCacheOf (db: unknown): MembershipCache | undefined {
  return registry.get(db as Kysely<Database>)
}
