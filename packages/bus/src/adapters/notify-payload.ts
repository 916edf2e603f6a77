// How frames travel through NOTIFY, whose payload must stay under 8000 bytes. Every payload is
// "<header> <text>". A frame that fits goes whole under a header that is unique per publisher
// (Postgres folds identical notifications sent in one transaction into one, and the adapter
// batches publishes into one transaction). A larger frame is split at UTF-8 character
// boundaries into parts headed "<id>:<index>:<count>", all sent in one transaction: a listener
// gets all of them, back to back, or none.

/** NOTIFY rejects payloads of 8000 bytes or more. */
export const NOTIFY_PAYLOAD_LIMIT = 8000
/** Room left for the header in front of each part. */
const PART_BYTES = NOTIFY_PAYLOAD_LIMIT - 100

export function encodeFrame (id: string, frame: string): string[] {
  const whole = `${id} ${frame}`
  if (Buffer.byteLength(whole) < NOTIFY_PAYLOAD_LIMIT) return [whole]
  const bytes = Buffer.from(frame)
  const parts: string[] = []
  for (let start = 0; start < bytes.length;) {
    let end = Math.min(start + PART_BYTES, bytes.length)
    // Never cut through a multi-byte character: continuation bytes are 10xxxxxx.
    while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80) end--
    parts.push(bytes.toString('utf8', start, end))
    start = end
  }
  return parts.map((part, index) => `${id}:${index}:${parts.length} ${part}`)
}

/** Rebuilds frames from payloads; feed it every payload of one listening connection, in order. */
export interface FrameAssembler {
  /** Returns the frame a payload completes, or undefined (a part of a larger frame, or foreign). */
  accept (payload: string): string | undefined
  /** Forgets partial frames, e.g. when the connection that carried them is gone. */
  reset (): void
}

/** Frames in assembly at once; more only happens when parts go missing, so the oldest are dropped. */
const MAX_PARTIAL = 64

export function createFrameAssembler (): FrameAssembler {
  const partial = new Map<string, { parts: string[], received: number }>()
  return {
    accept (payload) {
      const space = payload.indexOf(' ')
      if (space === -1) return undefined
      const header = payload.slice(0, space).split(':')
      const text = payload.slice(space + 1)
      if (header.length === 1) return text
      const [id, indexText, countText] = header as [string, string, string]
      const index = Number(indexText)
      const count = Number(countText)
      if (!(Number.isInteger(index) && Number.isInteger(count) && index >= 0 && index < count)) return undefined
      let frame = partial.get(id)
      if (frame === undefined) {
        if (partial.size >= MAX_PARTIAL) partial.delete(partial.keys().next().value!)
        frame = { parts: new Array<string>(count), received: 0 }
        partial.set(id, frame)
      }
      if (frame.parts[index] === undefined) frame.received++
      frame.parts[index] = text
      if (frame.received < count) return undefined
      partial.delete(id)
      return frame.parts.join('')
    },
    reset () {
      partial.clear()
    }
  }
}
