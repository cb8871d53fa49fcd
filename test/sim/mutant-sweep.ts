/**
 * The long sweep against surviving mutants (`npm run mutate:sweep`, after `npm run
 * mutate`): the mutation run's slice is small (the instrumented core is slow), so a
 * mutant it lets through is tried here against `npm run sim` itself, one mutant at a
 * time, in a copy of the tree with that one change applied (to the file as the run
 * mutated it, so a report of an older tree stays usable). It stops at the first
 * violating seed and records it: "killed by the long sweep at seed S" is replayable with
 * the mutant applied by hand. Results go to test/sim/mutant-sweeps.json, merged with what
 * was there, so a long run can be stopped and resumed (`--redo` runs a mutant again).
 *
 *   npx tsx test/sim/mutant-sweep.ts --class safety --seeds 20000
 *   npx tsx test/sim/mutant-sweep.ts --ids 12,40 --seeds 2000
 *
 * Reads Stryker's JSON report and the classes through mutation-report.ts.
 */
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { SWEEPS_PATH, applyMutant, loadSurvivors, loadSweeps } from './mutation-report.js'
import type { SweepOutcome, Survivor } from './mutation-report.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** A sweep of one profile that runs longer than this hangs (a mutant looping forever): killed, as Stryker's timeouts are. */
const HANG_MS = 15 * 60_000

/** The profiles the sweep runs, cheapest first; each stops at its first violating seed. */
const CELLS: readonly { readonly nodes: 3 | 5; readonly profile: 'mixed' | 'churn' }[] = [
  { nodes: 3, profile: 'churn' },
  { nodes: 3, profile: 'mixed' },
  { nodes: 5, profile: 'mixed' },
  { nodes: 5, profile: 'churn' },
]

/** A copy of what the simulator needs (node_modules linked), to apply one mutant at a time. */
function makeCopy(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  for (const p of ['src', 'test', 'package.json', 'tsconfig.json', 'tsconfig.test.json', 'vitest.config.ts']) cpSync(join(ROOT, p), join(dir, p), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
}

function sweepOne(dir: string, s: Survivor, seeds: number): SweepOutcome {
  const t0 = performance.now()
  const file = join(dir, s.file)
  const original = readFileSync(join(ROOT, s.file), 'utf8')
  writeFileSync(file, applyMutant(s))
  try {
    // the unit tests first: quick, and they name the rule
    const unit = spawnSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', 'test/raft', '--bail', '1'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000 })
    if (unit.status !== 0) {
      const failed = /FAIL\s+(\S+ > .*)/.exec((unit.stdout + unit.stderr).replace(/\x1b\[[0-9;]*m/g, ''))
      return outcome(s, seeds, { by: 'unit test', nodes: 0, profile: '', seed: 0, violation: (failed?.[1] ?? `exit ${unit.status}`).slice(0, 200) }, t0)
    }
    for (const c of CELLS) {
      const args = ['--import', 'tsx', 'test/sim/cli.ts', '--seeds', String(seeds), '--nodes', String(c.nodes), '--profile', c.profile, '--trace-lines', '1']
      const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20, timeout: HANG_MS })
      const hit = /VIOLATION at seed (\d+)[^:]*: (.*)/.exec(r.stdout)
      if (hit) return outcome(s, seeds, { by: 'sweep', nodes: c.nodes, profile: c.profile, seed: Number(hit[1]), violation: hit[2]!.slice(0, 200) }, t0)
      if (r.status === 2) throw new Error(`npm run sim refused its arguments: ${r.stderr.split('\n')[0]}`)
      // a mutant that breaks the simulator's own run (a crash or a hang, not a violation) is killed too
      if (r.status !== 0) {
        const why = r.error ? `no end within ${HANG_MS / 1000} s (${r.error.message})` : `exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' ')}`
        return outcome(s, seeds, { by: 'sweep', nodes: c.nodes, profile: c.profile, seed: 0, violation: why.slice(0, 200) }, t0)
      }
    }
    return outcome(s, seeds, null, t0)
  } finally {
    writeFileSync(file, original)
  }
}

function outcome(s: Survivor, seeds: number, killedBy: SweepOutcome['killedBy'], t0: number): SweepOutcome {
  return { key: s.key, where: `${s.file}:${s.line}`, mutator: s.mutant.mutatorName, replacement: s.mutant.replacement ?? '', seedsPerProfile: seeds, killedBy, seconds: Math.round((performance.now() - t0) / 1000) }
}

function main(): number {
  const { values } = parseArgs({
    options: {
      report: { type: 'string' },
      class: { type: 'string' },
      ids: { type: 'string' },
      seeds: { type: 'string', default: '2000' },
      redo: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log('usage: npx tsx test/sim/mutant-sweep.ts [--class safety|liveness|equivalent|UNCLASSIFIED] [--ids 1,2] [--seeds N] [--report PATH] [--redo]')
    return 0
  }
  const seeds = Number(values.seeds)
  if (!Number.isSafeInteger(seeds) || seeds < 1) {
    console.error(`mutant-sweep: --seeds must be a positive integer, got ${values.seeds}`)
    return 2
  }
  const ids = values.ids?.split(',')
  const chosen = loadSurvivors(values.report).filter((s) => (ids ? ids.includes(s.mutant.id) : true) && (values.class ? (s.class?.class ?? 'UNCLASSIFIED') === values.class : true))
  const done = loadSweeps()
  const todo = chosen.filter((s) => values.redo || done[s.key]?.seedsPerProfile !== seeds)
  console.log(`${chosen.length} survivors chosen, ${todo.length} to sweep with ${seeds} seeds per profile (${CELLS.map((c) => `${c.nodes} ${c.profile}`).join(', ')})`)
  const dir = join(ROOT, '.stryker-tmp', 'mutant-sweep')
  makeCopy(dir)
  for (const [k, s] of todo.entries()) {
    const r = sweepOne(dir, s, seeds)
    done[s.key] = r
    writeFileSync(SWEEPS_PATH, JSON.stringify(done, null, 1) + '\n')
    const by = r.killedBy
    const verdict = !by ? 'SURVIVED' : by.by === 'unit test' ? `killed by a unit test: ${by.violation.slice(0, 90)}` : `killed by the sweep: ${by.nodes} voters ${by.profile} seed ${by.seed}: ${by.violation.slice(0, 90)}`
    console.log(`[${k + 1}/${todo.length}] #${s.mutant.id} ${relative(ROOT, join(ROOT, s.file))}:${s.line} ${s.mutant.mutatorName} -> ${verdict} (${r.seconds} s)`)
  }
  rmSync(dir, { recursive: true, force: true })
  return 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main()
