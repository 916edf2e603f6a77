// Retry delays: exponential, capped, with jitter.
import t from 'tap'
import { createRetryDelay } from '../src/backoff.ts'

t.test('the delay after failed attempt n is uniform in [d/2, d], d = min(max, base * 2^(n-1))', async (t) => {
  const delay = createRetryDelay({ baseMs: 100, maxMs: 1000, jitter: 0.5 })
  const ceilings = [100, 200, 400, 800, 1000, 1000]
  ceilings.forEach((ceiling, i) => {
    const samples = Array.from({ length: 200 }, () => delay(i + 1))
    t.ok(samples.every((ms) => ms >= ceiling / 2 && ms <= ceiling), `attempt ${i + 1}: within [${ceiling / 2}, ${ceiling}]`)
    t.ok(new Set(samples).size > 10, `attempt ${i + 1}: jittered`)
  })
})

t.test('defaults: 1 s doubling to an hour; jitter 0 gives exact delays', async (t) => {
  const exact = createRetryDelay({ jitter: 0 })
  t.same([1, 2, 3, 13, 25].map(exact), [1000, 2000, 4000, 3_600_000, 3_600_000])
  t.throws(() => createRetryDelay({ baseMs: 0 }), RangeError)
  t.throws(() => createRetryDelay({ baseMs: 10, maxMs: 5 }), RangeError)
  t.throws(() => createRetryDelay({ jitter: 2 }), RangeError)
})
