// Helpers of the multi-process and fault tests: services spawned as real child processes (as
// `pnpm start` runs them) and private redis-servers that a test may kill and start again. Never
// the shared Redis: other test files use it meanwhile.
import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { onTeardown } from '@chatty/db/testing'
import { REPO_ROOT } from '@chatty/db'

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
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
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

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** The redis-server binary, or undefined when this host has none. */
export function redisServerBinary (): string | undefined {
  const candidates = [process.env.REDIS_SERVER_BIN, ...(process.env.PATH ?? '').split(':').map((dir) => `${dir}/redis-server`), '/usr/bin/redis-server']
  return candidates.find((path) => path !== undefined && path !== '' && existsSync(path))
}

export interface RedisServer {
  url: string
  /** Kills the server the way a crash would (SIGKILL) and waits for it to be gone. */
  kill (): Promise<void>
  /** Starts it again on the same port, empty (no persistence). */
  restart (): Promise<void>
}

/** A private redis-server on a free port, without persistence; killed when the test ends. */
export async function startRedisServer (t: Test, binary: string): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined

  async function start (): Promise<void> {
    const started = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
    child = started
    let output = ''
    await new Promise<void>((resolve, reject) => {
      started.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) resolve()
      })
      started.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
    })
    started.stdout!.resume()
  }

  async function kill (): Promise<void> {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = once(running, 'exit')
    running.kill('SIGKILL')
    await exited
  }

  await start()
  onTeardown(t, kill)
  return { url: `redis://127.0.0.1:${port}`, kill, restart: start }
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
