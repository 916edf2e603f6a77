// What the api and jobs services share as HTTP servers: redacting logger options and the answer
// to requests Node refuses before routing.
export { loggerOptions, redactUrl, serializeRequest, REDACT_PATHS, REDACTED, type LoggerOptions } from './logging.ts'
export { answerClientError, answerExpectationFailed, guardRequests, lacksHost, HTTP_SERVER_OPTIONS } from './client-error.ts'
