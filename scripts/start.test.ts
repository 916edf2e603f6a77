// `pnpm start` as a process: Ctrl-C (SIGINT to its process group) stops everything and exits 0
// with no error line; a port that is already taken stops it at once with one line naming the
// port and the variable that moves it. Each run gets free ports and its own database.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import { REPO_ROOT } from '@chatty/db'
import { findProgram, freePort, onTeardown, testDatabase } from '@chatty/db/testing'

async function takePort (t: Parameters<typeof onTeardown>[0]): Promise<{ port: number, server: Server }> {
  const server = createServer()
  server.listen(0, '0.0.0.0')
  await once(server, 'listening')
  onTeardown(t, () => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.address() as { port: number }).port, server }
}

interface Run { code: number | null, signal: NodeJS.Signals | null, output: string }

/** Starts `command` in a process group of its own; `until` sees the output as it grows. */
function launch (command: string, args: string[], env: NodeJS.ProcessEnv, until?: (output: string, pid: number) => void): Promise<Run> {
  const child = spawn(command, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
    until?.(output, child.pid!)
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  // Nothing of it may outlive the test.
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} }, 120_000)
  return new Promise((resolve) => child.on('close', (code, signal) => {
    clearTimeout(timer)
    resolve({ code, signal, output })
  }))
}

const pnpm = findProgram('pnpm')

t.test('Ctrl-C of `pnpm start` stops the api, the jobs service and itself, and exits 0 with no error line', { skip: pnpm === undefined ? 'no pnpm on PATH' : false, timeout: 150_000 }, async (t) => {
  const { url } = await testDatabase(t)
  const env = { DB_URL: url, PORT: String(await freePort()), JOBS_ADMIN_PORT: String(await freePort()), HOST: '127.0.0.1', JOBS_ADMIN_HOST: '127.0.0.1' }
  let interrupted = false
  const run = await launch(pnpm!, ['start'], env, (output, pid) => {
    if (!interrupted && output.includes('press Ctrl-C to stop')) {
      interrupted = true
      process.kill(-pid, 'SIGINT') // what a terminal does: the whole foreground process group
    }
  })
  t.ok(interrupted, 'it came up')
  t.equal(run.code, 0, `exit code 0\n${run.output}`)
  t.notMatch(run.output, /ELIFECYCLE|Command failed|exited \(|Error/, 'no error line')
  const stopped = await fetch(`http://127.0.0.1:${env.PORT}/healthz`).then(() => false, () => true)
  t.ok(stopped, 'the api is gone')
})

for (const [variable, what, dbUrl] of [['PORT', 'the api', true], ['JOBS_ADMIN_PORT', 'the jobs dashboard', true], ['EMBEDDED_POSTGRES_PORT', 'the embedded Postgres', false]] as const) {
  t.test(`a taken ${variable} stops \`pnpm start\` with one line naming the port and ${variable}`, async (t) => {
    const { port } = await takePort(t)
    const env: NodeJS.ProcessEnv = { PORT: String(await freePort()), JOBS_ADMIN_PORT: String(await freePort()), DB_URL: dbUrl ? (await testDatabase(t)).url : '', [variable]: String(port) }
    const run = await launch(process.execPath, ['scripts/start.ts'], env)
    t.equal(run.code, 1, 'exit code 1')
    const lines = run.output.trim().split('\n').filter((line) => !line.startsWith('[start] DB_URL is not set'))
    t.equal(lines.length, 1, `one line\n${run.output}`)
    t.match(lines[0], `[start] port ${port} for ${what} is in use`)
    t.match(lines[0], `set ${variable} to another port`)
  })
}
