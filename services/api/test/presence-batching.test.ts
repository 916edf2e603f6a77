// The presence tracker's batching, against a store that records its calls: sockets opened in a
// burst reach the store in flushes that start FLUSH_INTERVAL_MS (20 ms) apart (timers may fire a
// millisecond or two early), and every change still arrives.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PresenceStore } from '@chatty/presence'
import { createPresenceTracker } from '../src/plugins/app/presence.ts'

t.test('a burst of connects is added in flushes at least 20 ms apart, none lost', async (t) => {
  const flushes: Array<{ at: number, users: number }> = []
  const held = new Set<string>()
  const store: PresenceStore = {
    heartbeat: async () => true,
    // Everyone counts as online elsewhere, so nothing is announced (no database needed).
    add: async (_process, users) => {
      flushes.push({ at: performance.now(), users: users.length })
      for (const user of users) held.add(user)
      return new Set(users)
    },
    remove: async (_process, users) => { for (const user of users) held.delete(user) },
    online: async (users) => new Set(users.filter((user) => held.has(user))),
    removeProcess: async () => [],
    sweep: async () => [],
    close: async () => {}
  }
  const tracker = createPresenceTracker({ store, db: undefined as never, feed: { event: async () => {} }, ttlMs: 60_000, log: { warn () {} } })
  const users = Array.from({ length: 100 }, () => randomUUID())
  const started = performance.now()
  for (const user of users) {
    tracker.connect(user)
    await sleep(1)
  }
  t.same(await tracker.online(users), new Set(users), 'every user is in the store once the lookup returns')
  const elapsed = performance.now() - started
  t.equal(flushes.reduce((sum, flush) => sum + flush.users, 0), users.length, 'each user added once')
  for (let i = 1; i < flushes.length; i++) {
    t.ok(flushes[i]!.at - flushes[i - 1]!.at >= 15, `flush ${i} started ${(flushes[i]!.at - flushes[i - 1]!.at).toFixed(1)} ms after the one before`)
  }
  t.ok(flushes.length <= Math.ceil(elapsed / 20) + 1, `${flushes.length} flushes in ${elapsed.toFixed(0)} ms`)
  tracker.disconnect(users[0]!)
  t.same(await tracker.online([users[0]!]), new Set(), 'a disconnect goes through the same way')
})
