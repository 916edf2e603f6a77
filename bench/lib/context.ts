// What every scenario gets from bench/run.ts.
import type { Chatty } from './services.ts'

export interface BenchContext {
  dbUrl: string
  redisUrl?: string
  /** --quick: short measurements, for a smoke run. */
  quick: boolean
  /** Length of one measured run at the maximum rate. */
  durationMs: number
  /** Length of one fixed-rate latency run. */
  latencyMs: number
  /** Where the api and jobs processes' output goes (a file, not the terminal). */
  serviceLog (line: string): void
  /** The api + jobs processes started for the scenarios that share them. */
  chatty: Chatty
  /** Baseline figures measured earlier in the same run, by name. */
  baselines: Record<string, number>
  /** Configuration from --env, for services a scenario starts itself. */
  env: Record<string, string>
  log (line: string): void
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
