// The local side of a bus, shared by both adapters: listeners per topic, and the reference count
// that subscribes this process at the broker for the first listener of a topic and unsubscribes
// it after the last. Broker calls for one topic run one at a time, in order, so a quick
// unsubscribe-then-subscribe can never end unsubscribed.
import type { Bus, BusLog, Listener } from './port.ts'
import { BusClosedError } from './errors.ts'

/** What an adapter does at the broker for one topic. */
export interface BrokerChannels {
  listen (topic: string): Promise<void>
  unlisten (topic: string): Promise<void>
}

interface Entry {
  listeners: Listener[]
  /** Whether the broker has been asked to deliver this topic (and not asked to stop since). */
  listening: boolean
  /** Tail of this topic's broker calls. */
  queue: Promise<void>
  pending: number
}

export interface Subscriptions {
  add (topic: string, listener: Listener): Promise<void>
  remove (topic: string, listener: Listener): Promise<void>
  /** Hands a frame to the topic's listeners, if any. */
  deliver (topic: string, frame: string): void
  /** Drops every listener; the broker connections are the adapter's to close. */
  clear (): void
}

export function createSubscriptions (broker: BrokerChannels, log?: BusLog): Subscriptions {
  const entries = new Map<string, Entry>()

  // Brings the broker in line with the listener count, after the calls already queued.
  function sync (topic: string, entry: Entry): Promise<void> {
    entry.pending++
    const step = entry.queue.then(async () => {
      try {
        if (entry.listeners.length > 0 && !entry.listening) {
          await broker.listen(topic)
          entry.listening = true
        } else if (entry.listeners.length === 0 && entry.listening) {
          entry.listening = false
          await broker.unlisten(topic)
        }
      } finally {
        entry.pending--
        if (entry.pending === 0 && entry.listeners.length === 0 && !entry.listening && entries.get(topic) === entry) entries.delete(topic)
      }
    })
    entry.queue = step.catch(() => {})
    return step
  }

  function removeOne (entry: Entry, listener: Listener): boolean {
    const index = entry.listeners.lastIndexOf(listener)
    if (index === -1) return false
    entry.listeners.splice(index, 1)
    return true
  }

  return {
    async add (topic, listener) {
      let entry = entries.get(topic)
      if (entry === undefined) {
        entry = { listeners: [], listening: false, queue: Promise.resolve(), pending: 0 }
        entries.set(topic, entry)
      }
      entry.listeners.push(listener)
      try {
        await sync(topic, entry)
      } catch (error) {
        // The caller learns it is not subscribed, so it must not stay registered either.
        if (removeOne(entry, listener)) void sync(topic, entry).catch(() => {})
        throw error
      }
    },

    async remove (topic, listener) {
      const entry = entries.get(topic)
      if (entry === undefined || !removeOne(entry, listener)) return
      await sync(topic, entry)
    },

    deliver (topic, frame) {
      const entry = entries.get(topic)
      if (entry === undefined) return
      // A listener may unsubscribe while frames are handed out; this frame still goes to the
      // listeners registered when it arrived.
      for (const listener of [...entry.listeners]) {
        try {
          listener(frame)
        } catch (error) {
          log?.('error', `a bus listener for ${topic} threw`, error)
        }
      }
    },

    clear () {
      entries.clear()
    }
  }
}

/** A bus's subscribe and unsubscribe over its subscriptions: the same for every adapter. A closed bus refuses subscribes. */
export function subscribeMethods (subscriptions: Subscriptions, isClosed: () => boolean): Pick<Bus, 'subscribe' | 'unsubscribe'> {
  return {
    async subscribe (topic, listener) {
      if (isClosed()) throw new BusClosedError()
      await subscriptions.add(topic, listener)
      return () => subscriptions.remove(topic, listener)
    },

    async unsubscribe (topic, listener) {
      await subscriptions.remove(topic, listener)
    }
  }
}
