// `pnpm test`: finds a Postgres (DB_URL, else 127.0.0.1:5432, else an embedded one), builds the
// migrated template every test file clones, runs tap over the given files (default: all), and
// ends with the tests skipped here (each with its reason) and a plain "N passed, N failed,
// N skipped" line.
import { spawn } from 'node:child_process'
import { globSync, statSync } from 'node:fs'
import { startTestServer, ensureTemplate } from '@chatty/db/testing'
import { installQueueSchema } from '@chatty/queue'

// A folder argument means every test file below it.
const files = process.argv.slice(2).flatMap((arg) =>
  statSync(arg, { throwIfNoEntry: false })?.isDirectory() === true ? globSync(`${arg.replace(/\/$/, '')}/**/*.test.ts`) : [arg])

const server = await startTestServer()
let code = 1
try {
  const template = await ensureTemplate(server.serverUrl, [installQueueSchema], 'queue-schema-v1')
  const tap = spawn('tap', ['--reporter=tap', ...files], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TEST_DB_SERVER: server.serverUrl, TEST_DB_TEMPLATE: template }
  })
  // Tests are the named subtests of each file (one level below the file).
  let passed = 0
  let failed = 0
  const skipped: string[] = []
  let file = ''
  let pending = ''
  tap.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk)
    pending += chunk.toString()
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) {
      file = /^# Subtest: (.+)$/.exec(line)?.[1] ?? file
      const match = /^ {4}(not )?ok \d+(?: - (.*?))?(?: # SKIP(?: (.*))?)?$/.exec(line)
      if (match === null) continue
      if (match[1] !== undefined) failed++
      else if (/ # SKIP\b/.test(line)) skipped.push(`${file} "${match[2] ?? ''}": ${match[3] ?? 'skipped'}`)
      else passed++
    }
  })
  code = await new Promise<number>((resolve) => tap.on('close', (status) => resolve(status ?? 1)))
  if (code !== 0 && failed === 0) failed = 1 // a file that crashed before reporting still fails the run
  if (skipped.length > 0) console.log(`\nskipped here:\n${skipped.map((line) => `  ${line}`).join('\n')}`)
  console.log(`\n${passed} passed, ${failed} failed, ${skipped.length} skipped`)
} finally {
  await server.stop()
}
process.exit(code)
