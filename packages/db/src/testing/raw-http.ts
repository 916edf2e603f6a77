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
