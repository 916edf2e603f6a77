// REST load with autocannon (a child process of bench/run.ts): POST sends spread over a set of
// conversations, GET history pages, GET search queries, or GET of a trivial route. Reports requests, statuses and latency.
import autocannon from 'autocannon'
import { serveRequests } from '../lib/child.ts'
import { monoMs } from '../lib/clock.ts'

export interface SendLoad {
  kind: 'send'
  url: string
  /** Conversation and one of its members, picked round-robin. */
  targets: Array<{ conversationId: string, senderId: string }>
  connections: number
  durationMs: number
  /** Requests per second over all connections; unset: as fast as answers come back. */
  overallRate?: number
  bodyBytes: number
}

export interface HistoryLoad {
  kind: 'history'
  url: string
  conversationId: string
  readerId: string
  /** Highest seq: pages are read at random cursors below it. */
  lastSeq: number
  limit: number
  connections: number
  durationMs: number
}

export interface SearchLoad {
  kind: 'search'
  url: string
  /** The searching user (AUTH_MODE=none: the user_id query parameter). */
  userId: string
  /** One-word queries, taken in turn from a random start per connection. */
  words: string[]
  limit: number
  connections: number
  durationMs: number
}

/** The same load on a route that does nothing (GET /healthz): the server's fixed cost per request. */
export interface TrivialLoad {
  kind: 'trivial'
  url: string
  path: string
  connections: number
  durationMs: number
}

export interface HttpLoadResult {
  requests: number
  /** Answers by status class. */
  statuses: Record<string, number>
  errors: number
  timeouts: number
  elapsedMs: number
  perSecond: number
  latencyMs: { p50: number, p99: number, max: number, mean: number }
  /** Accepted sends per conversation (send load only). */
  acceptedPerRoom: Record<string, number>
  /** CPU time this load process used, of elapsedMs: above ~90% of one core it may be the bottleneck. */
  cpuMs: number
}

function sendRequests (load: SendLoad, acceptedPerRoom: Map<string, number>): autocannon.Request[] {
  let next = 0
  return [{
    method: 'POST',
    path: '/',
    headers: { 'content-type': 'application/json' },
    setupRequest: (request: autocannon.Request, context: Record<string, unknown>) => {
      const target = load.targets[next++ % load.targets.length]!
      context.room = target.conversationId
      const head = `~-1~${monoMs().toFixed(3)}~`
      const body = head + 'x'.repeat(Math.max(0, load.bodyBytes - head.length))
      return { ...request, path: `/api/v1/chat/${target.conversationId}`, body: JSON.stringify({ sender_id: target.senderId, body }) }
    },
    onResponse: (status: number, _body: string, context: Record<string, unknown>) => {
      if (status === 202) acceptedPerRoom.set(context.room as string, (acceptedPerRoom.get(context.room as string) ?? 0) + 1)
    }
  } as autocannon.Request]
}

function historyRequests (load: HistoryLoad): autocannon.Request[] {
  return [{
    method: 'GET',
    path: '/',
    headers: { 'x-user-id': load.readerId },
    setupRequest: (request: autocannon.Request) => {
      // Newest page half of the time (what a client opening a conversation reads), else a page
      // further back (scrolling up).
      const cursor = Math.random() < 0.5 ? '' : `&before_seq=${1 + Math.floor(Math.random() * load.lastSeq)}`
      return { ...request, path: `/api/v1/chat/${load.conversationId}/messages?limit=${load.limit}${cursor}` }
    }
  }]
}

function searchRequests (load: SearchLoad): autocannon.Request[] {
  let next = Math.floor(Math.random() * load.words.length)
  return [{
    method: 'GET',
    path: '/',
    setupRequest: (request: autocannon.Request) => {
      const word = load.words[next++ % load.words.length]!
      return { ...request, path: `/api/v1/search?user_id=${load.userId}&limit=${load.limit}&q=${encodeURIComponent(word)}` }
    }
  }]
}

async function fire (load: SendLoad | HistoryLoad | SearchLoad | TrivialLoad): Promise<HttpLoadResult> {
  const acceptedPerRoom = new Map<string, number>()
  const started = performance.now()
  const cpuAtStart = process.cpuUsage()
  const result = await autocannon({
    url: load.url,
    connections: load.connections,
    duration: load.durationMs / 1000,
    ...(load.kind === 'send' && load.overallRate !== undefined ? { overallRate: load.overallRate } : {}),
    requests: load.kind === 'send' ? sendRequests(load, acceptedPerRoom) : load.kind === 'history' ? historyRequests(load) : load.kind === 'search' ? searchRequests(load) : [{ method: 'GET', path: load.path }],
    timeout: 10
  })
  const elapsedMs = performance.now() - started
  const cpu = process.cpuUsage(cpuAtStart)
  const statuses = { '1xx': result['1xx'], '2xx': result['2xx'], '3xx': result['3xx'], '4xx': result['4xx'], '5xx': result['5xx'] }
  const requests = Object.values(statuses).reduce((a, b) => a + b, 0)
  return {
    requests,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    elapsedMs,
    perSecond: result['2xx'] / (load.durationMs / 1000),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average },
    acceptedPerRoom: Object.fromEntries(acceptedPerRoom),
    cpuMs: (cpu.user + cpu.system) / 1000
  }
}

serveRequests({ fire })
