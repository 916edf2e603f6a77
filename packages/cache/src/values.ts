// How values and TTLs are checked and encoded, the same way in every adapter, so code tested
// against the in-memory cache behaves the same on Redis.

export function encodeValue (value: unknown): string {
  const json = value === undefined ? undefined : JSON.stringify(value)
  if (json === undefined) throw new TypeError('a cache value must be JSON-serialisable and not undefined')
  return json
}

/** Parsed and deep-frozen: local copies are shared by every caller that reads them. */
export function decodeValue (json: string): unknown {
  return freeze(JSON.parse(json))
}

function freeze (value: unknown): unknown {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) freeze(child)
    Object.freeze(value)
  }
  return value
}

/** Whole milliseconds, at least 1 (what Redis PX takes). */
export function checkTtl (ttlMs: number): number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be a positive number of milliseconds, got ${ttlMs}`)
  return Math.ceil(ttlMs)
}

export function toKeyList (keys: string | readonly string[]): readonly string[] {
  return typeof keys === 'string' ? [keys] : keys
}
