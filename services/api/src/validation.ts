// Request validation. Query strings and path params arrive as text and are coerced ("50" -> 50);
// JSON bodies are not: a number where a string belongs is a 400, never silently "123".
import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'

const rfc3339 = addFormats.default.get('date-time') as { validate: (value: string) => boolean, compare: (a: string, b: string) => number | undefined }

/**
 * Formats narrowed to what Postgres and Date accept, so a value that passes validation cannot fail
 * later as a 500: ajv-formats' uuid also takes "urn:uuid:..." (not a Postgres uuid), and its
 * date-time takes leap seconds ("...T23:59:60Z", an invalid Date) and offsets that move the instant
 * out of the years 0000-9999.
 */
const formats = {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  'date-time': { validate: isStorableDateTime, compare: rfc3339.compare }
}

// An offset can carry a four-digit year out of range ("9999-12-31T23:59:59-23:59" is year 10000 in
// UTC), which toISOString then writes in a form that is not RFC 3339.
const FIRST_INSTANT = Date.parse('0000-01-01T00:00:00.000Z')
const LAST_INSTANT = Date.parse('9999-12-31T23:59:59.999Z')

function isStorableDateTime (value: string): boolean {
  if (!rfc3339.validate(value)) return false
  const instant = Date.parse(value)
  return instant >= FIRST_INSTANT && instant <= LAST_INSTANT
}

function makeAjv (options: Options): Ajv {
  const ajv = new Ajv({ removeAdditional: true, useDefaults: true, allErrors: false, strict: false, ...options })
  addFormats.default(ajv)
  for (const [name, format] of Object.entries(formats)) ajv.addFormat(name, format)
  return ajv
}

export function makeValidatorCompiler (): FastifySchemaCompiler<unknown> {
  const strict = makeAjv({ coerceTypes: false })
  const coercing = makeAjv({ coerceTypes: 'array' })
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object)
}
