// `pnpm test`: finds a Postgres (DB_URL, else 127.0.0.1:5432, else an embedded one) and a Redis
// (REDIS_URL, else 127.0.0.1:6379, else a redis-server of its own when one is on PATH), builds the
// migrated template every test file clones, runs tap over the given files (default: all), and
// ends with the tests skipped here (each with its reason) and a plain "N passed, N failed,
// N skipped" line.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { globSync, statSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { findProgram, missingProgramLine, startTestServer, ensureTemplate } from '@chatty/db/testing'
import { installQueueSchema } from '@chatty/queue'

// A folder argument means every test file below it.
const files = process.argv.slice(2).flatMap((arg) =>
  statSync(arg, { throwIfNoEntry: false })?.isDirectory() === true ? globSync(`${arg.replace(/\/$/, '')}/**/*.test.ts`) : [arg])

/** True when a Redis answers PING on this port of 127.0.0.1 within a second. */
async function redisAnswers (port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1')
  socket.setTimeout(1000, () => socket.destroy())
  socket.on('connect', () => socket.write('PING\r\n'))
  const reply = await new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => resolve(chunk.toString()))
    socket.on('error', () => resolve(''))
    socket.on('close', () => resolve(''))
  })
  socket.destroy()
  return reply.startsWith('+PONG')
}

/** A redis-server of this run's own, on a free port, without persistence. */
async function startRedis (binary: string): Promise<{ url: string, child: ChildProcess }> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) resolve()
    })
    child.once('exit', (status) => reject(new Error(`redis-server exited (${status}): ${output}`)))
  })
  child.stdout!.resume()
  return { url: `redis://127.0.0.1:${port}`, child }
}

let redis: ChildProcess | undefined
if ((process.env.REDIS_URL ?? '') === '') {
  const binary = findProgram('redis-server')
  if (await redisAnswers(6379)) {
    process.env.REDIS_URL = 'redis://127.0.0.1:6379'
  } else if (binary !== undefined) {
    const started = await startRedis(binary)
    redis = started.child
    process.env.REDIS_URL = started.url
    console.log(`# REDIS_URL is not set and nothing answers on 127.0.0.1:6379: using a redis-server of this run's own at ${started.url}`)
  } else {
    console.log(`# no Redis (REDIS_URL is not set, nothing answers on 127.0.0.1:6379) and the suite ${missingProgramLine('redis-server')}, or set REDIS_URL: the tests that use Redis will fail`)
  }
}

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
  redis?.kill()
}
process.exit(code)
