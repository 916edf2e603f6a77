// Request validation. Query strings and path params arrive as text and are coerced ("50" -> 50);
// JSON bodies are not: a number where a string belongs is a 400, never silently "123".
import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'

function makeAjv (options: Options): Ajv {
  const ajv = new Ajv({ removeAdditional: true, useDefaults: true, allErrors: false, strict: false, ...options })
  addFormats.default(ajv)
  return ajv
}

export function makeValidatorCompiler (): FastifySchemaCompiler<unknown> {
  const strict = makeAjv({ coerceTypes: false })
  const coercing = makeAjv({ coerceTypes: 'array' })
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object)
}
