// An unsupported Node stops `pnpm install` / `pnpm start` / `pnpm test` with one line saying what
// is needed and how to get it: the check itself, then pnpm run under an old Node when this
// machine has one.
import t from 'tap'
import { execFile, execFileSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { createRequire } from 'node:module'
import { delimiter, dirname, join } from 'node:path'
import { REPO_ROOT } from '@chatty/db'
import { findProgram } from '@chatty/db/testing'

const { nodeProblem } = createRequire(import.meta.url)('./check-node.cjs') as { nodeProblem (version: string): string | undefined }

t.test('Node 22.18 and later pass; older versions get one line naming the minimum and how to install it', async (t) => {
  for (const version of ['v22.18.0', 'v22.20.1', 'v23.0.0', 'v24.21.0', 'v26.1.0']) t.equal(nodeProblem(version), undefined, version)
  for (const version of ['v20.20.2', 'v22.17.1', 'v18.19.0', 'v16.0.0']) {
    const problem = nodeProblem(version)
    t.ok(problem !== undefined && !problem.includes('\n'), `${version}: one line`)
    t.match(problem, `chatty needs Node >= 22.18 (24 LTS recommended), this is ${version}`)
    t.match(problem, 'npm install --prefix .tools/node node@24')
  }
})

/** Node binaries on PATH (and the usual system places) older than 22.18. */
function oldNodes (): string[] {
  const candidates = new Set([...(process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '').map((dir) => join(dir, 'node')), '/usr/bin/node', '/usr/local/bin/node'])
  return [...candidates].filter((path) => {
    try {
      accessSync(path, constants.X_OK)
      return nodeProblem(execFileSync(path, ['-p', 'process.version'], { encoding: 'utf8' }).trim()) !== undefined
    } catch {
      return false
    }
  })
}

const old = oldNodes()[0]
const pnpm = findProgram('pnpm')
t.test('under an old Node, `pnpm start`, `pnpm test` and `pnpm install` print the requirement and exit non-zero', {
  skip: old === undefined ? 'no Node older than 22.18 on this machine' : pnpm === undefined ? 'no pnpm on PATH' : false
}, async (t) => {
  // The old Node first on PATH runs pnpm itself (its launcher runs `node`) and the scripts.
  const env = { ...process.env, PATH: `${dirname(old!)}${delimiter}${process.env.PATH ?? ''}` }
  const version = execFileSync(old!, ['-p', 'process.version'], { encoding: 'utf8' }).trim()
  for (const args of [['start'], ['test'], ['install', '--frozen-lockfile', '--offline']]) {
    const { code, output } = await new Promise<{ code: number, output: string }>((resolve) => {
      execFile(pnpm!, args, { cwd: REPO_ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : Number(error.code), output: stdout + stderr })
      })
    })
    t.not(code, 0, `pnpm ${args[0]} exits non-zero`)
    t.same(output.trim().split('\n'), [nodeProblem(version)], `pnpm ${args[0]} prints the one line and nothing else`)
  }
})
