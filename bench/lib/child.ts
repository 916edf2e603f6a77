// Load generators and baseline servers run in child processes of their own, so they never share
// an event loop with what they measure. The parent talks to each over Node's IPC channel: one
// request at a time, answered by the child's handler of that request's type.
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export interface Child {
  readonly pid: number
  /** Sends a request and resolves with the child's answer; rejects with its error. */
  request<T = unknown> (type: string, payload?: unknown): Promise<T>
  /** Ends the child (SIGTERM, then SIGKILL after a grace period). */
  stop (): Promise<void>
  /** Resolves with the exit code when the child exits. */
  readonly exited: Promise<number | null>
}

interface Reply { id: number, ok: boolean, value?: unknown, error?: string }

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  /** Extra node flags, e.g. --max-old-space-size. */
  execArgv?: string[]
  /** Inherit stdout/stderr (default) or drop them. */
  quiet?: boolean
}

export function spawnChild (script: string | URL, options: SpawnOptions = {}): Child {
  const path = script instanceof URL ? fileURLToPath(script) : script
  const child: ChildProcess = fork(path, [], {
    env: options.env ?? process.env,
    execArgv: options.execArgv ?? [],
    stdio: options.quiet === true ? ['ignore', 'ignore', 'inherit', 'ipc'] : ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced'
  })
  let next = 1
  const pending = new Map<number, PromiseWithResolvers<unknown>>()
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code, signal) => {
      for (const waiter of pending.values()) waiter.reject(new Error(`${path} exited (${signal ?? code}) before answering`))
      pending.clear()
      resolve(code)
    })
  })
  child.on('error', (error) => {
    for (const waiter of pending.values()) waiter.reject(error)
    pending.clear()
  })
  child.on('message', (message: Reply) => {
    const waiter = pending.get(message.id)
    if (waiter === undefined) return
    pending.delete(message.id)
    if (message.ok) waiter.resolve(message.value)
    else waiter.reject(new Error(message.error))
  })
  return {
    pid: child.pid!,
    exited,
    request<T> (type: string, payload?: unknown): Promise<T> {
      if (!child.connected) return Promise.reject(new Error(`${path} is not running`))
      const id = next++
      const waiter = Promise.withResolvers<unknown>()
      pending.set(id, waiter)
      child.send({ id, type, payload })
      return waiter.promise as Promise<T>
    },
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
}

export type Handlers = Record<string, (payload: any) => unknown>

/** The child's side: answers each request with its handler's result. */
export function serveRequests (handlers: Handlers): void {
  if (process.send === undefined) throw new Error('this script is a bench child process: run it through pnpm bench')
  process.on('message', (message: { id: number, type: string, payload: unknown }) => {
    const handler = handlers[message.type]
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown request ${message.type}`)
        return handler(message.payload)
      })
      .then(
        (value) => process.send!({ id: message.id, ok: true, value }),
        (error: unknown) => process.send!({ id: message.id, ok: false, error: error instanceof Error ? error.stack ?? error.message : String(error) })
      )
  })
  process.on('SIGTERM', () => process.exit(0))
  // The parent going away takes its children with it.
  process.on('disconnect', () => process.exit(0))
}
