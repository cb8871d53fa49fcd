/**
 * `npm run sim`: the long simulation sweep, and the replay of one seed.
 *
 *   npm run sim -- --seeds 20000 --nodes 5          sweep seeds 1..20000
 *   npm run sim -- --seed 4711 --nodes 3            replay one seed with its full trace
 *   npm run sim -- --seeds 500 --unsafe voteWithoutLogCheck --keep-going
 *
 * On a violation it prints the seed, the options drawn from it, the violation and the
 * tail of the replayed event trace, writes the whole trace to .sim-traces/, and exits 1.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import cliProgress from 'cli-progress'
import Table from 'cli-table3'
import { STORAGE_MODES, formatOptions } from './options.js'
import type { StorageMode } from './options.js'
import { runSimulation } from './simulator.js'
import type { SimStats } from './simulator.js'
import { describeFailure, sweep } from './sweep.js'
import type { UnsafeRules } from '../../src/raft/index.js'

const HELP = `usage: npm run sim -- [options]

Runs the deterministic Raft cluster simulator. Every seed decides a whole history of
message delay, loss, duplication, partitions, crashes, restarts, snapshots, membership
changes and leadership transfers; a failing seed replays exactly. Half the mixed seeds
and every churn seed also live in the harsher world (the 'harsh:' line of the options):
messages held back terms long, partitions that deliver what they held after the heal,
slow disks, leaders whose write stalls while their network drops, paused processes,
back-to-back membership changes and transfers, splits while a change is in flight, and
crashes right after a durable write.

options:
  --seeds N         how many seeds to sweep (default 1000)
  --first S         first seed of the sweep (default 1)
  --nodes 3|5       voters in the initial configuration (default 3; one spare node joins later)
  --seed S          replay seed S alone and print its full event trace
  --profile P       fault profile: mixed (default; one seed in eight is churn) or churn
  --storage S       storage host: memory, wal, worker (the WAL under the production
                    WorkerLoop) or partition (a PartitionReplica per node: the partition
                    service over the worker loop, WAL and an in-memory store) (default:
                    drawn per seed: a quarter each wal and worker, 3/8 memory, 1/8 partition)
  --quiesce on|off  idle groups go quiet, woken by a simulated failure detector (default:
                    drawn per seed, half of them)
  --unsafe-partition unsyncedCheckpoint|unsyncedSnapshot  partition mode: checkpoints (what
                    WAL retirement trusts) do not sync the store, or a received snapshot is
                    installed before the store holds it synced (test-only: the checker must
                    catch either)
  --flip-newest-commit  bit flips hit the newest acknowledged WAL commit three times as
                    often (recovery must refuse them: see wal-disk.test.ts)
  --forge-entries   every restart changes a WAL entry and fixes its checksum (test-only:
                    the checker must catch it)
  --unsafe RULE     switch on a deliberately wrong rule in the core (the sweep should then
                    fail): commitPriorTermByCounting, voteWithoutLogCheck, ackBeforePersist,
                    acceptStaleAppend, stableByIndexOnly or confChangeWhilePending
  --keep-going      do not stop at the first failing seed
  --trace-lines N   trace lines to print for a failure (default 80)
  -h, --help        this text`

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '1000' },
      first: { type: 'string', default: '1' },
      nodes: { type: 'string', default: '3' },
      seed: { type: 'string' },
      unsafe: { type: 'string' },
      'unsafe-partition': { type: 'string' },
      profile: { type: 'string', default: 'mixed' },
      storage: { type: 'string' },
      quiesce: { type: 'string' },
      'flip-newest-commit': { type: 'boolean', default: false },
      'forge-entries': { type: 'boolean', default: false },
      'keep-going': { type: 'boolean', default: false },
      'trace-lines': { type: 'string', default: '80' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  })
  if (values.help) {
    console.log(HELP)
    return 0
  }
  const nodes = Number(values.nodes)
  if (nodes !== 3 && nodes !== 5) return usage(`--nodes must be 3 or 5, got ${values.nodes}`)
  const unsafeRules = ['commitPriorTermByCounting', 'voteWithoutLogCheck', 'ackBeforePersist', 'acceptStaleAppend', 'stableByIndexOnly', 'confChangeWhilePending']
  if (values.unsafe !== undefined && !unsafeRules.includes(values.unsafe)) {
    return usage(`--unsafe must be one of ${unsafeRules.join(', ')}`)
  }
  const profile = values.profile
  if (profile !== 'mixed' && profile !== 'churn') return usage(`--profile must be mixed or churn, got ${profile}`)
  const unsafe: UnsafeRules | undefined = values.unsafe ? { [values.unsafe]: true } : undefined
  const storageFlag = values.storage
  if (storageFlag !== undefined && !STORAGE_MODES.includes(storageFlag as StorageMode)) return usage(`--storage must be ${STORAGE_MODES.join(', ')}, got ${storageFlag}`)
  const storage = storageFlag as StorageMode | undefined
  const walFaults = values['flip-newest-commit'] || values['forge-entries'] ? { flipNewestCommit: values['flip-newest-commit'], forgeEntries: values['forge-entries'] } : undefined
  const unsafePartition = values['unsafe-partition']
  if (unsafePartition !== undefined && unsafePartition !== 'unsyncedCheckpoint' && unsafePartition !== 'unsyncedSnapshot') return usage('--unsafe-partition must be unsyncedCheckpoint or unsyncedSnapshot')
  const partitionUnsafe = unsafePartition ? { [unsafePartition]: true } : undefined
  const quiesceFlag = values.quiesce
  if (quiesceFlag !== undefined && quiesceFlag !== 'on' && quiesceFlag !== 'off') return usage(`--quiesce must be on or off, got ${quiesceFlag}`)
  const quiesce = quiesceFlag === undefined ? undefined : quiesceFlag === 'on'
  const flags = { unsafe, storage, quiesce, walFaults, partitionUnsafe }

  if (values.seed !== undefined) {
    const seed = positiveInt(values.seed, '--seed')
    if (seed === null) return 2
    const r = await runSimulation({ seed, nodes, trace: true, profile, ...flags })
    console.log(formatOptions(r.options))
    for (const line of r.trace) console.log(line)
    console.log(r.ok ? `seed ${seed}: ok` : `seed ${seed}: VIOLATION ${r.violation!.message}`)
    printStats([[`seed ${seed}`, r.stats]])
    return r.ok ? 0 : 1
  }

  const count = positiveInt(values.seeds, '--seeds')
  const first = positiveInt(values.first, '--first')
  const traceLines = positiveInt(values['trace-lines'], '--trace-lines')
  if (count === null || first === null || traceLines === null) return 2
  console.log(`sweeping seeds ${first}..${first + count - 1} with ${nodes} voters, profile ${profile}, storage ${storage ?? 'drawn per seed'}${values.unsafe ? `, unsafe rule ${values.unsafe}` : ''}`)
  const bar = new cliProgress.SingleBar(
    { format: '{bar} {value}/{total} seeds | {failures} failing | {duration_formatted} elapsed, eta {eta_formatted}', noTTYOutput: true, notTTYSchedule: 10_000 },
    cliProgress.Presets.shades_classic,
  )
  bar.start(count, 0, { failures: 0 })
  let failing = 0
  const res = await sweep({
    first,
    count,
    nodes,
    profile,
    ...flags,
    keepGoing: values['keep-going'],
    onSeed: (r) => {
      if (!r.ok) failing++
      bar.increment(1, { failures: failing })
    },
  })
  bar.stop()
  printStats([[`${res.seeds} seeds`, res.totals]])
  console.log(`${res.seeds} seeds in ${(res.elapsedMs / 1000).toFixed(1)} s (${(res.elapsedMs / res.seeds).toFixed(1)} ms/seed), ${res.failures.length} failing`)
  if (res.failures.length === 0) return 0
  mkdirSync('.sim-traces', { recursive: true })
  for (const f of res.failures.slice(0, 5)) {
    console.log('')
    console.log(formatOptions(f.options))
    console.log(await describeFailure(f, traceLines, flags))
    const full = await runSimulation({ seed: f.seed, nodes, trace: true, profile, ...flags })
    const path = `.sim-traces/seed-${f.seed}-n${nodes}.txt`
    writeFileSync(path, [formatOptions(f.options), ...full.trace].join('\n') + '\n')
    console.log(`full trace: ${path}`)
  }
  if (res.failures.length > 5) console.log(`(${res.failures.length - 5} more failing seeds: ${res.failures.slice(5).map((f) => f.seed).join(', ')})`)
  return 1
}

function printStats(rows: [string, SimStats][]): void {
  const keys = Object.keys(rows[0]![1]) as (keyof SimStats)[]
  const table = new Table({ head: ['', ...rows.map((r) => r[0])], style: { head: [], compact: true } })
  for (const k of keys) table.push([k, ...rows.map((r) => r[1][k].toLocaleString('en-US'))])
  console.log(table.toString())
}

function positiveInt(s: string | undefined, name: string): number | null {
  const n = Number(s)
  if (!Number.isSafeInteger(n) || n < 1) {
    usage(`${name} must be a positive integer, got ${s}`)
    return null
  }
  return n
}

function usage(msg: string): number {
  console.error(`sim: ${msg}\n\n${HELP}`)
  return 2
}

void main().then((code) => {
  process.exitCode = code
})
