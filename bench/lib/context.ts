// What every scenario gets from bench/run.ts.
import type { Chatty } from './services.ts'

export interface BenchContext {
  dbUrl: string
  redisUrl?: string
  /** --quick: short measurements, for a smoke run. */
  quick: boolean
  /** Length of one measured run. */
  durationMs: number
  /** The api + jobs processes started for the scenarios that share them. */
  chatty: Chatty
  /** Baseline figures measured earlier in the same run, by name. */
  baselines: Record<string, number>
  /** Configuration from --env, for services a scenario starts itself. */
  env: Record<string, string>
  log (line: string): void
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
