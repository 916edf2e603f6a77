// What the api and jobs services share: redacting logger options, the error answers ({error,
// code}), the answer to requests Node refuses before routing, and the plugins that build the chat
// core, the conversation feed and the queue client from each service's configuration.
export { loggerOptions, redactUrl, serializeRequest, REDACT_PATHS, REDACTED, type LoggerOptions } from './logging.ts'
export { answerClientError, answerExpectationFailed, guardRequests, lacksHost, HTTP_SERVER_OPTIONS } from './client-error.ts'
export { answerFrameworkError, codeOf, handleErrors, HttpError, STATUS_BY_CODE, type ErrorHandlerOptions, type StatusCode } from './errors.ts'
export { chatPlugin, type ChatPluginOptions } from './plugins/chat.ts'
export { feedPlugin, type FeedPluginOptions } from './plugins/feed.ts'
export { queuePlugin, type QueuePluginOptions } from './plugins/queue.ts'
export { withTimeout } from './timeout.ts'
export { readConfig, runService, type ServiceProcess } from './process.ts'
