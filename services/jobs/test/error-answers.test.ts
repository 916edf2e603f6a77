// Every error answer of the listening jobs service (dashboard, its API, /healthz) is {error,
// code}, including those Node and Fastify give before a route runs. Sent as raw bytes.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { assertClosingAnswer, assertErrorAnswers, type ErrorCase } from '@chatty/db/testing'
import { startJobs } from './helper.ts'

const close = 'Host: x\r\nConnection: close\r\n'

const cases: ErrorCase[] = [
  ['header fields too large', `GET /healthz HTTP/1.1\r\n${close}X-Padding: ${'p'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
  ['a malformed request line', 'GET /healthz HTTP/1.1 extra\r\n\r\n', 400, 'bad_request'],
  ['a bad Content-Length', `POST /admin/login HTTP/1.1\r\n${close}Content-Length: abc\r\n\r\n`, 400, 'bad_request'],
  ['no Host header', 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'bad_request'],
  ['an Expect other than 100-continue', `GET /healthz HTTP/1.1\r\n${close}Expect: coffee\r\n\r\n`, 417, 'expectation_failed'],
  ['a malformed percent-encoding', `GET /admin/api/jobs/%E0%A4%A HTTP/1.1\r\n${close}\r\n`, 400, 'bad_request'],
  ['an unknown route', `GET /nowhere HTTP/1.1\r\n${close}\r\n`, 404, 'not_found'],
  ['an unknown page route', `GET /admin/nowhere HTTP/1.1\r\n${close}\r\n`, 404, 'not_found'],
  ['an unknown API route', `GET /admin/api/nowhere HTTP/1.1\r\n${close}\r\n`, 404, 'not_found'],
  ['a login form over its limit', `POST /admin/login HTTP/1.1\r\n${close}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\ntoken=${'t'.repeat(4994)}`, 413, 'payload_too_large'],
  ['a body of a type nobody parses', `POST /admin/api/jobs/1/retry HTTP/1.1\r\n${close}Content-Type: application/xml\r\nContent-Length: 4\r\n\r\n<a/>`, 415, 'unsupported_media_type']
]

t.test('every error answer of the jobs service, before and around routing, is {error, code} with its status', async (t) => {
  const { jobs } = await startJobs(t, 'postgres')
  await jobs.listen({ port: 0, host: '127.0.0.1' })
  const { port } = jobs.server.address() as AddressInfo
  await assertErrorAnswers(t, port, cases)
})

t.test('a request that arrives on an open connection while the jobs service shuts down is 503 {error, code}', async (t) => {
  const { jobs } = await startJobs(t, 'postgres')
  await jobs.listen({ port: 0, host: '127.0.0.1' })
  // A request whose body is half sent keeps the connection busy, so closing does not cut it.
  await assertClosingAnswer(t, jobs, { head: 'POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n', body: 'token=not-the-token' })
})
