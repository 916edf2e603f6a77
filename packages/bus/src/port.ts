// The bus port: live fan-out of already-serialised frames between processes. Delivery is at
// most once: a frame published while a process is disconnected from the broker is not replayed
// to it. Durability is the message table's job; clients resume by seq.

/**
 * Receives the frames of one topic, in the order one publisher published them. Called
 * synchronously as frames arrive; a listener that throws is logged and the others still run.
 */
export type Listener = (frame: string) => void

/** Removes the subscription it was returned for. */
export type Unsubscribe = () => Promise<void>

export interface Bus {
  /**
   * Sends a frame to every process subscribed to the topic, this one included. Resolves once the
   * broker has accepted it. When the broker cannot be reached it rejects (Redis after a reconnect
   * attempt or two) instead of holding frames for later. Frames published by one process
   * reach each subscriber in the order publish was called.
   */
  publish (topic: string, frame: string): Promise<void>
  /**
   * Adds a local listener. The first listener of a topic subscribes this process at the broker,
   * and the promise resolves once the broker delivers the topic here: a frame published after
   * that reaches the listener (if the process was already subscribed, frames may arrive even
   * before it resolves). While the broker is unreachable it waits for the reconnect.
   * Listeners count like EventEmitter listeners: adding one function twice delivers twice.
   */
  subscribe (topic: string, listener: Listener): Promise<Unsubscribe>
  /** Removes one registration of the listener; the last one unsubscribes the process at the broker. */
  unsubscribe (topic: string, listener: Listener): Promise<void>
  /** Stops delivery, rejects waiting subscribes and later publishes, and closes every connection. */
  close (): Promise<void>
}

/** Where adapters report connection loss, reconnects and failing listeners. */
export type BusLog = (level: 'info' | 'warn' | 'error', message: string, error?: unknown) => void

/**
 * Topics are plain strings. A conversation's topic carries its messages; other features pick
 * names of their own that cannot look like one (e.g. "presence", "membership").
 */
export function conversationTopic (conversationId: string): string {
  return `conversation:${conversationId}`
}
