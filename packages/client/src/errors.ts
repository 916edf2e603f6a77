// Errors the client raises: the server's answers ({error, code}) and the client's own give-ups.

/** An error answer of the REST API or a refused websocket upgrade. */
export class ApiError extends Error {
  override name = 'ApiError'
  readonly status: number
  readonly code: string
  constructor (status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

/** An error frame answering one of this client's frames. */
export class FrameError extends Error {
  override name = 'FrameError'
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.code = code
  }
}

/** No reply within the request timeout (reconnects included). */
export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError'
  constructor (what: string, ms: number) { super(`${what}: no reply within ${ms} ms`) }
}

/** The client was closed while the request waited. */
export class ClientClosedError extends Error {
  override name = 'ClientClosedError'
  constructor () { super('the chat client is closed') }
}
