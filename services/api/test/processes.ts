// Services as real child processes (`node services/api/src/server.ts`, as in production), for
// tests that kill one.
import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { once } from 'node:events'
import { onTeardown } from '@chatty/db/testing'
import { REPO_ROOT } from '@chatty/db'

export interface ServiceProcess {
  /** http://127.0.0.1:<port> for an api process; '' for jobs. */
  url: string
  child: ChildProcess
  output: string[]
  /** Resolves once the process has exited. */
  exited: Promise<unknown>
}

/** Starts a service (PORT=0 for an api) and resolves once its log says it is up. Killed at teardown. */
export async function startService (t: Test, script: string, env: Record<string, string>): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [script], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0', JOBS_ADMIN_PORT: '0', MAX_EVENT_LOOP_DELAY_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output: string[] = []
  const exited = once(child, 'exit')
  onTeardown(t, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  })
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  return new Promise<ServiceProcess>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      output.push(line)
      let msg = ''
      try { msg = JSON.parse(line).msg ?? '' } catch {}
      const listening = /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/.exec(msg)
      if (listening !== null) resolve({ url: listening[1]!, child, output, exited })
      if (msg === 'jobs worker running') resolve({ url: '', child, output, exited })
    })
    void exited.then(([code]) => reject(new Error(`${script} exited (${code}) before it was up:\n${output.join('\n')}`)))
  })
}
