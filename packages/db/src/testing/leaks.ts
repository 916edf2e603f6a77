// The leak check: a test file that leaves a TCP socket or server open (a pool, a client, a
// worker's connection, a listening app) fails, naming what is left. It runs once the whole file
// has ended and every teardown has run, with a short grace for sockets still closing.

interface Handle {
  constructor?: { name?: string }
  remoteAddress?: string
  remotePort?: number
  localPort?: number
  destroyed?: boolean
  address?: () => unknown
}

const KINDS = new Set(['TCPSocketWrap', 'TCPServerWrap'])
const GRACE_MS = 2000

/** The open TCP sockets and servers of this process, described; empty when there are none. */
export function openTcpHandles (): string[] {
  if (!process.getActiveResourcesInfo().some((kind) => KINDS.has(kind))) return []
  // getActiveResourcesInfo names only the kinds; the handles say where they lead.
  const handles = (process as unknown as { _getActiveHandles (): Handle[] })._getActiveHandles()
  const described: string[] = []
  for (const handle of handles) {
    const name = handle.constructor?.name
    if (name === 'Socket' && handle.remotePort !== undefined && handle.destroyed !== true) {
      described.push(`a socket to ${handle.remoteAddress ?? '?'}:${handle.remotePort} (from port ${handle.localPort ?? '?'})`)
    } else if (name === 'Server' && typeof handle.address === 'function') {
      const address = handle.address() as { address?: string, port?: number } | string | null
      if (address !== null) described.push(`a server listening on ${typeof address === 'string' ? address : `${address.address}:${address.port}`}`)
    }
  }
  // A kind present without a handle to show (e.g. a socket still connecting).
  if (described.length === 0) for (const kind of process.getActiveResourcesInfo()) if (KINDS.has(kind)) described.push(kind)
  return described
}

async function checkLeaks (): Promise<void> {
  const deadline = Date.now() + GRACE_MS
  let open = openTcpHandles()
  while (open.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    open = openTcpHandles()
  }
  if (open.length === 0) return
  process.exitCode = 1
  process.stderr.write(`leak check: the test file left ${open.length} open after its teardown:\n${open.map((line) => `  - ${line}`).join('\n')}\n`)
  // What is left would hold the process open until the runner's timeout.
  setTimeout(() => process.exit(1), 200).unref()
}

interface Node { parent?: unknown, teardown (fn: () => unknown): void }
let registered = false

/**
 * Arms the leak check for this file from any of its tests: on the root test's teardown, after
 * the file's other teardowns had their turn.
 */
export function armLeakCheck (t: Node): void {
  if (registered || process.env.CHATTY_LEAK_CHECK === '0') return
  let root = t
  while (root.parent !== undefined && root.parent !== null) root = root.parent as Node
  registered = true
  // Not awaited: teardowns run in turn, and the file's own may come after this one.
  root.teardown(() => { setImmediate(() => { void checkLeaks() }) })
}
