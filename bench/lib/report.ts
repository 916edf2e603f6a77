// What a scenario reports, how the runs of one `pnpm bench` are combined (median and range),
// and the table printed from it.

/** The issue's target for a row: on its ratio to the baseline, or on its own value. */
export interface Target {
  on: 'ratio' | 'value'
  op: '>=' | '<='
  limit: number
}

export interface Row {
  /** What is measured, e.g. "stored msg/s"; the same in every run of the scenario. */
  metric: string
  value: number
  unit?: string
  /** The baseline figure this one is compared with, measured in the same run. */
  baseline?: number
  baselineName?: string
  /** value / baseline. */
  ratio?: number
  target?: Target
  /** Over the runs (set by combine): [min, max] of value, baseline and ratio, and how many runs. */
  range?: [number, number]
  baselineRange?: [number, number]
  ratioRange?: [number, number]
  runs?: number
}

export interface ScenarioResult {
  name: string
  rows: Row[]
  /** Everything measured, for the JSON file. */
  details: Record<string, unknown>
  /** Lost, duplicated or out-of-order messages, errors: a scenario with problems fails. */
  problems: string[]
  /** Printed under the table (e.g. a load generator near a full core). */
  notes?: string[]
}

export function ratioRow (metric: string, value: number, baseline: number, baselineName: string, unit: string, target?: Target): Row {
  const ratio = baseline > 0 ? value / baseline : Number.NaN
  return { metric, value, unit, baseline, baselineName, ratio, ...(target === undefined ? {} : { target }) }
}

export const atLeast = (limit: number, on: Target['on'] = 'ratio'): Target => ({ on, op: '>=', limit })
export const atMost = (limit: number, on: Target['on'] = 'ratio'): Target => ({ on, op: '<=', limit })

export function met (row: Row): boolean | undefined {
  if (row.target === undefined) return undefined
  const figure = row.target.on === 'ratio' ? row.ratio : row.value
  if (figure === undefined || Number.isNaN(figure)) return false
  return row.target.op === '>=' ? figure >= row.target.limit : figure <= row.target.limit
}

function median (values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function range (values: number[]): [number, number] {
  const defined = values.filter((v) => !Number.isNaN(v))
  return defined.length === 0 ? [Number.NaN, Number.NaN] : [Math.min(...defined), Math.max(...defined)]
}

/**
 * One scenario's runs as one result: each row's median and range over the runs (the ratio's
 * median is of the per-run ratios, each against the baseline of its own run); a target is judged
 * on the median. Problems and notes of every run are kept, marked with the run.
 */
export function combine (runs: ScenarioResult[]): ScenarioResult {
  const first = runs[0]!
  const rows = first.rows.map((row, i) => {
    const same = runs.map((run) => run.rows[i]).filter((r): r is Row => r !== undefined && r.metric === row.metric)
    const values = same.map((r) => r.value)
    const combined: Row = { ...row, value: median(values), range: range(values), runs: same.length }
    if (row.baseline !== undefined) {
      const baselines = same.map((r) => r.baseline ?? Number.NaN)
      combined.baseline = median(baselines)
      combined.baselineRange = range(baselines)
    }
    if (row.ratio !== undefined) {
      const ratios = same.map((r) => r.ratio ?? Number.NaN)
      combined.ratio = median(ratios)
      combined.ratioRange = range(ratios)
    }
    return combined
  })
  const mark = (run: number, text: string) => runs.length > 1 ? `run ${run + 1}: ${text}` : text
  return {
    name: first.name,
    rows,
    problems: runs.flatMap((run, i) => run.problems.map((p) => mark(i, p))),
    notes: runs.flatMap((run, i) => (run.notes ?? []).map((n) => mark(i, n))),
    details: { runs: runs.map((run) => run.details) }
  }
}

function format (value: number | undefined, unit = ''): string {
  if (value === undefined || Number.isNaN(value)) return '-'
  const text = number(value)
  return unit === '' ? text : `${text} ${unit}`
}

function number (value: number): string {
  return Math.abs(value) >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(Math.abs(value) >= 10 ? 1 : 2)
}

function withRange (text: string, r: [number, number] | undefined, runs: number | undefined, suffix = ''): string {
  if (r === undefined || runs === undefined || runs < 2 || Number.isNaN(r[0])) return text
  return `${text} (${number(r[0])}${suffix}-${number(r[1])}${suffix})`
}

function targetText (target: Target, unit = ''): string {
  const limit = target.limit.toLocaleString('en-US', { minimumFractionDigits: target.on === 'ratio' ? 1 : 0 })
  return target.on === 'ratio' ? `${target.op} ${limit}x` : `${target.op} ${limit}${unit === '' ? '' : ` ${unit}`}`
}

export function renderTable (results: ScenarioResult[]): string {
  const header = ['scenario', 'metric', 'chatty', 'baseline', 'ratio', 'target', '']
  const lines: string[][] = [header]
  for (const result of results) {
    for (const row of result.rows) {
      const ok = met(row)
      lines.push([
        result.name,
        row.metric,
        withRange(format(row.value, row.unit), row.range, row.runs),
        row.baseline === undefined ? '' : `${withRange(format(row.baseline, row.unit), row.baselineRange, row.runs)} (${row.baselineName})`,
        row.ratio === undefined ? '' : withRange(`${row.ratio.toFixed(2)}x`, row.ratioRange?.map((r) => Number(r.toFixed(2))) as [number, number] | undefined, row.runs),
        row.target === undefined ? '' : targetText(row.target, row.unit),
        ok === undefined ? '' : ok ? 'met' : 'NOT MET'
      ])
    }
    if (result.problems.length > 0) lines.push([result.name, `FAILED: ${result.problems.join('; ')}`, '', '', '', '', ''])
  }
  const widths = header.map((_, i) => Math.max(...lines.map((line) => line[i]!.length)))
  const render = (line: string[]) => `| ${line.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`
  const table = [render(lines[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.slice(1).map(render)].join('\n')
  const notes = results.flatMap((r) => (r.notes ?? []).map((n) => `- ${r.name}: ${n}`))
  return notes.length === 0 ? table : `${table}\n\n${notes.join('\n')}`
}
