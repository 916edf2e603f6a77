// The leak check armed by onTeardown: a test file that leaves a pg Pool open fails, naming the
// pool's socket; the same file closing its pool passes.
import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const fixture = fileURLToPath(new URL('./fixtures/leaky-pool.ts', import.meta.url))

async function run (env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [fixture], { env: { ...process.env, ...env, TAP_TIMEOUT: '20' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr }
}

t.test('a file that leaves a pg Pool open fails, naming the socket', async (t) => {
  const leaky = await run({ CLOSE_POOL: '0' })
  t.match(leaky.stdout, /ok 1 - opens a pool/, 'its test itself passed')
  t.not(leaky.code, 0, 'the file fails')
  t.match(leaky.stderr, /leak check: the test file left 1 open after its teardown:\n {2}- a socket to [\d.:a-f]+:\d+ \(from port \d+\)/, 'naming the pool\'s connection')
})

t.test('the same file closing its pool passes', async (t) => {
  const clean = await run({ CLOSE_POOL: '1' })
  t.equal(clean.code, 0, clean.stderr)
  t.notMatch(clean.stderr, /leak check/)
})
