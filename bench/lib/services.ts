// Starts chatty the way `pnpm start` does (scripts/start.ts): the api and the jobs service as
// child processes of their own, against the bench database, with the bench probe loaded. Each is
// started through a shell that first raises its open-file limit to the hard limit, since one api
// process is asked to hold 10,000 sockets.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort, waitFor } from './ports.ts'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PROBE = fileURLToPath(new URL('./probe.ts', import.meta.url))

export interface ProbeReport {
  pid: number
  memory: NodeJS.MemoryUsage
  cpu: NodeJS.CpuUsage
}

export interface Service {
  name: string
  pid: number
  /** Memory and CPU time of the process, after a full GC when gc is true. */
  probe (gc?: boolean): Promise<ProbeReport>
  stop (): Promise<void>
}

export interface Chatty {
  apiUrl: string
  wsUrl: string
  api: Service
  jobs?: Service
  stop (): Promise<void>
}

export interface ChattyOptions {
  dbUrl: string
  redisUrl?: string
  /** Start the jobs service too (the HTTP send path needs it). */
  jobs?: boolean
  /** Extra configuration variables for both services. */
  env?: Record<string, string>
  log?: (line: string) => void
}

/** Configuration every bench run uses: quiet logs, and abuse limits out of the way of the load. */
export const BENCH_ENV: Record<string, string> = {
  NODE_ENV: 'development',
  AUTH_MODE: 'none',
  LOG_LEVEL: 'warn',
  RATE_LIMIT_IP_MAX: '1000000000',
  RATE_LIMIT_USER_MAX: '1000000000',
  WS_RATE_LIMIT_PER_SEC: '0',
  WS_MAX_SOCKETS_PER_USER: '0',
  // A 2-core machine under full load has event-loop delays no production host should; the
  // overload guard would turn the measurement into a count of 503s.
  MAX_EVENT_LOOP_DELAY_MS: '0',
  WS_PING_INTERVAL_MS: '30000'
}

const MAX_LOG_LINES = 20

async function launch (name: string, entry: string, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<{ child: ChildProcess, probePort: number }> {
  const probePort = await freePort()
  // BENCH_CPU_PROF=1 writes a V8 CPU profile of each service to bench/results/profiles/ at exit.
  const profile = process.env.BENCH_CPU_PROF === '1' ? `--cpu-prof --cpu-prof-dir="${REPO_ROOT}bench/results/profiles" ` : ''
  const command = `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "${process.execPath}" ${profile}--expose-gc --import "${PROBE}" "${entry}"`
  const child = spawn('/bin/sh', ['-c', command], {
    cwd: REPO_ROOT,
    env: { ...env, BENCH_PROBE_PORT: String(probePort), BENCH_PARENT_PID: String(process.pid) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  // A service that logs on every request under load would flood the terminal: the first lines
  // are shown, the rest counted.
  let lines = 0
  const relay = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() === '') continue
      lines++
      if (lines <= MAX_LOG_LINES) log(`[${name}] ${line.length > 400 ? `${line.slice(0, 400)}...` : line}`)
      else if (lines % 1000 === 0) log(`[${name}] ${lines} log lines so far`)
    }
  }
  child.stdout!.on('data', relay)
  child.stderr!.on('data', relay)
  return { child, probePort }
}

function service (name: string, child: ChildProcess, probePort: number): Service {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve()
    else child.on('exit', () => resolve())
  })
  return {
    name,
    pid: child.pid!,
    async probe (gc = false) {
      const response = await fetch(`http://127.0.0.1:${probePort}/?gc=${gc ? 1 : 0}`)
      return await response.json() as ProbeReport
    },
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
  }
}

export async function startChatty (options: ChattyOptions): Promise<Chatty> {
  const log = options.log ?? (() => {})
  const port = await freePort()
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...BENCH_ENV,
    HOST: '127.0.0.1',
    PORT: String(port),
    DB_URL: options.dbUrl,
    QUEUE_BACKEND: 'postgres',
    JOBS_ADMIN_PORT: String(await freePort()),
    JOBS_ADMIN_HOST: '127.0.0.1',
    ...options.env
  }
  delete env.REDIS_URL
  if (options.redisUrl !== undefined) env.REDIS_URL = options.redisUrl
  const started: Service[] = []
  const stop = async () => { await Promise.all(started.map((s) => s.stop())) }
  try {
    const api = await launch('api', 'services/api/src/server.ts', env, log)
    const apiService = service('api', api.child, api.probePort)
    started.push(apiService)
    let jobsService: Service | undefined
    if (options.jobs === true) {
      const jobs = await launch('jobs', 'services/jobs/src/server.ts', env, log)
      jobsService = service('jobs', jobs.child, jobs.probePort)
      started.push(jobsService)
    }
    const apiUrl = `http://127.0.0.1:${port}`
    await waitFor('the api to answer /readyz', async () => (await fetch(`${apiUrl}/readyz`)).ok, 60_000)
    if (jobsService !== undefined) await waitFor('the jobs probe', async () => (await jobsService.probe()).pid > 0, 60_000)
    return { apiUrl, wsUrl: `ws://127.0.0.1:${port}/api/v1/chat/ws`, api: apiService, jobs: jobsService, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
