// Loaded into the api and jobs processes the bench starts (node --import): a tiny HTTP endpoint on
// 127.0.0.1:BENCH_PROBE_PORT that reports the process's memory (after a full GC when node runs
// with --expose-gc) and CPU time. It answers a handful of requests per run and is idle otherwise.
// It also ends the process when the bench that started it is gone, so a crashed or killed run
// leaves nothing behind.
import { createServer } from 'node:http'

const port = Number(process.env.BENCH_PROBE_PORT)
if (Number.isInteger(port) && port > 0) {
  const server = createServer((request, response) => {
    const collect = request.url?.includes('gc=1') === true
    const gc = (globalThis as { gc?: () => void }).gc
    if (collect && gc !== undefined) {
      gc()
      gc()
    }
    const memory = process.memoryUsage()
    const cpu = process.cpuUsage()
    response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify({ pid: process.pid, memory, cpu, gc: collect && gc !== undefined }))
  })
  server.listen(port, '127.0.0.1')
  server.unref()
}

const parent = Number(process.env.BENCH_PARENT_PID)
if (Number.isInteger(parent) && parent > 0) {
  setInterval(() => {
    try {
      process.kill(parent, 0)
    } catch {
      process.kill(process.pid, 'SIGTERM')
    }
  }, 1000).unref()
}
