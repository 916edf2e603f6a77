// Splitting frames for NOTIFY and putting them back together, without a server.
import t from 'tap'
import { createFrameAssembler, encodeFrame, NOTIFY_PAYLOAD_LIMIT } from '../src/adapters/notify-payload.ts'

t.test('a frame that fits travels whole behind its header', async (t) => {
  t.same(encodeFrame('p.1', '{"a":1}'), ['p.1 {"a":1}'])
  t.same(createFrameAssembler().accept('p.1 {"a":1}'), '{"a":1}')
  t.same(createFrameAssembler().accept('p.1 '), '', 'an empty frame is a frame')
})

t.test('a larger frame is split under the limit, never inside a character, and rebuilt', async (t) => {
  for (const frame of ['x'.repeat(100_000), '🎉'.repeat(30_000), 'aé中🎉'.repeat(9_000), 'é'.repeat(7_999)]) {
    const payloads = encodeFrame('p.7', frame)
    t.ok(payloads.length > 1)
    t.ok(payloads.every((payload) => Buffer.byteLength(payload) < NOTIFY_PAYLOAD_LIMIT), 'every payload under 8000 bytes')
    t.notOk(payloads.some((payload) => payload.includes('\ufffd')), 'no character cut in two')
    const assembler = createFrameAssembler()
    const results = payloads.map((payload) => assembler.accept(payload))
    t.same(results.slice(0, -1), payloads.slice(0, -1).map(() => undefined), 'parts alone give nothing')
    t.equal(results.at(-1), frame)
  }
})

t.test('parts of frames from two publishers, interleaved or reordered, rebuild both', async (t) => {
  const one = encodeFrame('p.1', 'a'.repeat(20_000))
  const two = encodeFrame('q.1', 'b'.repeat(20_000))
  const assembler = createFrameAssembler()
  const order = [one[2]!, two[0]!, one[0]!, two[1]!, one[1]!, two[2]!]
  const frames = order.map((payload) => assembler.accept(payload)).filter((frame) => frame !== undefined)
  t.same(frames, ['a'.repeat(20_000), 'b'.repeat(20_000)])
})

t.test('foreign payloads and parts whose frame was cut short are dropped', async (t) => {
  const assembler = createFrameAssembler()
  t.equal(assembler.accept('no-header-at-all'), undefined)
  t.equal(assembler.accept('x:9:3 bad index'), undefined)
  const lost = encodeFrame('p.1', 'a'.repeat(20_000))
  assembler.accept(lost[0]!)
  assembler.reset()
  t.equal(assembler.accept(lost[1]!), undefined)
  t.equal(assembler.accept(lost[2]!), undefined, 'a frame missing a part is never delivered')
})
