// go-chatty's later camelCase field names ("conversationId", "senderId", ...) next to our
// snake_case ones: the name conversions, and the REST request aliases. A REST route whose schema
// is made with withCamelAliases takes either spelling of each field; answers stay snake_case. The
// websocket's camelCase dialect: client frames are renamed as socket/frames.ts parses them, server
// frames by camelCaseFrame (dialect.ts). docs/protocol.md has both side by side.
import { isDeepStrictEqual } from 'node:util'
import type { FastifyRequest } from 'fastify'
import type { TObject } from 'typebox'
import { HttpError } from '@chatty/server'
/** `conversation_id` -> `conversationId`. */
export function camelCase (name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase())
}

/** `conversationId` -> `conversation_id`. */
export function snakeCase (name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)
}

/** The keyword that marks an alias property in a schema, and names the field it stands for (shown in /docs/json). */
const ALIAS_OF = 'x-alias-of'

/**
 * The object schema with, beside each snake_case property, its camelCase spelling as an optional
 * alias of the same type, so the OpenAPI document shows both. The handler only ever sees the
 * snake_case names (acceptCamelAliases renames before validation), hence the unchanged type.
 */
export function withCamelAliases<T extends TObject> (schema: T): T {
  const properties: Record<string, unknown> = { ...schema.properties }
  for (const [name, property] of Object.entries(schema.properties)) {
    const alias = camelCase(name)
    if (alias === name) continue
    properties[alias] = { ...property, description: `go-chatty's camelCase spelling of ${name}: either may be sent, not both with different values`, [ALIAS_OF]: name }
  }
  return { ...schema, properties } as T
}

/**
 * preValidation hook: renames the camelCase aliases of the route's body and querystring to their
 * snake_case names. Both spellings with different values is a 400, not a silent pick.
 */
export async function acceptCamelAliases (request: FastifyRequest): Promise<void> {
  const schema = request.routeOptions.schema
  if (schema === undefined) return
  renameAliases(request.body, schema.body, 'body')
  renameAliases(request.query, schema.querystring, 'querystring')
}

function renameAliases (values: unknown, schema: unknown, part: string): void {
  const properties = (schema as { properties?: Record<string, Record<string, unknown>> } | undefined)?.properties
  if (properties === undefined || typeof values !== 'object' || values === null || Array.isArray(values)) return
  const fields = values as Record<string, unknown>
  for (const key of Object.keys(fields)) {
    const name = Object.hasOwn(properties, key) ? properties[key]![ALIAS_OF] : undefined
    if (typeof name !== 'string') continue
    const value = fields[key]
    delete fields[key]
    if (Object.hasOwn(fields, name) && !isDeepStrictEqual(fields[name], value)) {
      throw new HttpError(400, 'bad_request', `${part} has ${name} and ${key} with different values; send one of them`)
    }
    fields[name] = value
  }
}
