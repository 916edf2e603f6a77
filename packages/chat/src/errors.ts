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

/** A ChatError class of its own name, wire code and default message. */
function chatErrorClass (name: string, code: ChatErrorCode, defaultMessage: string) {
  return class extends ChatError {
    override name = name
    constructor (message = defaultMessage) { super(code, message) }
  }
}

export class NotParticipantError extends chatErrorClass('NotParticipantError', 'forbidden', 'user is not a participant in this conversation') {}
export class ConversationNotFoundError extends chatErrorClass('ConversationNotFoundError', 'not_found', 'conversation not found') {}
export class BlockedError extends chatErrorClass('BlockedError', 'forbidden', 'the other member of this direct conversation has blocked the sender') {}
export class MessageNotFoundError extends chatErrorClass('MessageNotFoundError', 'not_found', 'message not found in this conversation') {}
export class MessageDeletedError extends chatErrorClass('MessageDeletedError', 'conflict', 'the message was deleted; it cannot be edited') {}
