// For tests of the bus and of services that use it: a free local port and private redis-servers
// that a test may kill and start again (never the shared Redis, which other tests use meanwhile).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { findProgram, freePort } from '@chatty/db/testing'

export { freePort }

/** The redis-server binary (REDIS_SERVER_BIN, else the one on PATH), or undefined when this host has none. */
export function redisServerBinary (): string | undefined {
  const configured = process.env.REDIS_SERVER_BIN
  return configured !== undefined && configured !== '' ? configured : findProgram('redis-server')
}

export interface RedisServer {
  url: string
  port: number
  /** Kills the server the way a crash would (SIGKILL) and waits for it to be gone. */
  kill (): Promise<void>
  /** Starts it again on the same port: empty, or with `appendOnly` from its append-only file. */
  restart (): Promise<void>
}

export interface RedisServerOptions {
  /**
   * Persist every write to an append-only file in this directory (fsync always), as compose
   * runs Redis, so a restart brings back what was written before the kill.
   */
  appendOnlyDir?: string
}

/** A private redis-server on a free port, by default without persistence. The caller kills it at teardown. */
export async function startRedisServer (binary: string, options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const persistence = options.appendOnlyDir === undefined
    ? ['--appendonly', 'no']
    : ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', options.appendOnlyDir]

  async function start (): Promise<void> {
    const started = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], { stdio: ['ignore', 'pipe', 'inherit'] })
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
  return { url: `redis://127.0.0.1:${port}`, port, kill, restart: start }
}
