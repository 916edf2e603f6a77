// The logged url keeps what helps reading a log and loses every credential-like value, however
// the parameter name is written.
import t from 'tap'
import { redactUrl, serializeRequest } from '../src/index.ts'

t.test('credential-like query parameters lose their value; the path and other parameters stay', async (t) => {
  const cases: Array<[string, string]> = [
    ['/api/v1/chat/ws?access_token=eyJ.a.b', '/api/v1/chat/ws?access_token=[redacted]'],
    ['/api/v1/chat/ws?user_id=u1&access_token=eyJ.a.b&presence=true', '/api/v1/chat/ws?user_id=u1&access_token=[redacted]&presence=true'],
    ['/admin?token=s3cret', '/admin?token=[redacted]'],
    ['/x?%61ccess_token=eyJ', '/x?%61ccess_token=[redacted]'],
    ['/x?Access_Token=a&ACCESS_TOKEN=b', '/x?Access_Token=[redacted]&ACCESS_TOKEN=[redacted]'],
    ['/x?client_secret=a&X-Amz-Signature=b&X-Amz-Credential=c&sig=d&api_key=e&password=f&code=g&key=h', '/x?client_secret=[redacted]&X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]&sig=[redacted]&api_key=[redacted]&password=[redacted]&code=[redacted]&key=[redacted]'],
    ['/x?%E0%A4%A=hidden', '/x?%E0%A4%A=[redacted]'],
    ['/x?access_token=a=b=c', '/x?access_token=[redacted]'],
    ['/api/v1/chat/c1/messages?limit=50&before_seq=9&dedupe_key=k', '/api/v1/chat/c1/messages?limit=50&before_seq=9&dedupe_key=k'],
    ['/healthz', '/healthz'],
    ['http://host/api/v1/chat/ws?access_token=eyJ', 'http://host/api/v1/chat/ws?access_token=[redacted]']
  ]
  for (const [url, logged] of cases) t.equal(redactUrl(url), logged, url)
})

t.test('the request serializer logs Fastify\'s usual fields, the url redacted, and no header', async (t) => {
  const logged = serializeRequest({
    method: 'GET',
    url: '/admin?token=s3cret',
    headers: { authorization: 'Bearer s3cret', cookie: 'chatty_jobs_admin=s3cret', 'accept-version': '1' },
    host: 'localhost:8081',
    ip: '127.0.0.1',
    socket: { remotePort: 5555 }
  })
  t.same(logged, { method: 'GET', url: '/admin?token=[redacted]', version: '1', host: 'localhost:8081', remoteAddress: '127.0.0.1', remotePort: 5555 })
})
