// Raw HTTP for tests: bytes written as they are, so nothing between the test and the server
// tidies the request, and the answer read whole once the server closes the connection.
import { connect } from 'node:net'

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
