/**
 * The cluster fault scenario run long (cluster-run.ts): three node processes behind fault
 * proxies, producers all the time, faults of every kind for as long as you like.
 *
 *   npm run chaos -- --minutes 10 --seed 4711
 *   npm run chaos -- --faults leader-kill,pause,isolate-drop --seed 7   # a fixed list
 *
 * Without --seed it takes one from the clock and prints it. Prints a line per fault, then
 * the summary table; exits 1 on any anomaly, keeping the work directory (data and node logs).
 *
 * Imports ./cluster-run and commander.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { FAULT_KINDS, formatClusterReport, runClusterScenario } from './cluster-run.js'
import type { FaultKind } from './cluster-run.js'

const int = (min: number) => (v: string): number => {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`an integer >= ${min}`)
  return n
}
const faultList = (v: string): FaultKind[] => {
  const kinds = v.split(',').map((s) => s.trim())
  for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new InvalidArgumentError(`unknown fault ${k} (kinds: ${FAULT_KINDS.join(', ')})`)
  return kinds as FaultKind[]
}

const program = new Command('chaos')
  .description('the cluster fault scenario: a 3-node cluster behind fault proxies, producing while faults are injected; checks for lost, duplicated and misplaced messages and diverging replicas')
  .addOption(new Option('--minutes <m>', 'inject faults for this long').default(5).argParser((v) => {
    const n = Number(v)
    if (!(n > 0)) throw new InvalidArgumentError('a positive number')
    return n
  }))
  .addOption(new Option('--seed <n>', 'the seed (default: from the clock, printed)').argParser(int(0)))
  .addOption(new Option('--faults <list>', `exactly these faults in order instead of --minutes (${FAULT_KINDS.join(', ')})`).argParser(faultList))
  .addOption(new Option('--partitions <n>', 'partitions of the test topic').default(3).argParser(int(1)))
  .addOption(new Option('--fault-ms-max <ms>', 'cap every fault\'s random duration').argParser(int(1)))
  .option('--keep', 'keep the work directory even when the run passes', false)
  .option('--quiet', 'no line per fault', false)
  .parse()

const o = program.opts<{ minutes: number; seed?: number; faults?: FaultKind[]; partitions: number; faultMsMax?: number; keep: boolean; quiet: boolean }>()
const seed = o.seed ?? Date.now() % 1_000_000_007
console.log(`chaos: seed ${seed}, ${o.faults ? `faults ${o.faults.join(',')}` : `${o.minutes} minutes`}, ${o.partitions} partitions`)
const report = await runClusterScenario({
  seed,
  durationMs: o.minutes * 60_000,
  faults: o.faults,
  partitions: o.partitions,
  faultMsMax: o.faultMsMax,
  keep: o.keep,
  progress: o.quiet ? undefined : (l) => console.log(`  ${l}`),
})
console.log(formatClusterReport(report))
console.log(report.problems.length === 0 ? `PASSED (seed ${seed})` : `FAILED: seed ${seed} (replay: ${report.replay})`)
// a producer's retry timer must not keep the process alive
process.exit(report.problems.length === 0 ? 0 : 1)
