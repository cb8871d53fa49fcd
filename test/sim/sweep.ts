/**
 * Runs many seeds and, for a failing one, replays it with a trace. Shared by the CLI
 * (`npm run sim`) and the default test suite's fixed slice.
 */
import { runSimulation } from './simulator.js'
import type { SimConfig, SimResult, SimStats } from './simulator.js'
import type { UnsafeRules } from '../../src/raft/index.js'
import type { FaultProfile, StorageMode } from './options.js'

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
  /** Force the storage host (default: drawn per seed). */
  readonly storage?: StorageMode
  /** Force quiescence on or off (default: drawn per seed). */
  readonly quiesce?: boolean
  /** Test-only WAL damage (SimConfig.walFaults). */
  readonly walFaults?: SimConfig['walFaults']
  /** Test-only wrong rules of the partition mode (SimConfig.partitionUnsafe). */
  readonly partitionUnsafe?: SimConfig['partitionUnsafe']
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

export async function sweep(o: SweepOptions): Promise<SweepResult> {
  const t0 = performance.now()
  const failures: SimResult[] = []
  let totals: SimStats | null = null
  let seeds = 0
  for (let seed = o.first; seed < o.first + o.count; seed++) {
    const r = await runSimulation({ seed, nodes: o.nodes, unsafe: o.unsafe, profile: o.profile, storage: o.storage, quiesce: o.quiesce, walFaults: o.walFaults, partitionUnsafe: o.partitionUnsafe })
    // a WAL run leaves MemoryWalFs.runAsync calls waiting for their setImmediate: let them end
    await new Promise<void>((resolve) => setImmediate(resolve))
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

/** What, besides the seed, a replay must be told: flags the sweep forced. */
export interface ReplayFlags {
  readonly unsafe?: UnsafeRules
  readonly storage?: StorageMode
  readonly quiesce?: boolean
  readonly walFaults?: SimConfig['walFaults']
  readonly partitionUnsafe?: SimConfig['partitionUnsafe']
}

function replayFlags(f: ReplayFlags): string {
  let s = unsafeFlag(f.unsafe)
  if (f.storage) s += ` --storage ${f.storage}`
  if (f.quiesce !== undefined) s += ` --quiesce ${f.quiesce ? 'on' : 'off'}`
  if (f.walFaults?.flipNewestCommit) s += ' --flip-newest-commit'
  if (f.walFaults?.forgeEntries) s += ' --forge-entries'
  if (f.partitionUnsafe?.unsyncedCheckpoint) s += ' --unsafe-partition unsyncedCheckpoint'
  if (f.partitionUnsafe?.unsyncedSnapshot) s += ' --unsafe-partition unsyncedSnapshot'
  return s
}

/** The failing seed's story: options, violation, and the tail of its replayed trace. */
export async function describeFailure(r: SimResult, traceLines: number, f: ReplayFlags = {}): Promise<string> {
  const replay = await runSimulation({ seed: r.seed, nodes: r.options.nodes, trace: true, unsafe: f.unsafe, profile: r.options.profile, storage: f.storage, quiesce: f.quiesce, walFaults: f.walFaults, partitionUnsafe: f.partitionUnsafe })
  const v = r.violation!
  const tail = replay.trace.slice(-traceLines)
  return [
    `VIOLATION at seed ${r.seed} (nodes=${r.options.nodes}, storage ${r.options.storage}), time ${v.time}: ${v.message}`,
    `replay: npm run sim -- --seed ${r.seed} --nodes ${r.options.nodes}${r.options.profile === 'churn' ? ' --profile churn' : ''}${replayFlags(f)}`,
    `last ${tail.length} of ${replay.trace.length} trace events:`,
    ...tail.map((l) => `  ${l}`),
  ].join('\n')
}
