// The presence port: which users have an open websocket on which api process. Each api process
// registers itself with a heartbeat; its entries count only while that heartbeat is fresh, so a
// process that dies without cleaning up takes its users offline after one TTL, with no sweeper
// needed for the answer to be right. The sweep exists to clean up and to tell the others who
// went offline.

export interface PresenceStore {
  /**
   * Registers the process, or extends its life by the store's TTL. Resolves false when the
   * process was not registered (its first heartbeat, or it was swept after missing heartbeats):
   * the caller then adds its users again.
   */
  heartbeat (processId: string): Promise<boolean>
  /**
   * Records that these users have at least one socket on the process, and resolves with those
   * of them that also have an entry on another live process: online() with exceptProcess,
   * answered by the same round trip.
   */
  add (processId: string, userIds: string[]): Promise<Set<string>>
  /** Records that these users have no socket left on the process. */
  remove (processId: string, userIds: string[]): Promise<void>
  /** The given users that have an entry on a live process (other than `exceptProcess`). */
  online (userIds: string[], options?: { exceptProcess?: string }): Promise<Set<string>>
  /** Drops a process and its entries at once (a clean shutdown); resolves with its users. */
  removeProcess (processId: string): Promise<string[]>
  /**
   * Drops every process whose heartbeat expired, with its entries, and resolves with their
   * users. Safe to run from every process at once: each expired process is returned to exactly
   * one caller.
   */
  sweep (): Promise<string[]>
  /** Releases what the adapter opened (not a database handle it was given). */
  close (): Promise<void>
}
