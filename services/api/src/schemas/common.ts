// Schemas shared by several routes.
import { Type } from 'typebox'

export const UuidSchema = Type.String({ format: 'uuid', description: 'A UUID' })

export const ErrorSchema = Type.Object({
  error: Type.String({ description: 'What went wrong, for people' }),
  code: Type.String({ description: 'What went wrong, for programs: bad_request, forbidden, not_found, payload_too_large, internal_error, ...' })
}, { description: 'Every error answer' })

export const errorResponses = {
  400: ErrorSchema,
  403: ErrorSchema,
  404: ErrorSchema,
  500: ErrorSchema
}
