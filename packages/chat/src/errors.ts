// Domain errors. Each carries a wire code; the services map codes to HTTP statuses and frames.
export type ChatErrorCode = 'bad_request' | 'forbidden' | 'not_found' | 'conflict'

export class ChatError extends Error {
  readonly code: ChatErrorCode
  constructor (code: ChatErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

export class InvalidInputError extends ChatError {
  override name = 'InvalidInputError'
  constructor (message: string) { super('bad_request', message) }
}

export class NotParticipantError extends ChatError {
  override name = 'NotParticipantError'
  constructor (message = 'user is not a participant in this conversation') { super('forbidden', message) }
}

export class ConversationNotFoundError extends ChatError {
  override name = 'ConversationNotFoundError'
  constructor (message = 'conversation not found') { super('not_found', message) }
}

export class BlockedError extends ChatError {
  override name = 'BlockedError'
  constructor (message = 'the other member of this direct conversation has blocked the sender') { super('forbidden', message) }
}

export class MessageNotFoundError extends ChatError {
  override name = 'MessageNotFoundError'
  constructor (message = 'message not found in this conversation') { super('not_found', message) }
}

export class MessageDeletedError extends ChatError {
  override name = 'MessageDeletedError'
  constructor (message = 'the message was deleted; it cannot be edited') { super('conflict', message) }
}
