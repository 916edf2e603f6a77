// The websocket's two dialects, chosen per socket at the upgrade: snake_case (`?user_id=`, the
// default) and go-chatty's later camelCase (`?userId=`). Server frames are built in snake_case and
// renamed here, once per frame for all the camelCase sockets of a room (plugins/app/rooms.ts).
import { camelCase } from './camel-case.ts'
import { ClientFrameSchema } from './schemas/ws.ts'

/** The field names of a socket's frames: snake_case (`?user_id=`) or go-chatty's camelCase (`?userId=`). */
export type Dialect = 'snake_case' | 'camelCase'

/** Field names of client frames that error messages may mention, for the camelCase dialect. */
const FIELD_NAMES = new RegExp(`\\b(${[...new Set(ClientFrameSchema.anyOf.flatMap((schema) => Object.keys(schema.properties)))].filter((name) => name.includes('_')).join('|')})\\b`, 'g')

/**
 * Fields whose value is the client's own JSON, or whose keys are data (a message's reactions):
 * passed on as stored, keys and nulls included.
 */
const OPAQUE_FIELDS = new Set(['attachment_meta', 'reactions'])

/**
 * chatty's additions to the message object (replies, mentions, reactions), left out while empty
 * as Go's omitempty leaves out zero values: a go-chatty client gets exactly the objects it knew
 * until a message has replies, mentions or reactions.
 */
const OMITTED_WHEN_EMPTY = new Set(['reply_count', 'mentioned_user_ids', 'reactions'])

function isEmpty (value: unknown): boolean {
  if (value === 0) return true
  if (Array.isArray(value)) return value.length === 0
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0
}

function toCamelCase (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toCamelCase)
  if (typeof value !== 'object' || value === null) return value
  const renamed: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) {
    // go-chatty omits null fields (omitempty), and so chatty's additions while empty.
    if (field === null || (OMITTED_WHEN_EMPTY.has(key) && isEmpty(field))) continue
    renamed[camelCase(key)] = OPAQUE_FIELDS.has(key) ? field : toCamelCase(field)
  }
  return renamed
}

/**
 * A server frame (snake_case, as built here or received from the bus) in go-chatty's camelCase
 * dialect: camelCase names, null fields left out, field names in an error's text renamed too.
 * Rooms call it once per frame for all their camelCase sockets, not once per socket.
 */
export function camelCaseFrame (frame: string | Buffer): string {
  const renamed = toCamelCase(JSON.parse(frame.toString())) as Record<string, unknown>
  if (renamed.type === 'error' && typeof renamed.error === 'string') {
    renamed.error = renamed.error.replace(FIELD_NAMES, (name) => camelCase(name))
  }
  return JSON.stringify(renamed)
}
