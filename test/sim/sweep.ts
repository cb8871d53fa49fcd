/**
 * Runs many seeds and, for a failing one, replays it with a trace. Shared by the CLI
 * (`npm run sim`) and the default test suite's fixed slice.
 */
import { runSimulation } from './simulator.js'
import type { SimResult, SimStats } from './simulator.js'
import type { UnsafeRules } from '../../src/raft/index.js'
import type { FaultProfile } from './options.js'

function unsafeFlag(unsafe: UnsafeRules | undefined): string {
  const on = Object.entries(unsafe ?? {}).filter(([, v]) => v === true)
  return on.map(([k]) => ` --unsafe ${k}`).join('')
}

export interface SweepOptions {
  readonly first: number
  readonly count: number
  readonly nodes: 3 | 5
  readonly unsafe?: UnsafeRules
  readonly profile?: FaultProfile
  /** Stop at the first failing seed (the default) or run them all. */
  readonly keepGoing?: boolean
  readonly onSeed?: (result: SimResult) => void
}

export interface SweepResult {
  readonly seeds: number
  readonly failures: SimResult[]
  readonly totals: SimStats
  readonly elapsedMs: number
}

export function sweep(o: SweepOptions): SweepResult {
  const t0 = performance.now()
  const failures: SimResult[] = []
  let totals: SimStats | null = null
  let seeds = 0
  for (let seed = o.first; seed < o.first + o.count; seed++) {
    const r = runSimulation({ seed, nodes: o.nodes, unsafe: o.unsafe, profile: o.profile })
    seeds++
    totals = totals ? addStats(totals, r.stats) : { ...r.stats }
    o.onSeed?.(r)
    if (!r.ok) {
      failures.push(r)
      if (!o.keepGoing) break
    }
  }
  return { seeds, failures, totals: totals!, elapsedMs: performance.now() - t0 }
}

function addStats(a: SimStats, b: SimStats): SimStats {
  const out = { ...a }
  for (const k of Object.keys(b) as (keyof SimStats)[]) {
    out[k] = k === 'maxTerm' ? Math.max(a[k], b[k]) : a[k] + b[k]
  }
  return out
}

/** The failing seed's story: options, violation, and the tail of its replayed trace. */
export function describeFailure(r: SimResult, traceLines: number, unsafe?: UnsafeRules): string {
  const replay = runSimulation({ seed: r.seed, nodes: r.options.nodes, trace: true, unsafe, profile: r.options.profile })
  const v = r.violation!
  const tail = replay.trace.slice(-traceLines)
  return [
    `VIOLATION at seed ${r.seed} (nodes=${r.options.nodes}), time ${v.time}: ${v.message}`,
    `replay: npm run sim -- --seed ${r.seed} --nodes ${r.options.nodes}${r.options.profile === 'churn' ? ' --profile churn' : ''}${unsafeFlag(unsafe)}`,
    `last ${tail.length} of ${replay.trace.length} trace events:`,
    ...tail.map((l) => `  ${l}`),
  ].join('\n')
}
