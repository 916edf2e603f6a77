// How frames travel through NOTIFY, whose payload must stay under 8000 bytes. A frame that fits
// goes whole as "<id> <frame>". A larger one is stored in chat.bus_frame under its id, in the
// transaction that sends the NOTIFY, and the payload is the reference "<id>@" alone: a listener
// gets the notification only once that transaction committed, so the row is there to fetch.
// The id is unique per publish, which also keeps Postgres from folding two identical
// notifications of one transaction (publishes are batched into one) into one.

/** NOTIFY rejects payloads of 8000 bytes or more. */
export const NOTIFY_PAYLOAD_LIMIT = 8000

export interface EncodedFrame {
  payload: string
  /** Set when the frame is too large for the payload: store it under `id` with the NOTIFY. */
  stored?: { id: string, frame: string }
}

export function encodeFrame (id: string, frame: string): EncodedFrame {
  const whole = `${id} ${frame}`
  // Under a third of the limit in UTF-16 units is under it in UTF-8 bytes, without counting.
  if (whole.length * 3 < NOTIFY_PAYLOAD_LIMIT || Buffer.byteLength(whole) < NOTIFY_PAYLOAD_LIMIT) return { payload: whole }
  return { payload: `${id}@`, stored: { id, frame } }
}

export type DecodedPayload = { frame: string } | { reference: string }

/** The frame a payload carries, or the id to fetch it by; undefined for a payload not of this format. */
export function decodePayload (payload: string): DecodedPayload | undefined {
  const space = payload.indexOf(' ')
  if (space > 0) return { frame: payload.slice(space + 1) }
  if (space === -1 && payload.length > 1 && payload.endsWith('@')) return { reference: payload.slice(0, -1) }
  return undefined
}
