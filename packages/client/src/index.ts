export type {
  Message, MessageContent, Ref, ClientFrame, JoinFrame, LeaveFrame, SendFrame, ServerFrame, ConnectedFrame,
  JoinedFrame, LeftFrame, MessageFrame, SentFrame, ErrorFrame, PresenceFrame, ErrorCode, ChatCreated, SendAccepted, MessagePage, Presence,
  RemovedFrame, Role, Participant, MembershipChange
} from './frames.ts'
export type { ReadFrame, DeliveredFrame, ReadEventFrame, DeliveredEventFrame, ReadPosition, ConversationSummary, ConversationPage, MentionPage, TypingFrame, TypingEventFrame } from './frames.ts'
export type { EditFrame, DeleteFrame, MessageUpdatedFrame, MessageDeletedFrame, EditedFrame, DeletedFrame, MessageChange } from './frames.ts'
export type { ReactFrame, UnreactFrame, PinFrame, UnpinFrame, ReactionEventFrame, MessagePinnedFrame, ReactedFrame, PinnedFrame, ReactionChange, ReactionPage, PinChange, SearchPage } from './frames.ts'
export { CloseCode } from './frames.ts'
export { ApiError, FrameError, RequestTimeoutError, ClientClosedError } from './errors.ts'
export { createRestClient, type RestClient, type RestClientOptions, type ListMessagesQuery, type ListReactionsQuery, type SearchQuery, type ReadOptions, type TokenSource } from './rest.ts'
export { connectChat, ChatSocket, socketUrl, SOCKET_PATH, type ChatSocketOptions, type ChatSocketEvents, type ReconnectOptions, type Gap } from './socket.ts'
