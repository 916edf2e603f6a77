// Named queues and their weights: parsing WORKER_QUEUES, and choosing which queue a free worker
// takes its next job from.
import { QueueConfigError } from './errors.ts'

export const DEFAULT_QUEUE = 'default'

const QUEUE_NAME = /^[A-Za-z0-9_.-]{1,64}$/

/** Queue names end up in Redis keys, Postgres flags and job ids: keep them plain. */
export function isQueueName (name: string): boolean {
  return QUEUE_NAME.test(name)
}

export function assertQueueName (name: string): void {
  if (!isQueueName(name)) {
    throw new QueueConfigError(`invalid queue name ${JSON.stringify(name)}: use 1-64 letters, digits, "_", "-" or "."`)
  }
}

/**
 * Parses Asynq's queue list, e.g. "critical=6,default=3,low=1", into { critical: 6, default: 3,
 * low: 1 }. A name without "=weight" weighs 1. Throws a QueueConfigError naming the bad part.
 */
export function parseQueueWeights (text: string): Record<string, number> {
  const weights: Record<string, number> = {}
  const parts = text.split(',').map((part) => part.trim()).filter((part) => part !== '')
  if (parts.length === 0) throw new QueueConfigError('queue list is empty; expected e.g. "critical=6,default=3,low=1"')
  for (const part of parts) {
    const [name = '', weight = '1', extra] = part.split('=').map((piece) => piece.trim())
    if (extra !== undefined || !/^[0-9]+$/.test(weight) || Number(weight) < 1) {
      throw new QueueConfigError(`invalid queue weight ${JSON.stringify(part)}: expected name=positive integer, e.g. "critical=6"`)
    }
    assertQueueName(name)
    if (name in weights) throw new QueueConfigError(`queue ${JSON.stringify(name)} is listed twice`)
    weights[name] = Number(weight)
  }
  return weights
}

/** Validates a weights object (from config or parseQueueWeights) and returns a copy. */
export function checkQueueWeights (weights: Record<string, number>): Record<string, number> {
  const entries = Object.entries(weights)
  if (entries.length === 0) throw new QueueConfigError('at least one queue is needed')
  for (const [name, weight] of entries) {
    assertQueueName(name)
    if (!Number.isInteger(weight) || weight < 1) throw new QueueConfigError(`queue ${JSON.stringify(name)} needs a positive integer weight, got ${weight}`)
  }
  return { ...weights }
}

/**
 * Smooth weighted round-robin over the queues that have work. Asynq draws the queue order at
 * random by weight; this gives the same long-run shares (6:3:1 for weights 6,3,1 when every queue
 * is backlogged) without the variance over short windows, and a queue found empty drops out, so a
 * single backlogged queue gets every free worker.
 */
export class QueuePicker {
  readonly #weights: Map<string, number>
  readonly #credit = new Map<string, number>()

  constructor (weights: Record<string, number>) {
    this.#weights = new Map(Object.entries(checkQueueWeights(weights)))
    for (const name of this.#weights.keys()) this.#credit.set(name, 0)
  }

  get queues (): string[] {
    return [...this.#weights.keys()]
  }

  /** The order to try the queues in: the one owed the most work first. */
  order (): string[] {
    const owed = (name: string) => this.#credit.get(name)! + this.#weights.get(name)!
    return this.queues.sort((a, b) => owed(b) - owed(a) || this.#weights.get(b)! - this.#weights.get(a)!)
  }

  /** Records that `chosen` gave a job after the queues in `empty` had none. */
  charge (chosen: string, empty: readonly string[]): void {
    let total = 0
    for (const [name, weight] of this.#weights) {
      if (empty.includes(name)) {
        this.#credit.set(name, 0)
      } else {
        this.#credit.set(name, this.#credit.get(name)! + weight)
        total += weight
      }
    }
    this.#credit.set(chosen, this.#credit.get(chosen)! - total)
  }
}
