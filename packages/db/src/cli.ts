// `node packages/db/src/cli.ts [up | down N | version | force V]`: the chat schema's migrations
// alone, against DB_URL or the embedded Postgres. `pnpm db:migrate` (scripts/migrate.ts) runs the
// same command and also installs the job queue's schema.
import { parseArgs } from 'node:util'
import { runMigrateCommand } from './migrate-command.ts'

const { positionals } = parseArgs({ allowPositionals: true })
process.exitCode = await runMigrateCommand(positionals)
