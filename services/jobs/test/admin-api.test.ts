// The dashboard's JSON API on both queue backends, against the running jobs service: counts,
// the failed list with errors, retry-now, delete, paging, 404/409, and the admin token.
import t from 'tap'
import { waitFor } from '@chatty/db/testing'
import { BACKENDS, createChat, enqueueMessage, lockConversation, messageStored, refuseMessages, startJobs } from './helper.ts'

const HOUR = 3_600_000
const TOKEN = 'test-admin-token-0123456789'

for (const backend of BACKENDS) {
  t.test(`${backend}: counts show every queue by state, served queues with their weights`, async (t) => {
    const { jobs, client } = await startJobs(t, backend)
    await client.enqueue({ type: 'report:daily', payload: { n: 1 } }, { queue: 'critical', delayMs: HOUR })
    await client.enqueue({ type: 'report:daily', payload: { n: 2 } }, { queue: 'critical', delayMs: 2 * HOUR })
    await client.enqueue({ type: 'report:daily', payload: { n: 3 } }, { queue: 'low', delayMs: HOUR })
    // A queue this process does not serve keeps its jobs pending, and is still shown.
    for (let n = 0; n < 3; n++) await client.enqueue({ type: 'report:weekly', payload: { n } }, { queue: 'reports' })

    const response = await jobs.inject('/admin/api/counts')
    t.equal(response.statusCode, 200)
    t.same(response.json(), {
      backend,
      queues: [
        { queue: 'critical', weight: 6, pending: 0, scheduled: 2, active: 0, failed: 0 },
        { queue: 'default', weight: 3, pending: 0, scheduled: 0, active: 0, failed: 0 },
        { queue: 'low', weight: 1, pending: 0, scheduled: 1, active: 0, failed: 0 },
        { queue: 'reports', weight: null, pending: 3, scheduled: 0, active: 0, failed: 0 }
      ],
      total: { pending: 3, scheduled: 3, active: 0, failed: 0 }
    })
  })

  t.test(`${backend}: jobs are listed a page at a time, scheduled ones by run time`, async (t) => {
    const { jobs, client } = await startJobs(t, backend)
    const first = await client.enqueue({ type: 'report:daily', payload: { n: 1 } }, { queue: 'critical', delayMs: HOUR })
    const second = await client.enqueue({ type: 'report:daily', payload: { n: 2 } }, { queue: 'critical', delayMs: 2 * HOUR })
    await client.enqueue({ type: 'report:daily', payload: { n: 3 } }, { queue: 'low', delayMs: HOUR })

    const page1 = (await jobs.inject('/admin/api/jobs?state=scheduled&queue=critical&limit=1')).json()
    t.match(page1, { state: 'scheduled', queue: 'critical', limit: 1, offset: 0, has_more: true })
    t.same(page1.jobs.map((job: { id: string }) => job.id), [first])
    t.match(page1.jobs[0], { type: 'report:daily', queue: 'critical', state: 'scheduled', attempts: 0, last_error: null, payload: { n: 1 }, failed_at: null })
    t.ok(Math.abs(Date.parse(page1.jobs[0].run_at) - (Date.now() + HOUR)) < 60_000, 'run_at is the delayed run time')
    const page2 = (await jobs.inject('/admin/api/jobs?state=scheduled&queue=critical&limit=1&offset=1')).json()
    t.same(page2.jobs.map((job: { id: string }) => job.id), [second])
    t.equal(page2.has_more, false)
    const all = (await jobs.inject('/admin/api/jobs?state=scheduled')).json()
    t.equal(all.jobs.length, 3, 'without a queue, every queue')
    t.equal(all.queue, null)
    t.same((await jobs.inject('/admin/api/jobs')).json().jobs, [], 'the failed list is the default, empty here')

    const bad = await jobs.inject('/admin/api/jobs?state=finished')
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().code, 'bad_request')
    t.equal((await jobs.inject('/admin/api/jobs?limit=0')).statusCode, 400)
    t.equal((await jobs.inject('/admin/api/jobs?queue=no%20spaces')).statusCode, 400)
  })

  t.test(`${backend}: a failing job reaches the failed list with its error, and retry-now runs it again`, async (t) => {
    const { jobs, db, client } = await startJobs(t, backend)
    const chat = await createChat(db)
    const allow = await refuseMessages(db, 'messages_refused')
    const { jobId, messageId } = await enqueueMessage(client, chat, { maxAttempts: 2 })

    const failed = await waitFor(async () => {
      const page = (await jobs.inject('/admin/api/jobs?state=failed')).json()
      return page.jobs.find((job: { id: string }) => job.id === jobId)
    }, 'the job in the failed list')
    t.match(failed, { id: jobId, type: 'chat:send_message', queue: 'default', state: 'failed', attempts: 2, max_attempts: 2 })
    t.match(failed.last_error, /violates check constraint "messages_refused"/, 'the error of the last attempt')
    t.ok(Date.parse(failed.failed_at) <= Date.now())
    t.match(failed.payload, { message_id: messageId, conversation_id: chat })
    t.same((await jobs.inject(`/admin/api/jobs/${encodeURIComponent(jobId)}`)).json(), failed)
    t.match((await jobs.inject('/admin/api/counts')).json().queues, [{ queue: 'critical' }, { queue: 'default', failed: 1 }])

    await allow()
    const retried = await jobs.inject({ method: 'POST', url: `/admin/api/jobs/${encodeURIComponent(jobId)}/retry` })
    t.equal(retried.statusCode, 202)
    t.same(retried.json(), { id: jobId, retried: true })
    await waitFor(() => messageStored(db, messageId), 'the retried job to store its message')
    await waitFor(async () => (await jobs.inject(`/admin/api/jobs/${encodeURIComponent(jobId)}`)).statusCode === 404, 'the completed job to go')
    t.same((await jobs.inject('/admin/api/jobs?state=failed')).json().jobs, [])

    // Throughput is recorded every few seconds: two failed attempts, then one completed.
    const throughput = await waitFor(async () => {
      const body = (await jobs.inject('/admin/api/throughput')).json()
      const queue = body.queues.find((row: { queue: string }) => row.queue === 'default')
      return queue?.completed === 1 && queue.failed === 2 ? body : undefined
    }, 'throughput to count the attempts', 15_000)
    t.equal(throughput.minutes.length, 60, 'one entry per minute of the last hour')
    t.same(throughput.minutes.reduce((sum: { completed: number, failed: number }, m: { completed: number, failed: number }) =>
      ({ completed: sum.completed + m.completed, failed: sum.failed + m.failed }), { completed: 0, failed: 0 }), { completed: 1, failed: 2 })
    t.ok(Date.parse(throughput.minutes[59].minute) <= Date.now() && Date.parse(throughput.minutes[59].minute) > Date.now() - 120_000, 'the last entry is this minute')
  })

  t.test(`${backend}: delete removes a job; unknown jobs are 404 and running ones 409`, async (t) => {
    const { jobs, db, client } = await startJobs(t, backend)
    const later = await client.enqueue({ type: 'report:daily', payload: {} }, { queue: 'low', delayMs: HOUR })
    const removed = await jobs.inject({ method: 'DELETE', url: `/admin/api/jobs/${encodeURIComponent(later)}` })
    t.equal(removed.statusCode, 204)
    t.equal(removed.body, '')
    const gone = await jobs.inject(`/admin/api/jobs/${encodeURIComponent(later)}`)
    t.equal(gone.statusCode, 404)
    t.same(gone.json(), { error: `no job ${JSON.stringify(later)}`, code: 'not_found' })
    t.equal((await jobs.inject({ method: 'DELETE', url: `/admin/api/jobs/${encodeURIComponent(later)}` })).json().code, 'not_found')
    t.equal((await jobs.inject({ method: 'POST', url: `/admin/api/jobs/${encodeURIComponent(later)}/retry` })).json().code, 'not_found')
    t.equal((await jobs.inject('/admin/api/counts')).json().total.scheduled, 0)
    t.equal((await jobs.inject('/admin/api/jobs/bad%20id')).json().code, 'bad_request')

    // A job held mid-attempt by a row lock is running: the port will neither delete nor retry it.
    const chat = await createChat(db)
    const release = await lockConversation(db, chat)
    const { jobId, messageId } = await enqueueMessage(client, chat)
    const url = `/admin/api/jobs/${encodeURIComponent(jobId)}`
    await waitFor(async () => (await jobs.inject(url)).json().state === 'active', 'the job to be running')
    const busy = await jobs.inject({ method: 'DELETE', url })
    t.equal(busy.statusCode, 409)
    t.same(busy.json(), { error: `job ${JSON.stringify(jobId)} is running; wait until it finishes`, code: 'job_running' })
    t.equal((await jobs.inject({ method: 'POST', url: `${url}/retry` })).statusCode, 409)
    await release()
    await waitFor(() => messageStored(db, messageId), 'the job to finish once the lock is gone')
  })

  t.test(`${backend}: with JOBS_ADMIN_TOKEN, the API answers 401 without the token or with a wrong one`, async (t) => {
    const { jobs } = await startJobs(t, backend, { JOBS_ADMIN_TOKEN: TOKEN })
    const missing = await jobs.inject('/admin/api/counts')
    t.equal(missing.statusCode, 401)
    t.same(missing.json(), { error: 'a valid admin token is required (Authorization: Bearer <JOBS_ADMIN_TOKEN>)', code: 'unauthorized' })
    t.match(missing.headers['www-authenticate'], /^Bearer/)
    const wrong = await jobs.inject({ url: '/admin/api/counts', headers: { authorization: `Bearer ${TOKEN}x` } })
    t.equal(wrong.statusCode, 401)
    t.equal((await jobs.inject({ method: 'DELETE', url: '/admin/api/jobs/1', headers: { authorization: 'Bearer nope' } })).statusCode, 401)
    t.equal((await jobs.inject({ url: '/admin/api/counts', headers: { authorization: TOKEN } })).statusCode, 401, 'the token alone is not a bearer token')
    const right = await jobs.inject({ url: '/admin/api/counts', headers: { authorization: `Bearer ${TOKEN}` } })
    t.equal(right.statusCode, 200)
    t.equal(right.json().backend, backend)
    t.equal((await jobs.inject('/healthz')).statusCode, 200, 'the health check needs no token')
  })
}

t.test('the page logs in with the token into an HttpOnly cookie that the API accepts', async (t) => {
  const { jobs } = await startJobs(t, 'postgres', { JOBS_ADMIN_TOKEN: TOKEN })
  const page = await jobs.inject('/admin')
  t.equal(page.statusCode, 401)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /<form method="post" action="\/admin\/login">/)
  t.notMatch(page.body, /queue-filter/, 'no dashboard before logging in')
  t.equal((await jobs.inject(`/admin?token=${TOKEN}x`)).statusCode, 401)

  const viaQuery = await jobs.inject(`/admin?token=${TOKEN}`)
  t.equal(viaQuery.statusCode, 303)
  t.equal(viaQuery.headers.location, '/admin', 'the token leaves the address bar')
  const cookie = String(viaQuery.headers['set-cookie'])
  t.match(cookie, /^chatty_jobs_admin=[\w-]+; Max-Age=43200; Path=\/admin; HttpOnly; SameSite=Strict$/)
  t.notMatch(cookie, TOKEN, 'the cookie is not the token itself')
  const session = cookie.split(';')[0]!

  const viaForm = await jobs.inject({ method: 'POST', url: '/admin/login', payload: `token=${TOKEN}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(viaForm.statusCode, 303)
  t.equal(String(viaForm.headers['set-cookie']).split(';')[0], session)
  t.equal((await jobs.inject({ method: 'POST', url: '/admin/login', payload: 'token=wrong', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).statusCode, 401)

  const dashboard = await jobs.inject({ url: '/admin', headers: { cookie: session } })
  t.equal(dashboard.statusCode, 200)
  t.match(dashboard.body, /<table id="counts">/)
  t.match(dashboard.headers['content-security-policy'], /script-src 'nonce-[^']+'; style-src 'nonce-[^']+'; connect-src 'self'/)
  t.equal((await jobs.inject({ url: '/admin/api/counts', headers: { cookie: session } })).statusCode, 200)
  t.equal((await jobs.inject({ url: '/admin/api/counts', headers: { cookie: 'chatty_jobs_admin=forged' } })).statusCode, 401)

  // The cookie goes along with another site's requests too; changes from there are refused.
  const crossSite = await jobs.inject({ method: 'DELETE', url: '/admin/api/jobs/1', headers: { cookie: session, origin: 'https://evil.example' } })
  t.equal(crossSite.statusCode, 403)
  t.equal(crossSite.json().code, 'forbidden')
  t.equal((await jobs.inject({ method: 'DELETE', url: '/admin/api/jobs/1', headers: { cookie: session, origin: 'http://localhost:80' } })).statusCode, 404, 'the page\'s own origin may')

  const logout = await jobs.inject({ method: 'POST', url: '/admin/logout', headers: { cookie: session } })
  t.equal(logout.statusCode, 303)
  t.match(String(logout.headers['set-cookie']), /^chatty_jobs_admin=; Max-Age=0;/)
})

t.test('without JOBS_ADMIN_TOKEN (or with an empty one) the dashboard is open', async (t) => {
  const { jobs } = await startJobs(t, 'postgres', { JOBS_ADMIN_TOKEN: '' })
  t.equal((await jobs.inject('/admin')).statusCode, 200)
  t.equal((await jobs.inject('/admin/api/counts')).statusCode, 200)
  t.same((await jobs.inject('/healthz')).json(), { status: 'ok' })
  const unknown = await jobs.inject('/admin/api/nothing-here')
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'not_found')
})
