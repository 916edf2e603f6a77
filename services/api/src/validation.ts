// Request validation. Query strings and path params arrive as text and are coerced ("50" -> 50);
// JSON bodies are not: a number where a string belongs is a 400, never silently "123".
import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'

const rfc3339 = addFormats.default.get('date-time') as { validate: (value: string) => boolean, compare: (a: string, b: string) => number | undefined }

/**
 * Formats narrowed to what Postgres and Date accept, so a value that passes validation cannot fail
 * later as a 500: ajv-formats' uuid also takes "urn:uuid:..." (not a Postgres uuid), and its
 * date-time takes leap seconds ("...T23:59:60Z", an invalid Date).
 */
const formats = {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  'date-time': { validate: (value: string) => rfc3339.validate(value) && !Number.isNaN(Date.parse(value)), compare: rfc3339.compare }
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
