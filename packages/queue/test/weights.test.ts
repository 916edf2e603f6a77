// WORKER_QUEUES parsing and the weighted choice of the next queue.
import t from 'tap'
import { parseQueueWeights, QueueConfigError } from '../src/index.ts'
import { QueuePicker } from '../src/weights.ts'

t.test('the Asynq-style queue list parses into weights', async (t) => {
  t.same(parseQueueWeights('critical=6,default=3,low=1'), { critical: 6, default: 3, low: 1 })
  t.same(parseQueueWeights(' emails = 2 , default '), { emails: 2, default: 1 }, 'spaces are ignored; a bare name weighs 1')
  for (const bad of ['', ',', 'a=0', 'a=-1', 'a=x', 'a=1.5', 'a=1=2', 'bad name=1', 'a:b=1', 'a=1,a=2']) {
    t.throws(() => parseQueueWeights(bad), QueueConfigError, `refuses ${JSON.stringify(bad)}`)
  }
  t.throws(() => parseQueueWeights('critical=six'), { message: 'invalid queue weight "critical=six": expected name=positive integer, e.g. "critical=6"' })
})

/** Picks as the worker pool does: try queues in the picker's order, skipping empty ones. */
function picks (picker: QueuePicker, count: number, empty: readonly string[] = []): string[] {
  const chosen: string[] = []
  for (let i = 0; i < count; i++) {
    const order = picker.order()
    const queue = order.find((name) => !empty.includes(name))!
    picker.charge(queue, order.slice(0, order.indexOf(queue)))
    chosen.push(queue)
  }
  return chosen
}

t.test('with every queue backlogged, each run of 10 picks follows the weights exactly and interleaves', async (t) => {
  const chosen = picks(new QueuePicker({ critical: 6, default: 3, low: 1 }), 100)
  for (let start = 0; start < 100; start += 10) {
    const window = chosen.slice(start, start + 10)
    t.same([window.filter((q) => q === 'critical').length, window.filter((q) => q === 'default').length, window.filter((q) => q === 'low').length], [6, 3, 1])
  }
  t.ok(chosen.slice(0, 10).join(',').includes('critical,default'), `no long runs of one queue: ${chosen.slice(0, 10).join(',')}`)
})

t.test('a queue found empty drops out and the rest share by their weights', async (t) => {
  const chosen = picks(new QueuePicker({ critical: 6, default: 3, low: 1 }), 40, ['critical'])
  t.same([chosen.filter((q) => q === 'default').length, chosen.filter((q) => q === 'low').length], [30, 10])
  t.same(picks(new QueuePicker({ critical: 6, default: 3, low: 1 }), 5, ['critical', 'default']), ['low', 'low', 'low', 'low', 'low'])
})
