// What a scenario reports, and the table `pnpm bench` prints from it.

export interface Row {
  /** What is measured, e.g. "stored msg/s". */
  metric: string
  value: number
  unit?: string
  /** The baseline figure this one is compared with, measured in the same run. */
  baseline?: number
  baselineName?: string
  /** value / baseline (or baseline / value when lowerIsBetter). */
  ratio?: number
  /** The target, e.g. ">= 1.0x" or "<= 15 ms". */
  target?: string
  met?: boolean
}

export interface ScenarioResult {
  name: string
  rows: Row[]
  /** Everything measured, for the JSON file. */
  details: Record<string, unknown>
  /** Lost, duplicated or out-of-order messages, errors: a scenario with problems fails. */
  problems: string[]
}

export function ratioRow (metric: string, value: number, baseline: number, baselineName: string, unit: string, target?: { min: number }): Row {
  const ratio = baseline > 0 ? value / baseline : Number.NaN
  return {
    metric,
    value,
    unit,
    baseline,
    baselineName,
    ratio,
    ...(target === undefined ? {} : { target: `>= ${target.min}x`, met: ratio >= target.min })
  }
}

function format (value: number | undefined, unit = ''): string {
  if (value === undefined || Number.isNaN(value)) return '-'
  const text = Math.abs(value) >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(Math.abs(value) >= 10 ? 1 : 2)
  return unit === '' ? text : `${text} ${unit}`
}

export function renderTable (results: ScenarioResult[]): string {
  const header = ['scenario', 'metric', 'chatty', 'baseline', 'ratio', 'target', '']
  const lines: string[][] = [header]
  for (const result of results) {
    for (const row of result.rows) {
      lines.push([
        result.name,
        row.metric,
        format(row.value, row.unit),
        row.baseline === undefined ? '' : `${format(row.baseline, row.unit)} (${row.baselineName})`,
        row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}x`,
        row.target ?? '',
        row.met === undefined ? '' : row.met ? 'met' : 'NOT MET'
      ])
    }
    if (result.problems.length > 0) lines.push([result.name, `FAILED: ${result.problems.join('; ')}`, '', '', '', '', ''])
  }
  const widths = header.map((_, i) => Math.max(...lines.map((line) => line[i]!.length)))
  const render = (line: string[]) => `| ${line.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`
  return [render(lines[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.slice(1).map(render)].join('\n')
}
