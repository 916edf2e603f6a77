// What the api and jobs services share as HTTP servers: redacting logger options, the error
// answers ({error, code}) and the answer to requests Node refuses before routing.
export { loggerOptions, redactUrl, serializeRequest, REDACT_PATHS, REDACTED, type LoggerOptions } from './logging.ts'
export { answerClientError, answerExpectationFailed, guardRequests, lacksHost, HTTP_SERVER_OPTIONS } from './client-error.ts'
export { answerFrameworkError, codeOf, handleErrors, HttpError, STATUS_BY_CODE, type ErrorHandlerOptions, type StatusCode } from './errors.ts'
