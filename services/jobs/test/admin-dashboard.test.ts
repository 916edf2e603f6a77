// The dashboard page in a real headless Chromium (Debian's, on PATH, driven by playwright-core;
// skipped without it, except under CI): logging in with the token, the counts, a failed job's
// error shown as text, Retry and Delete. Saves a screenshot under the OS temp directory and prints
// its path.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { chromium } from 'playwright-core'
import { onTeardown, programPath, skipUnlessInstalled, waitFor } from '@chatty/db/testing'
import { createChat, enqueueMessage, messageStored, refuseMessages, startJobs } from './helper.ts'

const TOKEN = 'browser-test-token-0123456789'
const HOUR = 3_600_000
// The constraint's name is in Postgres's error, so the failed jobs' errors carry markup that
// must show as text: no image is made and its handler never runs.
const HOSTILE = '<img src=x onerror="window.__injected = true">'

t.test('the dashboard shows counts and failed jobs, retries one and deletes another', { skip: skipUnlessInstalled(['chromium']) }, async (t) => {
  const { jobs, db, client } = await startJobs(t, 'postgres', { JOBS_ADMIN_TOKEN: TOKEN })
  const address = await jobs.listen({ port: 0, host: '127.0.0.1' })

  const chat = await createChat(db)
  const allow = await refuseMessages(db, HOSTILE)
  const retried = await enqueueMessage(client, chat, { maxAttempts: 1 })
  const deleted = await enqueueMessage(client, chat, { maxAttempts: 1 })
  await client.enqueue({ type: 'report:daily', payload: {} }, { queue: 'low', delayMs: HOUR })
  await client.enqueue({ type: 'report:daily', payload: {} }, { queue: 'critical', delayMs: HOUR })
  await client.enqueue({ type: 'report:daily', payload: {} }, { queue: 'critical', delayMs: HOUR })
  await waitFor(async () => (await jobs.inject({ url: '/admin/api/counts', headers: { authorization: `Bearer ${TOKEN}` } })).json().total.failed === 2, 'both jobs to fail')

  const profile = await mkdtemp(join(tmpdir(), 'chatty-chromium-'))
  onTeardown(t, () => rm(profile, { recursive: true, force: true }))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: programPath('chromium'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 }
  })
  onTeardown(t, () => context.close())
  const page = context.pages()[0] ?? await context.newPage()

  // Without the token: the login page (its 401 is the one expected console error).
  const denied = await page.goto(`${address}/admin`)
  t.equal(denied?.status(), 401)
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`) })
  await page.getByLabel('Admin token').fill(TOKEN)
  await page.getByRole('button', { name: 'Log in' }).click()
  await page.waitForSelector('body[data-loaded="true"]', { state: 'attached' })
  t.equal(new URL(page.url()).pathname, '/admin', 'logged in, on the dashboard')

  const countsRow = (queue: string) => page.locator(`#counts tbody tr[data-queue="${queue}"] td`).allTextContents()
  t.same(await countsRow('critical'), ['critical', '6', '0', '2', '0', '0'])
  t.same(await countsRow('default'), ['default', '3', '0', '0', '0', '2'])
  t.same(await countsRow('low'), ['low', '1', '0', '1', '0', '0'])
  t.same(await page.locator('#counts tfoot td').allTextContents(), ['All queues', '', '0', '3', '0', '2'])

  const failedRow = (id: string) => page.locator(`#jobs tbody tr[data-job-id="${id}"]`)
  for (const { jobId } of [retried, deleted]) {
    const error = await failedRow(jobId).locator('pre.error').textContent()
    t.equal(error, `new row for relation "message" violates check constraint "${HOSTILE}"`, 'the error, as text')
  }
  t.equal(await page.locator('#jobs img').count(), 0, 'markup in a job\'s error is not rendered')
  t.equal(await page.evaluate(() => (globalThis as { __injected?: boolean }).__injected), undefined, 'nor any of its script')
  t.same(await failedRow(retried.jobId).locator('td').nth(3).textContent(), '1 / 1', 'attempts')

  // Throughput is recorded every few seconds; the page refreshes every five.
  await page.locator('#throughput-summary', { hasText: /\b2 failed attempts/ }).waitFor({ timeout: 15_000 })
  t.equal(await page.locator('#sparkline rect.failed').count(), 60, 'a bar per minute')

  const screenshot = join(tmpdir(), `chatty-jobs-dashboard-${Date.now()}.png`)
  await page.screenshot({ path: screenshot, fullPage: true })
  t.comment(`dashboard screenshot: ${screenshot}`)

  // Retry, now that Postgres takes the message: the job leaves the failed list and stores it.
  await allow()
  await failedRow(retried.jobId).getByRole('button', { name: 'Retry' }).click()
  await failedRow(retried.jobId).waitFor({ state: 'detached' })
  t.match(await page.locator('#status').textContent(), `Job ${retried.jobId} will run again now.`)
  await waitFor(() => messageStored(db, retried.messageId), 'the retried job to store its message')

  // Delete, after the confirmation: gone from the list and from the queue.
  page.once('dialog', (dialog) => { void dialog.accept() })
  await failedRow(deleted.jobId).getByRole('button', { name: 'Delete' }).click()
  await failedRow(deleted.jobId).waitFor({ state: 'detached' })
  t.match(await page.locator('#status').textContent(), `Job ${deleted.jobId} deleted.`)
  t.equal((await jobs.inject({ url: `/admin/api/jobs/${deleted.jobId}`, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 404)
  t.equal(await messageStored(db, deleted.messageId), false, 'the deleted job never ran again')
  await page.locator('#counts tbody tr[data-queue="default"] td.failed-count', { hasText: /^0$/ }).waitFor()
  t.equal(await page.locator('#empty').textContent(), 'No failed jobs.')

  t.same(problems, [], 'no script errors, failed loads or CSP violations')
})
