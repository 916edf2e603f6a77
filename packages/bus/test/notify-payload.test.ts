// The NOTIFY payload format, without a server: frames that fit go whole, larger ones as a reference.
import t from 'tap'
import { decodePayload, encodeFrame, NOTIFY_PAYLOAD_LIMIT } from '../src/adapters/notify-payload.ts'

t.test('a frame that fits travels whole behind its id', async (t) => {
  t.same(encodeFrame('p.1', '{"a":1}'), { payload: 'p.1 {"a":1}' })
  t.same(decodePayload('p.1 {"a":1}'), { frame: '{"a":1}' })
  t.same(decodePayload('p.1 '), { frame: '' }, 'an empty frame is a frame')
  t.same(decodePayload('p.1  x@'), { frame: ' x@' }, 'a frame ending in @ is still a frame')
})

t.test('a frame over the limit in UTF-8 bytes goes as a reference to the stored frame', async (t) => {
  const id = 'AbCdEfGhIjKlMnOp.z1'
  // Around the limit in bytes: ASCII, and 2- and 4-byte characters whose UTF-16 length is far lower.
  const cases: Array<[string, boolean]> = [
    ['a'.repeat(NOTIFY_PAYLOAD_LIMIT - id.length - 2), true],
    ['a'.repeat(NOTIFY_PAYLOAD_LIMIT - id.length - 1), false],
    ['é'.repeat(3985), true],
    ['é'.repeat(4000), false],
    ['🎉'.repeat(1994), true],
    ['🎉'.repeat(2000), false],
    ['x'.repeat(1_000_000), false]
  ]
  for (const [frame, fits] of cases) {
    const encoded = encodeFrame(id, frame)
    t.ok(Buffer.byteLength(encoded.payload) < NOTIFY_PAYLOAD_LIMIT, 'every payload is under 8000 bytes')
    if (fits) {
      t.same(encoded, { payload: `${id} ${frame}` }, `${Buffer.byteLength(frame)} bytes fit`)
    } else {
      t.same(encoded, { payload: `${id}@`, stored: { id, frame } }, `${Buffer.byteLength(frame)} bytes are stored`)
      t.same(decodePayload(encoded.payload), { reference: id })
    }
  }
})

t.test('payloads of another format are not frames', async (t) => {
  for (const payload of ['', '@', 'no-space-no-reference', ' leading space']) t.equal(decodePayload(payload), undefined, JSON.stringify(payload))
})
