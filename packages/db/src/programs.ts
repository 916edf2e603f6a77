// Programs from the system that some tests drive (nginx, chromium, redis-server). On a machine
// without one, those tests are skipped with a line naming the program and how to install it;
// under CI (CI=true) they run and fail instead, so CI never skips silently. Programs are found
// on PATH, so hiding one is a matter of PATH.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** What each program is installed with on Debian, the system the suite is run on. */
export const PROGRAMS = {
  nginx: 'apt-get install -y nginx-light',
  chromium: 'apt-get install -y chromium',
  'redis-server': 'apt-get install -y redis-server'
} as const

export type Program = keyof typeof PROGRAMS

/** The program's path on PATH, or undefined. */
export function findProgram (name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const path = join(dir, name)
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {}
  }
  return undefined
}

/** The line that names a missing program and how to install it. */
export function missingProgramLine (name: Program): string {
  return `needs ${name}, which is not on PATH: install it (${PROGRAMS[name]}) or add its folder to PATH`
}

export function runningInCi (env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0'
}

/**
 * tap's `skip` option for a test that needs these programs: false when all are on PATH (or under
 * CI, where the test then fails at `programPath`), else the line naming the first missing one.
 */
export function skipUnlessInstalled (names: Program[], env: NodeJS.ProcessEnv = process.env): false | string {
  if (runningInCi(env)) return false
  const missing = names.find((name) => findProgram(name, env) === undefined)
  return missing === undefined ? false : missingProgramLine(missing)
}

/** The program's path; throws the line naming it when it is missing (the test then fails). */
export function programPath (name: Program, env: NodeJS.ProcessEnv = process.env): string {
  const path = findProgram(name, env)
  if (path === undefined) throw new Error(missingProgramLine(name))
  return path
}

interface Registers {
  test (name: string, options: { skip: false | string }, fn: () => Promise<void>): unknown
}

/**
 * In place of a test that cannot run here because `program` is missing: a test of the same name,
 * skipped with the line naming the program, or failing with it under CI.
 */
export function testMissingProgram (t: Registers, name: string, program: Program): void {
  t.test(name, { skip: skipUnlessInstalled([program]) }, async () => { programPath(program) })
}
