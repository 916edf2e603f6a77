// Raw HTTP for tests: bytes written as they are, so nothing between the test and the server
// tidies the request, and the answer read whole once the server closes the connection.
import { once } from 'node:events'
import type { Server } from 'node:http'
import { connect } from 'node:net'
import { waitFor } from './wait.ts'

export interface RawAnswer {
  status: number
  headers: string
  body: string
  /** The whole answer as received. */
  text: string
}

/** Writes the bytes to 127.0.0.1:port and resolves with the answer when the server closes. */
export function rawHttp (port: number, bytes: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.on('data', (chunk) => { text += chunk.toString() })
    socket.on('error', reject)
    socket.on('close', () => {
      const at = text.indexOf('\r\n\r\n')
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0), headers: text.slice(0, at), body: text.slice(at + 4), text })
    })
    socket.write(bytes)
  })
}

/** A raw request and the error answer it must get: [what, bytes, status, code]. */
export type ErrorCase = [string, string, number, string]

/** The assertions of a tap Test that assertErrorAnswers uses. */
type Assertion = (found: any, wanted: any, ...rest: any[]) => unknown
interface Asserts { equal: Assertion, match: Assertion, same: Assertion }

/** Sends each case to 127.0.0.1:port and asserts the answer is JSON `{error, code}` with its status, and nothing else. */
export async function assertErrorAnswers (t: Asserts, port: number, cases: ErrorCase[]): Promise<void> {
  for (const [what, bytes, status, code] of cases) {
    const answer = await rawHttp(port, bytes)
    t.equal(answer.status, status, `${what}: ${status}`)
    t.match(answer.headers, /\r\ncontent-type: application\/json/i, `${what}: a JSON answer`)
    let body: unknown
    try { body = JSON.parse(answer.body) } catch { body = answer.body }
    t.match(body, { error: String, code }, `${what}: {error, code: ${code}}`)
    t.same(Object.keys(body as object).sort(), ['code', 'error'], `${what}: nothing else`)
  }
}

/**
 * A request that arrives on an open connection while the server shuts down is 503
 * `{error, code: unavailable}` and closes the connection. `busy` is a request (headers and a body)
 * whose body is sent half, so the connection stays busy and closing does not cut it; a second
 * request follows it once close() began.
 */
export async function assertClosingAnswer (t: Asserts, server: { server: Server, close (): Promise<unknown> }, busy: { head: string, body: string }): Promise<void> {
  const { port } = server.server.address() as { port: number }
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', (chunk) => { text += chunk.toString() })
  const ended = once(socket, 'close')
  const routed = once(server.server, 'request')
  socket.write(`${busy.head}Content-Length: ${busy.body.length}\r\n\r\n${busy.body.slice(0, 5)}`)
  await routed
  const closed = server.close()
  await waitFor(async () => !server.server.listening, 'the server to stop listening')
  socket.write(`${busy.body.slice(5)}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`)
  await ended
  await closed
  const second = text.slice(text.indexOf('HTTP/1.1 ', 1))
  t.match(second, /^HTTP\/1\.1 503 /, 'the second request is 503')
  t.match(second, /\r\nconnection: close\r\n/i, 'and the connection is closed after it')
  t.same(JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4)), { error: 'the server is shutting down; retry', code: 'unavailable' })
}
