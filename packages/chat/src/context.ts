// The chat core's dependencies, passed in, never looked up: the database, the writer that stores
// messages and the membership cache. A service builds one Chat at start (createChat) from its
// configuration and hands it to every use case; a use case whose first parameter is `chat` may
// use any of them, one that takes `db` is a plain query.
import type { Kysely } from 'kysely'
import type { Database } from '@chatty/db'
import type { MembershipCache } from './membership-cache.ts'
import type { Stored, StoreMessageInput } from './model.ts'

/**
 * Runs a statement by name: parsed and planned once per connection (pg's prepared statements),
 * where Kysely sends every statement unnamed. The process's pg pool is one.
 */
export interface NamedStatements {
  query (config: { name: string, text: string, values: unknown[] }): Promise<{ rows: unknown[] }>
}

/**
 * Stores checked messages (the group commit, or one transaction per message). A writer stores a
 * sender's messages to one conversation in the order store() was called, even when called again
 * before the earlier ones are stored (the group commit does; without a writer, the caller must
 * wait for each message before sending the next).
 */
export interface MessageWriter {
  store (input: StoreMessageInput): Promise<Stored>
}

export interface Chat {
  readonly db: Kysely<Database>
  /** Where sends are stored; null stores each message in a transaction of its own. */
  readonly writer: MessageWriter | null
  /**
   * Membership facts for the send, join and read checks; null reads them from the database each
   * time. Changes made through this Chat invalidate it; changes made elsewhere are still seen,
   * since every fact is checked against the conversation's member_version.
   */
  readonly membership: MembershipCache | null
  /** The hot reads (history pages) as named prepared statements; null sends them unnamed. */
  readonly statements: NamedStatements | null
}

export interface ChatParts {
  db: Kysely<Database>
  writer?: MessageWriter | null
  membership?: MembershipCache | null
  statements?: NamedStatements | null
}

/** The composition root of the chat core: one per process (tests may build several). */
export function createChat (parts: ChatParts): Chat {
  return Object.freeze({ db: parts.db, writer: parts.writer ?? null, membership: parts.membership ?? null, statements: parts.statements ?? null })
}
