// `pnpm db:migrate [up | down N | version | force V]` against DB_URL, or the embedded Postgres.
import { parseArgs } from 'node:util'
import { forceVersion, migrateDown, migrateUp, migrationVersion } from './migrator.ts'
import { startEmbeddedPostgres } from './embedded.ts'

const { positionals } = parseArgs({ allowPositionals: true })
const [command = 'up', argument] = positionals

const embedded = process.env.DB_URL ? null : await startEmbeddedPostgres({ log: console.error })
const url = process.env.DB_URL || embedded!.url
const log = (line: string) => console.log(line)

try {
  if (command === 'up') {
    const applied = await migrateUp(url, { log })
    console.log(applied.length === 0 ? 'no change' : `applied ${applied.join(', ')}`)
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
} catch (error) {
  console.error(`migrate: ${(error as Error).message}`)
  process.exitCode = 1
} finally {
  await embedded?.stop()
}
