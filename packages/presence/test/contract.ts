// One suite for both adapters: each store stands for a separate api process sharing the backend.
import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { waitFor } from '@chatty/db/testing'
import type { PresenceStore } from '../src/index.ts'

export const TTL_MS = 400

/** Opens a store on the shared backend (closed by the caller's teardown). */
export type OpenStore = (t: Test) => Promise<PresenceStore>

const user = () => randomUUID()

export function presenceContract (t: Test, open: OpenStore): void {
  t.test('a user is online while any live process holds them, and offline once none does', async (t) => {
    const a = await open(t)
    const b = await open(t)
    const [pa, pb] = [randomUUID(), randomUUID()]
    t.equal(await a.heartbeat(pa), false, 'the first heartbeat registers the process')
    t.equal(await a.heartbeat(pa), true, 'later ones extend it')
    await b.heartbeat(pb)
    const [alice, bob, carol] = [user(), user(), user()]
    t.same(await a.add(pa, [alice, bob]), new Set(), 'an add answers who is online on another process: nobody yet')
    t.same(await b.add(pb, [bob]), new Set([bob]), 'bob is online on the first process too')
    t.same(await a.add(pa, [alice, bob, carol]), new Set([bob]), 'the adding process itself does not count')
    await a.remove(pa, [carol])
    t.same(await b.online([alice, bob, carol]), new Set([alice, bob]), 'seen from any process')
    t.same(await a.online([alice, bob, carol], { exceptProcess: pa }), new Set([bob]), 'exceptProcess leaves one process out')
    await a.remove(pa, [bob])
    t.same(await b.online([bob]), new Set([bob]), 'bob still has a socket on the other process')
    await b.remove(pb, [bob])
    t.same(await a.online([alice, bob]), new Set([alice]), 'bob is offline once no process holds him')
    await a.add(pa, [alice])
    t.same(await a.online([alice]), new Set([alice]), 'adding twice is harmless')
    t.same(await a.online([]), new Set())
    await a.add(pa, [bob, carol])
    await a.remove(pa, [alice, bob, carol])
    t.same(await b.online([alice, bob, carol]), new Set(), 'one remove takes several users')
    await a.remove(pa, [])
  })

  t.test('a process that stops its heartbeat takes its users offline after the TTL, before any sweep', async (t) => {
    const a = await open(t)
    const b = await open(t)
    const [dead, live] = [randomUUID(), randomUUID()]
    await a.heartbeat(dead)
    await b.heartbeat(live)
    const [alice, bob] = [user(), user()]
    await a.add(dead, [alice, bob])
    await b.add(live, [bob])
    const beat = setInterval(() => { void b.heartbeat(live) }, TTL_MS / 4)
    t.teardown(() => clearInterval(beat))
    t.same(await b.online([alice, bob]), new Set([alice, bob]))
    t.ok(await waitFor(async () => (await b.online([alice, bob])).size === 1, 'alice goes offline', 5000), 'alice goes offline')
    t.same(await b.online([alice, bob]), new Set([bob]), 'bob stays online through the live process')

    // Two sweeps at once: the dead process's users come back once, from one of them.
    const swept = (await Promise.all([a.sweep(), b.sweep()])).flat().filter((id) => id === alice || id === bob)
    t.same(swept.sort(), [alice, bob].sort(), 'each user of the dead process is reported once')
    t.same((await b.sweep()).filter((id) => id === alice || id === bob), [], 'and only once')
    t.equal(await a.heartbeat(dead), false, 'a swept process that comes back is told to register its users again')
    t.same(await b.online([alice]), new Set(), 'its old entries are gone')
    await a.add(dead, [alice])
    t.same(await b.online([alice]), new Set([alice]), 'until it adds them again')
  })

  t.test('removing a process clears its users at once', async (t) => {
    const a = await open(t)
    const p = randomUUID()
    await a.heartbeat(p)
    const [alice, bob] = [user(), user()]
    await a.add(p, [alice, bob])
    t.same((await a.removeProcess(p)).sort(), [alice, bob].sort(), 'resolves with its users')
    t.same(await a.online([alice, bob]), new Set())
    t.same(await a.removeProcess(p), [], 'removing it again finds nothing')
  })
}
