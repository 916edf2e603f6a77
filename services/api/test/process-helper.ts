// Helpers of the multi-process and fault tests: services spawned as real child processes (as
// `pnpm start` runs them) and private redis-servers that a test may kill and start again. Never
// the shared Redis: other test files use it meanwhile.
import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { onTeardown } from '@chatty/db/testing'
import { REPO_ROOT } from '@chatty/db'
import { startRedisServer as startPrivateRedis, type RedisServer, type RedisServerOptions } from '@chatty/bus/testing'

export interface Service {
  /** http://127.0.0.1:<port> for an api process; '' for a jobs process. */
  url: string
  output: string[]
  child: ChildProcess
  /** Kills the process the way a crash would (SIGKILL) and waits for it to be gone. */
  kill (): Promise<void>
}

/**
 * Starts a service as a child process and waits until its log says it is up. An api process is
 * given PORT=0 and reports the port it got in Fastify's "Server listening at" line.
 */
export async function startService (t: Test, script: string, env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, [script], {
    cwd: REPO_ROOT,
    // Overload shedding and rate limits off unless a test sets them: a busy test machine lags,
    // and the multi-process tests send far more than a user would.
    env: {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      PORT: '0',
      JOBS_ADMIN_PORT: '0',
      MAX_EVENT_LOOP_DELAY_MS: '0',
      RATE_LIMIT_IP_MAX: '1000000',
      RATE_LIMIT_USER_MAX: '1000000',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output: string[] = []
  const exited = once(child, 'exit')
  const gone = () => child.exitCode !== null || child.signalCode !== null
  onTeardown(t, async () => {
    if (gone()) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  })
  async function kill (): Promise<void> {
    if (gone()) return
    child.kill('SIGKILL')
    await exited
  }
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  return new Promise<Service>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      output.push(line)
      let msg = ''
      try { msg = JSON.parse(line).msg ?? '' } catch {}
      const listening = /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/.exec(msg)
      if (listening !== null) resolve({ url: listening[1]!, output, child, kill })
      if (msg === 'jobs worker running') resolve({ url: '', output, child, kill })
    })
    void exited.then(([code]) => reject(new Error(`${script} exited (${code}) before it was up:\n${output.join('\n')}`)))
  })
}

export { freePort, redisServerBinary, type RedisServer } from '@chatty/bus/testing'

/** A private redis-server (see @chatty/bus/testing), killed when the test ends. */
export async function startRedisServer (t: Test, binary: string, options: RedisServerOptions = {}): Promise<RedisServer> {
  const server = await startPrivateRedis(binary, options)
  onTeardown(t, server.kill)
  return server
}

export interface FailoverProxy {
  /** http://127.0.0.1:<port> */
  url: string
  close (): Promise<void>
}

/**
 * A TCP load balancer in front of several api processes: each new connection goes to the first
 * target that accepts it, as a proxy with health checks fails over. Both ends of a connection are
 * closed together, so when a target dies its clients see their connections drop.
 */
export async function startFailoverProxy (t: Test, targets: string[]): Promise<FailoverProxy> {
  const ports = targets.map((target) => Number(new URL(target).port))
  const open = new Set<Socket>()
  const server = createServer((client) => {
    open.add(client)
    client.on('close', () => open.delete(client))
    client.on('error', () => client.destroy())
    client.pause()
    const tryTarget = (index: number): void => {
      if (index >= ports.length) {
        client.destroy()
        return
      }
      const upstream = connect(ports[index]!, '127.0.0.1')
      let connected = false
      upstream.on('error', () => {
        upstream.destroy()
        // Refused: that target is down, try the next one. Failed later: the connection is lost.
        if (!connected) tryTarget(index + 1)
        else client.destroy()
      })
      upstream.once('connect', () => {
        connected = true
        open.add(upstream)
        upstream.on('close', () => {
          open.delete(upstream)
          client.destroy()
        })
        client.on('close', () => upstream.destroy())
        client.pipe(upstream)
        upstream.pipe(client)
        client.resume()
      })
    }
    tryTarget(0)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  async function close (): Promise<void> {
    for (const socket of open) socket.destroy()
    server.close()
    await once(server, 'close').catch(() => {})
  }
  onTeardown(t, close)
  return { url: `http://127.0.0.1:${port}`, close }
}
