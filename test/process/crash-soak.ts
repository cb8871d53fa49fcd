/**
 * The broker crash test as a soak: the scenario of crash.test.ts (crash-run.ts) with a
 * chosen seed and as many kill -9 / restart cycles as you like.
 *
 *   npm run soak:crash -- --seed 4711 --cycles 200
 *   npm run soak:crash -- --runs 5 --cycles 40          # five seeds in a row, from a random one
 *
 * Prints one line per cycle and a summary per run; on a failure it prints the seed, what
 * broke, where the data directory and the broker's log were kept, and exits with 1.
 *
 * Imports ./crash-run and node:util.
 */
import { parseArgs } from 'node:util'
import { runCrashScenario } from './crash-run.js'

const usage = `usage: npm run soak:crash -- [--seed N] [--cycles N] [--runs N] [--partitions N] [--keep] [--quiet]
  --seed N        the first run's seed (default: taken from the clock, printed)
  --cycles N      kill -9 / restart cycles per run (default 50)
  --runs N        runs, with seeds N, N+1, ... (default 1)
  --partitions N  partitions of the test topic (default 2)
  --keep          keep each run's data directory and broker log, even when it passes
  --quiet         no line per cycle`

function intArg(name: string, v: string | undefined, fallback: number, min: number): number {
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}\n${usage}`)
    process.exit(2)
  }
  return n
}

let parsed
try {
  parsed = parseArgs({
    options: {
      seed: { type: 'string' },
      cycles: { type: 'string' },
      runs: { type: 'string' },
      partitions: { type: 'string' },
      keep: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  })
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\n${usage}`)
  process.exit(2)
}
const { values } = parsed
if (values.help) {
  console.log(usage)
  process.exit(0)
}
const firstSeed = intArg('seed', values.seed, Date.now() % 1_000_000_007, 0)
const cycles = intArg('cycles', values.cycles, 50, 1)
const runs = intArg('runs', values.runs, 1, 1)
const partitions = intArg('partitions', values.partitions, 2, 1)

const t0 = performance.now()
for (let i = 0; i < runs; i++) {
  const seed = firstSeed + i
  console.log(`run ${i + 1}/${runs}: seed ${seed}, ${cycles} cycles, ${partitions} partitions`)
  try {
    const r = await runCrashScenario({ seed, cycles, partitions, keep: values.keep, progress: values.quiet ? undefined : (l) => console.log(`  ${l}`) })
    const failed = Object.entries(r.failed).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'
    console.log(
      [
        `  passed in ${(r.durationMs / 1000).toFixed(1)} s: ${r.sent} sent, ${r.acked.idempotent} + ${r.acked.plain} acknowledged (idempotent + plain), ${r.messagesInLog} in the log`,
        `  ${r.idempotentAcrossCrash} idempotent messages acknowledged across a crash, ${r.duplicateAcks} answered as duplicates, ${r.storedUnacked} stored without an acknowledgement`,
        `  failed (not acknowledged): ${failed}; restarts killed before they were ready: ${r.midStartKills}`,
        `  broker start, ms: median ${median(r.startMs)}, max ${Math.max(...r.startMs)}; read-back after restart, ms: max ${r.readBackMsMax} (trailing first reads: ${r.trailingReads})${values.keep ? `; kept ${r.workDir}` : ''}`,
      ].join('\n'),
    )
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err))
    console.error(`FAILED: seed ${seed} (replay: npm run soak:crash -- --seed ${seed} --cycles ${cycles} --partitions ${partitions})`)
    process.exit(1)
  }
}
console.log(`${runs} run${runs === 1 ? '' : 's'} passed in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
// a producer's retry timer must not keep the process alive
process.exit(0)

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? 0
}
