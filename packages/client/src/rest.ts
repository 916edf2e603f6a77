// The REST half of the client: go-chatty's routes under /api/v1, on fetch.
import { ApiError } from './errors.ts'
import type {
  ChatCreated, ConversationPage, MentionPage, MembershipChange, Message, MessageChange, MessageContent, MessagePage, Participant, PinChange, Presence, ReactionChange, ReactionPage,
  ReadPosition, SearchPage, SendAccepted
} from './frames.ts'

/** A bearer token, or a function that returns the current one (called per request). */
export type TokenSource = string | (() => string | Promise<string>)

export interface RestClientOptions {
  /** The api's base URL, e.g. http://127.0.0.1:8080. */
  baseUrl: string
  /** AUTH_MODE=jwt: sent as Authorization: Bearer. */
  token?: TokenSource
  fetch?: typeof fetch
}

export interface ListMessagesQuery {
  limit?: number
  offset?: number
  before_seq?: number
  after_seq?: number
  /** The page around this seq (not with before_seq, after_seq or offset). */
  around_seq?: number
  /** A thread: the replies to this message only. */
  parent_id?: string
  /** true leaves replies out (not with parent_id). */
  top_level?: boolean
}

export interface ListReactionsQuery {
  limit?: number
  cursor?: string
  /** Only the users who reacted with this. */
  reaction?: string
}

export interface SearchQuery {
  /** 1 to 200 characters in web-search syntax: words, "a phrase", -word, or. */
  q: string
  conversation_id?: string
  limit?: number
  cursor?: string
  /** Whose conversations are searched: required with AUTH_MODE=none. */
  user_id?: string
}

export interface ReadOptions {
  /** Sent as X-User-Id: the server then checks the reader is a participant (AUTH_MODE=none). */
  userId?: string
}

export interface RestClient {
  /** creator_id (AUTH_MODE=none; with a token, the token's user) becomes the owner. */
  createChat (input: { participant_ids: string[], tenant_id?: string | null, creator_id?: string }): Promise<ChatCreated>
  /** Accepted for storage (202); the message reaches sockets once the jobs service stored it. */
  sendMessage (chatId: string, input: MessageContent & { sender_id?: string }): Promise<SendAccepted>
  /** Replaces the body of one's own message; sender_id is required with AUTH_MODE=none. */
  editMessage (chatId: string, messageId: string, input: { body: string | null, sender_id?: string }): Promise<MessageChange>
  /** Deletes one's own message (a tombstone stays in history); senderId is required with AUTH_MODE=none. */
  deleteMessage (chatId: string, messageId: string, options?: { senderId?: string }): Promise<MessageChange>
  /** Newest first, as the server answers. */
  listMessages (chatId: string, query?: ListMessagesQuery, options?: ReadOptions): Promise<MessagePage>
  listParticipants (chatId: string, options?: ReadOptions): Promise<string[]>
  /** Moves the reader's read position to messageId (never back); user_id is required with AUTH_MODE=none. */
  markRead (chatId: string, input: { message_id: string, user_id?: string }): Promise<ReadPosition>
  /** A user's conversations, newest activity first; pass next_cursor as cursor for the next page. */
  listConversations (userId: string, query?: { limit?: number, cursor?: string }): Promise<ConversationPage>
  /** The messages mentioning a user in their conversations, newest first; pass next_cursor as cursor for the next page. */
  mentions (userId: string, query?: { limit?: number, cursor?: string }): Promise<MentionPage>
  /** Whether a user has a websocket open on any api process. */
  presence (userId: string, options?: ReadOptions): Promise<Presence>
  /** The same for up to 100 users, in the order asked. */
  presenceOf (userIds: string[], options?: ReadOptions): Promise<Presence[]>
  /** Members with their roles. */
  listMembers (chatId: string, options?: ReadOptions): Promise<Participant[]>
  /** Owners only. actorId is required with AUTH_MODE=none. */
  addParticipants (chatId: string, userIds: string[], options?: { actorId?: string }): Promise<MembershipChange>
  /** Owners remove anyone; a member removes themselves (leaves). actorId is required with AUTH_MODE=none. */
  removeParticipant (chatId: string, userId: string, options?: { actorId?: string }): Promise<MembershipChange>
  /** Adds the user's reaction (seq null when already there); userId is required with AUTH_MODE=none. */
  react (chatId: string, messageId: string, reaction: string, options?: { userId?: string }): Promise<ReactionChange>
  /** Removes the user's reaction (seq null when there was none); userId is required with AUTH_MODE=none. */
  unreact (chatId: string, messageId: string, reaction: string, options?: { userId?: string }): Promise<ReactionChange>
  /** Who reacted with what, in the order they reacted; pass next_cursor as cursor for the next page. */
  listReactions (chatId: string, messageId: string, query?: ListReactionsQuery, options?: ReadOptions): Promise<ReactionPage>
  /** Pins a message for every member; userId is required with AUTH_MODE=none. */
  pin (chatId: string, messageId: string, options?: { userId?: string }): Promise<PinChange>
  unpin (chatId: string, messageId: string, options?: { userId?: string }): Promise<PinChange>
  /** The pinned messages, most recently pinned first. */
  listPins (chatId: string, options?: ReadOptions): Promise<Message[]>
  /** Full-text search over the messages of the user's conversations, newest first. */
  search (query: SearchQuery): Promise<SearchPage>
}

export async function resolveToken (token: TokenSource | undefined): Promise<string | undefined> {
  return typeof token === 'function' ? await token() : token
}

export function createRestClient (options: RestClientOptions): RestClient {
  const base = options.baseUrl.replace(/\/+$/, '')
  const doFetch = options.fetch ?? fetch

  async function request<T> (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const token = await resolveToken(options.token)
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const response = await doFetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await response.text()
    let parsed: unknown
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      parsed = undefined
    }
    if (!response.ok) {
      const error = parsed as { error?: string, code?: string } | undefined
      throw new ApiError(response.status, error?.code ?? 'http_error', error?.error ?? `${method} ${path}: HTTP ${response.status}`)
    }
    return parsed as T
  }

  const chat = (chatId: string): string => `/api/v1/chat/${encodeURIComponent(chatId)}`
  const queryString = (query: object): string => {
    const params = new URLSearchParams()
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
    return params.size > 0 ? `?${params}` : ''
  }
  const reactionPath = (chatId: string, messageId: string, reaction: string, userId?: string): string =>
    `${chat(chatId)}/messages/${encodeURIComponent(messageId)}/reactions/${encodeURIComponent(reaction)}${queryString({ user_id: userId })}`
  const pinPath = (chatId: string, messageId: string, userId?: string): string =>
    `${chat(chatId)}/pins/${encodeURIComponent(messageId)}${queryString({ user_id: userId })}`
  const readHeaders = (options?: ReadOptions): Record<string, string> => options?.userId === undefined ? {} : { 'x-user-id': options.userId }

  return {
    createChat: (input) => request('POST', '/api/v1/chat', input),
    sendMessage: (chatId, input) => request('POST', chat(chatId), input),
    editMessage: (chatId, messageId, input) => request('PATCH', `${chat(chatId)}/messages/${encodeURIComponent(messageId)}`, input),
    deleteMessage (chatId, messageId, deleteOptions = {}) {
      const search = deleteOptions.senderId === undefined ? '' : `?sender_id=${encodeURIComponent(deleteOptions.senderId)}`
      return request('DELETE', `${chat(chatId)}/messages/${encodeURIComponent(messageId)}${search}`)
    },
    listMessages (chatId, query = {}, readOptions) {
      const params = new URLSearchParams()
      for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
      const search = params.size > 0 ? `?${params}` : ''
      return request('GET', `${chat(chatId)}/messages${search}`, undefined, readHeaders(readOptions))
    },
    async listParticipants (chatId, readOptions) {
      const body = await request<{ participant_ids: string[] }>('GET', `${chat(chatId)}/participants`, undefined, readHeaders(readOptions))
      return body.participant_ids
    },
    markRead: (chatId, input) => request('POST', `${chat(chatId)}/read`, input),
    listConversations (userId, query = {}) {
      const params = new URLSearchParams()
      for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
      const search = params.size > 0 ? `?${params}` : ''
      return request('GET', `/api/v1/users/${encodeURIComponent(userId)}/conversations${search}`)
    },
    mentions (userId, query = {}) {
      const params = new URLSearchParams()
      for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
      const search = params.size > 0 ? `?${params}` : ''
      return request('GET', `/api/v1/users/${encodeURIComponent(userId)}/mentions${search}`)
    },
    presence: (userId, readOptions) => request('GET', `/api/v1/users/${encodeURIComponent(userId)}/presence`, undefined, readHeaders(readOptions)),
    async presenceOf (userIds, readOptions) {
      const body = await request<{ presence: Presence[] }>('GET', `/api/v1/users/presence?user_ids=${userIds.map(encodeURIComponent).join(',')}`, undefined, readHeaders(readOptions))
      return body.presence
    },
    async listMembers (chatId, readOptions) {
      const body = await request<{ participants: Participant[] }>('GET', `${chat(chatId)}/participants`, undefined, readHeaders(readOptions))
      return body.participants
    },
    addParticipants: (chatId, userIds, changeOptions = {}) =>
      request('POST', `${chat(chatId)}/participants`, { user_ids: userIds, ...(changeOptions.actorId === undefined ? {} : { actor_id: changeOptions.actorId }) }),
    removeParticipant (chatId, userId, changeOptions = {}) {
      const search = changeOptions.actorId === undefined ? '' : `?actor_id=${encodeURIComponent(changeOptions.actorId)}`
      return request('DELETE', `${chat(chatId)}/participants/${encodeURIComponent(userId)}${search}`)
    },
    react: (chatId, messageId, reaction, actOptions = {}) => request('PUT', reactionPath(chatId, messageId, reaction, actOptions.userId)),
    unreact: (chatId, messageId, reaction, actOptions = {}) => request('DELETE', reactionPath(chatId, messageId, reaction, actOptions.userId)),
    listReactions: (chatId, messageId, query = {}, readOptions) =>
      request('GET', `${chat(chatId)}/messages/${encodeURIComponent(messageId)}/reactions${queryString(query)}`, undefined, readHeaders(readOptions)),
    pin: (chatId, messageId, actOptions = {}) => request('PUT', pinPath(chatId, messageId, actOptions.userId)),
    unpin: (chatId, messageId, actOptions = {}) => request('DELETE', pinPath(chatId, messageId, actOptions.userId)),
    async listPins (chatId, readOptions) {
      const body = await request<{ messages: Message[] }>('GET', `${chat(chatId)}/pins`, undefined, readHeaders(readOptions))
      return body.messages
    },
    search: (query) => request('GET', `/api/v1/search${queryString(query)}`)
  }
}
