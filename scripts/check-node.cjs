// The first thing `pnpm install`, `pnpm start` and `pnpm test` run (through .pnpmfile.cjs and the
// scripts in package.json): on a Node too old to run TypeScript natively, stop with one line
// that says what is needed and how to get it. Plain CommonJS, so it parses on any Node.
'use strict'

const MINIMUM = [22, 18]

/** The one-line complaint about this Node version, or undefined when it is new enough. */
function nodeProblem (version) {
  const [major, minor] = String(version).replace(/^v/, '').split('.').map(Number)
  if (major > MINIMUM[0] || (major === MINIMUM[0] && minor >= MINIMUM[1])) return undefined
  return `chatty needs Node >= ${MINIMUM.join('.')} (24 LTS recommended), this is ${version}: ` +
    'install one (nodejs.org, or `npm install --prefix .tools/node node@24 && export PATH="$PWD/.tools/node/node_modules/node/bin:$PATH"`) and run the command again'
}

module.exports = { nodeProblem }

if (require.main === module) {
  const problem = nodeProblem(process.version)
  if (problem !== undefined) {
    console.error(problem)
    process.exit(1)
  }
}
