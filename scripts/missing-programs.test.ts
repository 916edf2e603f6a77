// `pnpm test` on a machine without nginx, chromium and redis-server: the tests that need them
// are skipped, each with a line naming the program and how to install it, and counted in the
// summary; under CI (CI=true) the same tests fail instead. The suite is run here as a child
// process with those programs hidden from PATH.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { REPO_ROOT } from '@chatty/db'
import { onTeardown } from '@chatty/db/testing'

const HIDDEN = ['nginx', 'chromium', 'redis-server']
const FILES = ['services/api/test/load-balancer.test.ts', 'services/jobs/test/admin-dashboard.test.ts', 'services/api/test/fault-redis.test.ts']

/**
 * PATH without the hidden programs: a folder that holds one of them is replaced by a folder of
 * links to everything else in it; the other folders stay as they are.
 */
async function pathWithout (t: Parameters<typeof onTeardown>[0], hidden: string[]): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'chatty-path-'))
  onTeardown(t, () => rm(root, { recursive: true, force: true }))
  const folders = [`${REPO_ROOT}node_modules/.bin`, ...(process.env.PATH ?? '').split(delimiter)]
  const path: string[] = []
  for (const [index, folder] of folders.entries()) {
    const names = await readdir(folder).catch(() => [])
    if (!names.some((name) => hidden.includes(name))) {
      path.push(folder)
      continue
    }
    const shadow = join(root, String(index))
    await mkdir(shadow)
    for (const name of names) if (!hidden.includes(name)) await symlink(join(folder, name), join(shadow, name))
    path.push(shadow)
  }
  return path.join(delimiter)
}

/** `pnpm test <files>` as a child (its own tap run, not a subtest of this one). */
function runSuite (files: string[], env: NodeJS.ProcessEnv): Promise<{ code: number, stdout: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TAP') && !name.startsWith('_TAPJS') && name !== 'CI'))
  return new Promise((resolve) => {
    execFile(process.execPath, ['scripts/test.ts', ...files], {
      cwd: REPO_ROOT,
      // The template database this run already uses; the child needs no server of its own.
      env: { ...clean, DB_URL: process.env.TEST_DB_SERVER, ...env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 170_000
    }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout: stdout + stderr }))
  })
}

t.test('without nginx, chromium and redis-server the tests needing them are skipped, each naming the program and its install command', { timeout: 180_000 }, async (t) => {
  const PATH = await pathWithout(t, HIDDEN)
  const { code, stdout } = await runSuite(FILES, { PATH })
  t.equal(code, 0, 'the run passes')
  const summary = /^0 passed, 0 failed, (\d+) skipped$/.exec(stdout.trim().split('\n').at(-1) ?? '')
  t.ok(summary, 'nothing passed or failed: every test was skipped')
  let named = 0
  for (const [program, install] of [['nginx', 'apt-get install -y nginx-light'], ['chromium', 'apt-get install -y chromium'], ['redis-server', 'apt-get install -y redis-server']]) {
    const lines = stdout.split('\n').filter((line) => line.startsWith('  services/') && line.includes(`needs ${program}, which is not on PATH: install it (${install})`))
    t.ok(lines.length >= 1, `a line after the run names ${program} and how to install it`)
    named += lines.length
  }
  t.equal(Number(summary?.[1]), named, 'the summary counts each skipped test, and each has its line')
})

t.test('under CI=true a missing program fails its test instead of skipping it', { timeout: 180_000 }, async (t) => {
  const PATH = await pathWithout(t, HIDDEN)
  // The nginx test starts api processes before it reaches nginx: the two others are enough here.
  const { code, stdout } = await runSuite(FILES.slice(1), { PATH, CI: 'true' })
  t.not(code, 0, 'the run fails')
  t.equal(stdout.trim().split('\n').at(-1), '0 passed, 2 failed, 0 skipped', 'nothing is skipped')
  t.match(stdout, /not ok \d+ - needs chromium, which is not on PATH/)
  t.match(stdout, /not ok \d+ - needs redis-server, which is not on PATH/)
})
