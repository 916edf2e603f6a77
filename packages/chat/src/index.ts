export { ChatError, InvalidInputError, NotParticipantError, ConversationNotFoundError, type ChatErrorCode } from './errors.ts'
export { checkMessageInput, LIMITS, MsgType, type MessageInput, type MessageContent } from './rules.ts'
export { createConversation, requireParticipant, requireConversation, listParticipants, Role, type Executor, type ConversationCreated, type CreateConversationInput } from './conversations.ts'
export { storeMessage, sendMessage, checkSend, listMessages, messagesSince, toMessage, type Message, type Stored, type StoreMessageInput, type SendMessageInput, type ListMessagesInput } from './messages.ts'
