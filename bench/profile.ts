// Summarises a V8 CPU profile (.cpuprofile, as written by BENCH_CPU_PROF=1) into where the time
// went: idle, GC, the top functions by self time, the repository's own functions by inclusive
// time (what they and everything they call cost), and self time per file or package.
//
//   node bench/profile.ts bench/results/profiles/CPU.*.cpuprofile [--top 25] [--match services/api]
//
// Percentages are of all samples (idle included) and of busy samples (idle excluded).
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'

interface Node {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface Profile { nodes: Node[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '25' },
    match: { type: 'string', multiple: true, default: [] },
    // Seconds from the profile's start: only samples in [from, to) are counted (e.g. the load).
    window: { type: 'string' },
    // Who calls these functions (by name): the callers' stacks, aggregated.
    callers: { type: 'string', multiple: true, default: [] }
  }
})
const top = Number(args.top)
const [windowFrom, windowTo] = (args.window ?? '0,1e9').split(',').map(Number) as [number, number]

function where (url: string): string {
  if (url === '') return ''
  const path = url.replace(/^file:\/\//, '')
  const modules = path.lastIndexOf('/node_modules/')
  if (modules !== -1) {
    const rest = path.slice(modules + 14).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  const repo = /\/((?:services|packages|bench|scripts)\/.*)$/.exec(path)
  if (repo !== null) return repo[1]!
  return path.startsWith('node:') ? path : path.split('/').slice(-2).join('/')
}

const label = (node: Node) => {
  const { functionName, url, lineNumber } = node.callFrame
  const file = where(url)
  return `${functionName === '' ? '(anonymous)' : functionName}${file === '' ? '' : ` ${file}:${lineNumber + 1}`}`
}

for (const file of positionals) {
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const selfUs = new Map<number, number>()
  // Busy share per second, to find the window the load ran in.
  const timeline: Array<{ busy: number, all: number }> = []
  let t = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    const delta = profile.timeDeltas[i] ?? 0
    t += delta
    const second = Math.floor(t / 1e6)
    timeline[second] ??= { busy: 0, all: 0 }
    timeline[second].all += delta
    if (byId.get(id)!.callFrame.functionName !== '(idle)') timeline[second].busy += delta
    if (t < windowFrom * 1e6 || t >= windowTo * 1e6) continue
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta)
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const idle = [...selfUs].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0)
  const busy = total - idle
  const pct = (us: number) => `${(100 * us / total).toFixed(1).padStart(5)}% ${(100 * us / busy).toFixed(1).padStart(5)}%b`

  // Self time by label; inclusive time by label (each sample counted once per label on its stack).
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const perFile = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!
    self.set(label(node), (self.get(label(node)) ?? 0) + us)
    const file = where(node.callFrame.url) || node.callFrame.functionName
    perFile.set(file, (perFile.get(file) ?? 0) + us)
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const l = label(byId.get(at)!)
      if (seen.has(l)) continue
      seen.add(l)
      inclusive.set(l, (inclusive.get(l) ?? 0) + us)
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1])
  console.log(`\n${file}: ${(total / 1e6).toFixed(1)} s sampled, idle ${(100 * idle / total).toFixed(1)}%, busy ${(busy / 1e6).toFixed(1)} s (%b: share of busy time)`)
  console.log(`  busy % per second: ${[...timeline].map((s) => s === undefined ? '-' : Math.round(100 * s.busy / Math.max(1, s.all))).join(' ')}`)
  if (args.window !== undefined) console.log(`  counted: seconds ${windowFrom} to ${windowTo}`)
  console.log('\n  self time, top functions:')
  for (const [l, us] of sorted(self).slice(0, top)) console.log(`  ${pct(us)}  ${l}`)
  console.log('\n  self time by file or package:')
  for (const [l, us] of sorted(perFile).slice(0, top)) console.log(`  ${pct(us)}  ${l}`)
  const matches = args.match.length > 0 ? args.match : ['services/', 'packages/']
  console.log(`\n  inclusive time, functions in ${matches.join(', ')}:`)
  for (const [l, us] of sorted(inclusive).filter(([l]) => matches.some((m) => l.includes(m))).slice(0, top)) console.log(`  ${pct(us)}  ${l}`)
  for (const name of args.callers) {
    const stacks = new Map<string, number>()
    for (const [id, us] of selfUs) {
      if (byId.get(id)!.callFrame.functionName !== name) continue
      const chain: string[] = []
      for (let at = parent.get(id); at !== undefined && chain.length < Number(process.env.PROFILE_DEPTH ?? 6); at = parent.get(at)) chain.push(label(byId.get(at)!))
      const key = chain.join(' < ')
      stacks.set(key, (stacks.get(key) ?? 0) + us)
    }
    console.log(`\n  callers of ${name}:`)
    for (const [key, us] of sorted(stacks).slice(0, 8)) console.log(`  ${pct(us)}  ${key}`)
  }
}
