// The migrate command line, `[up | down N | version | force V]`, against DB_URL or the embedded
// Postgres. packages/db's cli.ts runs it as it is; the repository's `pnpm db:migrate`
// (scripts/migrate.ts) adds, after `up`, the schemas that other packages own.
import { forceVersion, migrateDown, migrateUp, migrationVersion } from './migrator.ts'
import { startEmbeddedPostgres } from './embedded.ts'

export interface MigrateCommandOptions {
  /** Runs after a successful `up`, with the database's connection string and the command's log. */
  afterUp?: (url: string, log: (line: string) => void) => Promise<void>
}

/** Runs one migrate command; resolves with the process exit code (an error is printed, not thrown). */
export async function runMigrateCommand (args: string[], options: MigrateCommandOptions = {}): Promise<number> {
  const [command = 'up', argument] = args
  const embedded = process.env.DB_URL ? null : await startEmbeddedPostgres({ log: console.error })
  const url = process.env.DB_URL || embedded!.url
  const log = (line: string) => console.log(line)
  try {
    if (command === 'up') {
      const applied = await migrateUp(url, { log })
      console.log(applied.length === 0 ? 'no change' : `applied ${applied.join(', ')}`)
      await options.afterUp?.(url, log)
    } else if (command === 'down') {
      const steps = argument === undefined ? 1 : Number(argument)
      if (!Number.isInteger(steps) || steps < 1) throw new Error('down takes a positive number of steps')
      const reverted = await migrateDown(url, steps, { log })
      console.log(reverted.length === 0 ? 'no change' : `reverted ${reverted.join(', ')}`)
    } else if (command === 'version') {
      const state = await migrationVersion(url)
      console.log(state.version === null ? 'no version' : `${state.version}${state.dirty ? ' (dirty)' : ''}`)
    } else if (command === 'force') {
      const version = Number(argument)
      if (!Number.isInteger(version)) throw new Error('force takes a version number (-1 for none)')
      await forceVersion(url, version < 0 ? null : version)
      console.log(`forced ${version}`)
    } else {
      throw new Error(`unknown command ${command}: use up, down N, version or force V`)
    }
    return 0
  } catch (error) {
    console.error(`migrate: ${(error as Error).message}`)
    return 1
  } finally {
    await embedded?.stop()
  }
}
