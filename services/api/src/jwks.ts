// The identity provider's signing keys (JWKS_URL), fetched and cached for token checks. Written
// here rather than taken from jose's createRemoteJWKSet because that one starts its cooldown
// only after a successful fetch: while the provider fails, every token with an unknown `kid`
// fetches again. Here every fetch, failed or not, starts the cooldown; concurrent requests share
// one fetch in flight; and a provider that cannot be asked answers KeySetUnavailableError (503),
// never a token error (401) or an unexpected one (500).
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'

export interface RemoteKeySetOptions {
  url: URL
  /** A fetched set is used this long; then it is fetched again before use. */
  cacheMaxAgeMs: number
  /** Least time between two fetches, whatever the first one's outcome. */
  cooldownMs: number
  /** A fetch that takes longer fails. Default 5000. */
  timeoutMs?: number
  /** Told of each failed fetch (at most one per cooldown). */
  onError?: (error: Error) => void
}

/** The key set could not be fetched (or was not fetched again yet after a failure). */
export class KeySetUnavailableError extends Error {
  override name = 'KeySetUnavailableError'
}

export function createRemoteKeySet (options: RemoteKeySetOptions): JWTVerifyGetKey {
  const { url, cacheMaxAgeMs, cooldownMs, timeoutMs = 5000, onError } = options
  let local: ReturnType<typeof createLocalJWKSet> | undefined
  /** When the set in `local` was fetched. */
  let fetchedAt = -Infinity
  /** When the last fetch started, and how it ended. */
  let attemptedAt = -Infinity
  let lastError: Error | undefined
  let pending: Promise<void> | undefined

  async function fetchSet (): Promise<void> {
    attemptedAt = Date.now()
    try {
      const response = await fetch(url, {
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
        headers: { accept: 'application/json, application/jwk-set+json' }
      })
      if (response.status !== 200) {
        await response.body?.cancel()
        throw new Error(`the JWKS answered ${response.status}`)
      }
      const next = createLocalJWKSet(await response.json() as JSONWebKeySet)
      local = next
      fetchedAt = Date.now()
      lastError = undefined
    } catch (error) {
      lastError = error as Error
      onError?.(lastError)
      throw unavailable(lastError)
    }
  }

  /** One fetch for every caller at a time; none within the cooldown of the last one. */
  function refresh (): Promise<void> {
    if (pending !== undefined) return pending
    if (Date.now() - attemptedAt < cooldownMs) {
      // Within the cooldown: fail fast after a failure; after a success the set in hand stands.
      return lastError === undefined ? Promise.resolve() : Promise.reject(unavailable(lastError))
    }
    const current = pending = fetchSet().finally(() => {
      if (pending === current) pending = undefined
    })
    return current
  }

  const getKey = async (header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]) => {
    if (local === undefined || Date.now() - fetchedAt >= cacheMaxAgeMs) {
      // Rejects after a failure; within the cooldown of a success the set in hand stands.
      await refresh()
      if (local === undefined) throw unavailable(lastError)
    }
    try {
      return await local(header, token)
    } catch (error) {
      // A key the provider may have added since (rotation): look once more, within the cooldown.
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error
      const before = local
      await refresh()
      if (local === before) throw error
      return await local(header, token)
    }
  }
  return getKey
}

function unavailable (cause: Error | undefined): KeySetUnavailableError {
  return new KeySetUnavailableError('the identity provider\'s keys cannot be fetched; retry shortly', { cause })
}
