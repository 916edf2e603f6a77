// The NOTIFY channel a topic is published and LISTENed on.
import { createHash } from 'node:crypto'

/** Postgres truncates identifiers to 63 bytes, which would make long channel names collide. */
const MAX_CHANNEL_BYTES = 63

/** The NOTIFY channel of a topic: readable when it fits, a hash when it does not. */
export function postgresChannel (namespace: string, topic: string): string {
  const name = `${namespace}:${topic}`
  if (Buffer.byteLength(name) <= MAX_CHANNEL_BYTES) return name
  return `#${createHash('sha256').update(name).digest('base64url')}`
}
