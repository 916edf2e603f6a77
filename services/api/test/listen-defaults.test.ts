// Where the api listens when HOST is not set: with AUTH_MODE=none (anyone can act as anyone) only
// on 127.0.0.1, with identity on every interface. The process is started as `pnpm start` starts
// it, without HOST, and reached on 127.0.0.1 and on 127.0.0.2 (loopback too on Linux, but not the
// address a socket bound to 127.0.0.1 accepts on).
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { onTeardown, testDatabase } from '@chatty/db/testing'
import { REPO_ROOT } from '@chatty/db'
import { buildTestApp } from './helper.ts'

const SECRET = 'listen-test-secret-listen-test-secret'

/** Starts services/api/src/server.ts with exactly these variables; resolves with its port. */
async function startApi (t: Test, env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, ['services/api/src/server.ts'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: '0', MAX_EVENT_LOOP_DELAY_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = once(child, 'exit')
  onTeardown(t, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    await exited
  })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg = ''
      try { msg = JSON.parse(line).msg ?? '' } catch {}
      const listening = /^Server listening at http:\/\/[^ ]+:(\d+)$/.exec(msg)
      if (listening !== null) resolve(Number(listening[1]))
    })
    void exited.then(([code]) => reject(new Error(`the api exited (${code}) before it listened: ${stderr}`)))
  })
}

/** 'ok', or the error code of the connection attempt. */
async function reach (host: string, port: number): Promise<string> {
  try {
    const response = await fetch(`http://${host}:${port}/healthz`)
    return response.ok ? 'ok' : `status ${response.status}`
  } catch (error) {
    return ((error as { cause?: { code?: string } }).cause?.code) ?? String(error)
  }
}

t.test('HOST defaults to 127.0.0.1 with AUTH_MODE=none and to 0.0.0.0 with jwt; a set HOST is kept', async (t) => {
  const { dbUrl } = await buildTestApp(t)
  t.equal((await buildTestApp(t, {}, dbUrl)).app.config.HOST, '127.0.0.1', 'none mode (the default outside production)')
  t.equal((await buildTestApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET }, dbUrl)).app.config.HOST, '0.0.0.0', 'jwt mode')
  t.equal((await buildTestApp(t, { HOST: '0.0.0.0' }, dbUrl)).app.config.HOST, '0.0.0.0', 'none mode with HOST set')
})

t.test('the api process in none mode without HOST answers on 127.0.0.1 only', async (t) => {
  const { url } = await testDatabase(t)
  const port = await startApi(t, { DB_URL: url, DB_POOL_MAX: '2' })
  t.equal(await reach('127.0.0.1', port), 'ok')
  t.equal(await reach('127.0.0.2', port), 'ECONNREFUSED', 'another address of the machine is refused')
})

t.test('the api process in jwt mode without HOST answers on every address', async (t) => {
  const { url } = await testDatabase(t)
  const port = await startApi(t, { DB_URL: url, DB_POOL_MAX: '2', AUTH_MODE: 'jwt', JWT_SECRET: SECRET })
  t.equal(await reach('127.0.0.1', port), 'ok')
  t.equal(await reach('127.0.0.2', port), 'ok', 'another address of the machine answers')
})
