// pnpm loads this file before it does anything else in the project (install, run, test), so an
// unsupported Node is reported here in one line instead of as a failure further on.
const { nodeProblem } = require('./scripts/check-node.cjs')

const problem = nodeProblem(process.version)
if (problem !== undefined) {
  console.error(problem)
  process.exit(1)
}

module.exports = {}
