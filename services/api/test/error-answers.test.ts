// Every error answer of a listening api is {error, code}, including those Node and Fastify give
// before a route runs: header fields too large (431), a malformed request (400), a missing Host,
// an unknown Expect (417), a bad url, an unknown route, a body too large or of the wrong type.
// Sent as raw bytes, so nothing between the test and the server tidies the request.
import t from 'tap'
import { assertClosingAnswer, assertErrorAnswers, type ErrorCase } from '@chatty/db/testing'
import { listen } from './ws-helper.ts'

const close = 'Host: x\r\nConnection: close\r\n'

const cases: ErrorCase[] = [
  ['header fields too large', `GET / HTTP/1.1\r\n${close}X-Padding: ${'p'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
  ['a url too long (Node counts it with the headers)', `GET /?q=${'q'.repeat(20_000)} HTTP/1.1\r\n${close}\r\n`, 431, 'headers_too_large'],
  ['a malformed request line', 'GET / HTTP/1.1 extra\r\n\r\n', 400, 'bad_request'],
  ['a method Node does not know', `BREW / HTTP/1.1\r\n${close}\r\n`, 400, 'bad_request'],
  ['a bad Content-Length', `POST /api/v1/chat HTTP/1.1\r\n${close}Content-Length: abc\r\n\r\n`, 400, 'bad_request'],
  ['both Content-Length and chunked', `POST /api/v1/chat HTTP/1.1\r\n${close}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n`, 400, 'bad_request'],
  ['no Host header', 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'bad_request'],
  ['an Expect other than 100-continue', `GET / HTTP/1.1\r\n${close}Expect: coffee\r\n\r\n`, 417, 'expectation_failed'],
  ['a malformed percent-encoding', `GET /api/v1/chat/%E0%A4%A/messages HTTP/1.1\r\n${close}\r\n`, 400, 'bad_request'],
  ['an unknown route', `GET /nowhere HTTP/1.1\r\n${close}\r\n`, 404, 'not_found'],
  ['a method with no route', `PROPFIND / HTTP/1.1\r\n${close}\r\n`, 404, 'not_found'],
  ['a body over BODY_LIMIT', `POST /api/v1/chat HTTP/1.1\r\n${close}Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n{"participant_ids":"${'x'.repeat(1970)}"}`, 413, 'payload_too_large'],
  ['a body that is not JSON', `POST /api/v1/chat HTTP/1.1\r\n${close}Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi`, 415, 'unsupported_media_type'],
  ['broken JSON', `POST /api/v1/chat HTTP/1.1\r\n${close}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{x`, 400, 'bad_request']
]

t.test('every error answer before and around routing is {error, code} with its status', async (t) => {
  const { url } = await listen(t, { BODY_LIMIT: 1024 })
  const port = Number(new URL(url).port)
  await assertErrorAnswers(t, port, cases)
})

t.test('a request that arrives on an open connection while the api shuts down is 503 {error, code}', async (t) => {
  const { app } = await listen(t)
  // A request whose body is half sent keeps the connection busy, so closing does not cut it.
  await assertClosingAnswer(t, app, { head: 'POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n', body: '{"participant_ids": []}' })
})
