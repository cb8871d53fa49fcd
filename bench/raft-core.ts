/**
 * bench/raft-core.ts — throughput of the pure Raft core (src/raft), in memory, on one thread.
 *
 * What it measures: a 3-node cluster of RaftNodes over MemoryStorage, driven by a lean
 * host loop in this file (no network, no disk, no ticks). Node 1 is elected, then it
 * receives proposals of N entries (~100 bytes of data each). The figure reported is
 * committed entries per second: an entry counts when the leader's host receives it in
 * `committedEntries` (committed on a majority and handed out for applying). After every
 * run the cluster is drained and the bench checks that both followers applied exactly
 * what the leader did (same last index, contiguous indices on every node).
 *
 * Modes:
 *   pipelined  — every round of the host loop makes one propose() call of N entries as
 *                long as that keeps at most --max-uncommitted entries proposed but not yet
 *                committed, so the single-entry and the batch cases both show
 *                steady-state throughput (group commit does the batching).
 *   sequential — propose N entries, run rounds until they are committed, repeat (the
 *                latency-bound case, one proposal in flight); by default for N = 1 only.
 *
 * One round of the host loop: for each node with hasReady(): ready(); persist into its
 * MemoryStorage (applySnapshot, append entries, setHardState); queue `messages` and
 * `messagesAfterPersist`; count/apply committedEntries; advance(). Then every queued
 * message is delivered with step(). Storages are compacted (createSnapshot + compact,
 * with node.confAt(index)) every --compact-every applied entries, so long runs stay
 * bounded in memory.
 *
 * Each configuration runs in a fresh child process (so one configuration's JIT feedback
 * and heap do not skew the next) with a fresh cluster and a warm-up, then --runs timed
 * runs of --seconds each; the table shows median, min, max and spread
 * ((max-min)/median). Results go to the terminal and to bench/results/raft-core.{json,md}.
 * Payloads are preallocated and reused, so the figures are the core's cost plus this
 * lean host loop, not the cost of producing data.
 *
 * Run:
 *   npm run bench:raft
 *   npm run bench:raft -- --runs 7 --seconds 1 --sizes 1,10,100,1000
 *   npm run bench:raft -- --help
 * Profile one configuration (writes a .cpuprofile to /tmp/raft-prof; open it in Chrome DevTools):
 *   node --cpu-prof --cpu-prof-dir=/tmp/raft-prof --import tsx bench/raft-core.ts \
 *     --in-process --sizes 1000 --seq-sizes '' --runs 3 --no-save
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Prng } from '../src/base/index.js'
import { MemoryStorage, RaftNode } from '../src/raft/index.js'
import type { Message, NodeId } from '../src/raft/index.js'

// ---- options ---------------------------------------------------------------------------

const HELP = `Usage: npm run bench:raft -- [options]

Throughput of the Raft core: a 3-node in-memory cluster on one thread, committed
entries per second as seen by the leader's host.

Options:
  --runs N              timed runs per configuration (default 7)
  --seconds S           length of one timed run, in seconds (default 1)
  --warmup S            warm-up per configuration, in seconds (default 1)
  --sizes LIST          entries per proposal, pipelined mode (default 1,10,100,1000)
  --seq-sizes LIST      entries per proposal, sequential mode ("" for none; default 1)
  --entry-bytes B       data bytes per entry (default 100)
  --max-uncommitted N   pipelined: propose only while at most N entries are uncommitted
                        (default 16384, and always at least one proposal)
  --compact-every N     compact the storages every N applied entries (default 10000)
  --in-process          run every configuration in this process (default: each one in
                        a fresh child process, so JIT feedback and heap state of one
                        configuration do not leak into the next; use this to profile)
  --no-save             do not write bench/results/raft-core.{json,md}
  -h, --help            show this help
`

interface Options {
  runs: number
  seconds: number
  warmup: number
  sizes: number[]
  seqSizes: number[]
  entryBytes: number
  maxUncommitted: number
  compactEvery: number
  inProcess: boolean
  save: boolean
  /** Internal: run one configuration ("mode:size") and print its result as JSON. */
  child: string | undefined
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '7' },
      seconds: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '1' },
      sizes: { type: 'string', default: '1,10,100,1000' },
      'seq-sizes': { type: 'string', default: '1' },
      'entry-bytes': { type: 'string', default: '100' },
      'max-uncommitted': { type: 'string', default: '16384' },
      'compact-every': { type: 'string', default: '10000' },
      'in-process': { type: 'boolean', default: false },
      'no-save': { type: 'boolean', default: false },
      child: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) {
    process.stdout.write(HELP)
    process.exit(0)
  }
  const num = (name: string, s: string, min: number, integer: boolean): number => {
    const v = Number(s)
    if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      throw new Error(`--${name}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got "${s}"`)
    }
    return v
  }
  const list = (name: string, s: string): number[] =>
    s.trim() === '' ? [] : s.split(',').map((x) => num(name, x.trim(), 1, true))
  return {
    runs: num('runs', values.runs, 1, true),
    seconds: num('seconds', values.seconds, 0.01, false),
    warmup: num('warmup', values.warmup, 0, false),
    sizes: list('sizes', values.sizes),
    seqSizes: list('seq-sizes', values['seq-sizes']),
    entryBytes: num('entry-bytes', values['entry-bytes'], 0, true),
    maxUncommitted: num('max-uncommitted', values['max-uncommitted'], 1, true),
    compactEvery: num('compact-every', values['compact-every'], 1, true),
    inProcess: values['in-process'],
    save: !values['no-save'],
    child: values.child,
  }
}

// ---- the host --------------------------------------------------------------------------

const IDS: readonly NodeId[] = [1, 2, 3]
const LEADER = 0 // index of node 1
const EMPTY = new Uint8Array(0)

/** A lean synchronous host for a 3-node cluster: node id k lives at index k-1. */
class Host {
  readonly nodes: RaftNode[] = []
  readonly storages: MemoryStorage[] = []
  /** Last index each node's host applied (from committedEntries or a snapshot). */
  readonly applied: number[] = []
  /** Entries the leader's host received in committedEntries, ever. */
  leaderCommitted = 0
  rounds = 0
  readies = 0
  messages = 0
  /** Messages queued in a round, out[0..n): slots are overwritten, never truncated (setting .length is a slow call). */
  #out: Message[] = []
  #lastCompact = 0
  readonly #compactEvery: number

  constructor(compactEvery: number, seed: number) {
    this.#compactEvery = compactEvery
    const prng = new Prng(seed)
    for (const id of IDS) {
      const storage = new MemoryStorage(IDS)
      this.storages.push(storage)
      this.nodes.push(new RaftNode({ id, storage, prng: prng.fork() }))
      this.applied.push(0)
    }
  }

  get leader(): RaftNode {
    return this.nodes[LEADER]!
  }

  /** One round: follow every pending Ready, then deliver every message. Returns whether anything happened. */
  round(): boolean {
    const nodes = this.nodes
    const out = this.#out
    let n = 0
    let moved = false
    for (let k = 0; k < nodes.length; k++) {
      const node = nodes[k]!
      if (!node.hasReady()) continue
      moved = true
      this.readies++
      const rd = node.ready()
      // may be sent at once
      const msgs = rd.messages
      for (let i = 0; i < msgs.length; i++) out[n++] = msgs[i]!
      // persist: snapshot, entries, hard state (one "sync")
      const st = this.storages[k]!
      st.persist(rd)
      if (rd.snapshot) this.applied[k] = rd.snapshot.metadata.index
      // now durable: acknowledgements may go out, committed entries may be applied
      const after = rd.messagesAfterPersist
      for (let i = 0; i < after.length; i++) out[n++] = after[i]!
      const ce = rd.committedEntries
      if (ce.length > 0) {
        const first = ce[0]!.index
        const last = ce[ce.length - 1]!.index
        if (first !== this.applied[k]! + 1 || last - first + 1 !== ce.length) {
          throw new Error(`node ${k + 1}: committed entries ${first}..${last} do not follow applied ${this.applied[k]}`)
        }
        this.applied[k] = last
        if (k === LEADER) this.leaderCommitted += ce.length
      }
      node.advance()
    }
    for (let i = 0; i < n; i++) {
      const m = out[i]!
      nodes[m.to - 1]!.step(m)
    }
    this.messages += n
    this.rounds++
    return moved || n > 0
  }

  /** Rounds until the cluster is quiet. */
  stabilize(roundsMax = 100_000): void {
    for (let i = 0; i < roundsMax; i++) if (!this.round()) return
    throw new Error(`cluster did not stabilize in ${roundsMax} rounds`)
  }

  /** Compacts every storage up to the lowest applied index, every `compactEvery` entries. */
  maybeCompact(): void {
    const a = this.applied
    let lo = a[0]!
    for (let k = 1; k < a.length; k++) if (a[k]! < lo) lo = a[k]!
    if (lo - this.#lastCompact < this.#compactEvery) return
    for (let k = 0; k < this.nodes.length; k++) {
      const st = this.storages[k]!
      if (lo < st.firstIndex()) continue
      st.createSnapshot(lo, this.nodes[k]!.confAt(lo), EMPTY)
      st.compact(lo)
    }
    this.#lastCompact = lo
  }

  /** Drains the cluster and checks every node applied the same log as the leader. */
  check(expectLast: number): void {
    this.stabilize()
    for (let k = 0; k < this.nodes.length; k++) {
      if (this.applied[k] !== expectLast) {
        throw new Error(`node ${k + 1} applied ${this.applied[k]}, expected ${expectLast} (applied: ${this.applied.join(', ')})`)
      }
    }
  }
}

function newCluster(compactEvery: number): Host {
  const host = new Host(compactEvery, 42)
  host.leader.campaign()
  host.stabilize()
  if (!host.leader.isLeader()) throw new Error('node 1 did not become leader')
  return host
}

/** `size` distinct payloads of `bytes` bytes, reused by every proposal (the core never mutates data). */
function payloads(size: number, bytes: number): Uint8Array[] {
  const prng = new Prng(size)
  const out: Uint8Array[] = []
  for (let i = 0; i < size; i++) {
    const d = new Uint8Array(bytes)
    for (let j = 0; j < bytes; j++) d[j] = prng.nextU32() & 0xff
    out.push(d)
  }
  return out
}

// ---- drivers ---------------------------------------------------------------------------

type Mode = 'pipelined' | 'sequential'

interface RunStats {
  entriesPerSec: number
  proposalsPerSec: number
  roundsPerSec: number
  seconds: number
  entries: number
  /** Process CPU time (all threads, user + system) over wall time: well below 1 means the bench was descheduled (a busy machine). */
  cpuPerWall: number
}

const TIME_CHECK_MASK = 15 // read the clock every 16 rounds

function finish(host: Host, last: number, ms: number, cpu: NodeJS.CpuUsage, entries: number, proposals: number, rounds: number): RunStats {
  host.check(last)
  const elapsed = ms / 1000
  return {
    entriesPerSec: entries / elapsed,
    proposalsPerSec: proposals / elapsed,
    roundsPerSec: rounds / elapsed,
    seconds: elapsed,
    entries,
    cpuPerWall: (cpu.user + cpu.system) / (ms * 1000),
  }
}

/** Proposes `datas` once per round while the uncommitted window allows, for `seconds`. */
function runPipelined(host: Host, datas: readonly Uint8Array[], seconds: number, maxUncommitted: number): RunStats {
  const leader = host.leader
  const size = datas.length
  // always allow one proposal, however large
  const window = Math.max(maxUncommitted, size)
  let last = host.applied[LEADER]! // last proposed index (the cluster is drained between runs)
  let proposals = 0
  const c0 = host.leaderCommitted
  const r0 = host.rounds
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const deadline = t0 + seconds * 1000
  let t = t0
  for (let i = 1; ; i++) {
    if (last - host.applied[LEADER]! + size <= window) {
      const r = leader.propose(datas)
      if (!r.ok) throw new Error(`propose: ${r.error.code}: ${r.error.message}`)
      last = r.value.lastIndex
      proposals++
    }
    host.round()
    host.maybeCompact()
    if ((i & TIME_CHECK_MASK) === 0) {
      t = performance.now()
      if (t >= deadline) break
    }
  }
  return finish(host, last, t - t0, process.cpuUsage(cpu0), host.leaderCommitted - c0, proposals, host.rounds - r0)
}

/** Proposes `datas`, runs rounds until the leader's host got them as committed, repeats, for `seconds`. */
function runSequential(host: Host, datas: readonly Uint8Array[], seconds: number): RunStats {
  const leader = host.leader
  let proposals = 0
  const c0 = host.leaderCommitted
  const r0 = host.rounds
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const deadline = t0 + seconds * 1000
  let t = t0
  let last = host.applied[LEADER]!
  for (let i = 1; ; i++) {
    const r = leader.propose(datas)
    if (!r.ok) throw new Error(`propose: ${r.error.code}: ${r.error.message}`)
    last = r.value.lastIndex
    proposals++
    for (let rounds = 0; host.applied[LEADER]! < last; rounds++) {
      if (rounds === 10_000) throw new Error(`proposal ending at ${last} not committed after ${rounds} rounds`)
      host.round()
    }
    host.maybeCompact()
    if ((i & TIME_CHECK_MASK) === 0) {
      t = performance.now()
      if (t >= deadline) break
    }
  }
  return finish(host, last, t - t0, process.cpuUsage(cpu0), host.leaderCommitted - c0, proposals, host.rounds - r0)
}

// ---- statistics and output ---------------------------------------------------------------

interface ConfigResult {
  mode: Mode
  size: number
  runs: RunStats[]
  median: number
  min: number
  max: number
  /** (max - min) / median */
  spread: number
  medianProposalsPerSec: number
  medianRoundsPerSec: number
  medianCpuPerWall: number
  /** Host-loop rounds per committed entry and messages per committed entry, over all timed runs. */
  roundsPerEntry: number
  messagesPerEntry: number
  goal: number | null
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** The issue's goals: >= 2M entries/s with 1000-entry proposals, >= 200k/s with 1-entry proposals (pipelined). */
function goalFor(mode: Mode, size: number): number | null {
  if (mode !== 'pipelined') return null
  if (size === 1000) return 2_000_000
  if (size === 1) return 200_000
  return null
}

function fmtNum(x: number): string {
  return Math.round(x).toLocaleString('en-US')
}

function fmtPct(x: number): string {
  return `${(x * 100).toFixed(1)}%`
}

function goalText(r: ConfigResult): string {
  if (r.goal === null) return ''
  return `${r.median >= r.goal ? 'PASS' : 'FAIL'} (>= ${fmtNum(r.goal)})`
}

const COLUMNS = ['mode', 'entries/proposal', 'median entries/s', 'min', 'max', 'spread', 'proposals/s', 'rounds/entry', 'cpu/wall', 'goal'] as const

function rowOf(r: ConfigResult): string[] {
  return [
    r.mode,
    String(r.size),
    fmtNum(r.median),
    fmtNum(r.min),
    fmtNum(r.max),
    fmtPct(r.spread),
    fmtNum(r.medianProposalsPerSec),
    r.roundsPerEntry < 0.01 ? r.roundsPerEntry.toExponential(2) : r.roundsPerEntry.toFixed(2),
    r.medianCpuPerWall.toFixed(2),
    goalText(r),
  ]
}

function textTable(results: readonly ConfigResult[]): string {
  const rows = [COLUMNS.slice(), ...results.map(rowOf)]
  const widths = COLUMNS.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)))
  const line = (row: string[]): string =>
    row.map((cell, c) => (c <= 1 || c === row.length - 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd()
  const sep = widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(rows[0]!), sep, ...rows.slice(1).map(line)].join('\n')
}

function markdownTable(results: readonly ConfigResult[]): string {
  const align = COLUMNS.map((_, c) => (c <= 1 || c === COLUMNS.length - 1 ? ':--' : '--:'))
  const rows = [COLUMNS.slice(), align, ...results.map(rowOf)]
  return rows.map((row) => `| ${row.join(' | ')} |`).join('\n')
}

function environment(): Record<string, string | number> {
  return {
    loadavg1m: Number(loadavg()[0]!.toFixed(2)),
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
  }
}

// ---- main ----------------------------------------------------------------------------------

function measure(opts: Options, mode: Mode, size: number): ConfigResult {
  const host = newCluster(opts.compactEvery)
  const datas = payloads(size, opts.entryBytes)
  const run = (seconds: number): RunStats =>
    mode === 'pipelined' ? runPipelined(host, datas, seconds, opts.maxUncommitted) : runSequential(host, datas, seconds)
  if (opts.warmup > 0) run(opts.warmup)
  const runs: RunStats[] = []
  const rounds0 = host.rounds
  const messages0 = host.messages
  for (let i = 0; i < opts.runs; i++) runs.push(run(opts.seconds))
  const rates = runs.map((r) => r.entriesPerSec)
  const med = median(rates)
  const min = Math.min(...rates)
  const max = Math.max(...rates)
  const entries = runs.reduce((s, r) => s + r.entries, 0)
  return {
    mode,
    size,
    runs,
    median: med,
    min,
    max,
    spread: med > 0 ? (max - min) / med : 0,
    medianProposalsPerSec: median(runs.map((r) => r.proposalsPerSec)),
    medianRoundsPerSec: median(runs.map((r) => r.roundsPerSec)),
    medianCpuPerWall: median(runs.map((r) => r.cpuPerWall)),
    // includes the drain rounds/messages of each run's check
    roundsPerEntry: (host.rounds - rounds0) / entries,
    messagesPerEntry: (host.messages - messages0) / entries,
    goal: goalFor(mode, size),
  }
}

const RESULT_PREFIX = 'RAFT_CORE_RESULT '

/** Runs one configuration in a fresh child process (same node flags and loader as this one). */
function measureIsolated(opts: Options, mode: Mode, size: number): ConfigResult {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--child', `${mode}:${size}`, '--no-save']
  args.push('--runs', String(opts.runs), '--seconds', String(opts.seconds), '--warmup', String(opts.warmup))
  args.push('--entry-bytes', String(opts.entryBytes), '--max-uncommitted', String(opts.maxUncommitted))
  args.push('--compact-every', String(opts.compactEvery))
  const child = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20 })
  if (child.error) throw child.error
  const line = child.stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX))
  if (child.status !== 0 || line === undefined) {
    throw new Error(`${mode} ${size}: child exited with ${child.status ?? child.signal}\n${child.stdout}`)
  }
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as ConfigResult
}

function main(): void {
  const opts = parseOptions()
  if (opts.child !== undefined) {
    const [mode, size] = opts.child.split(':')
    if ((mode !== 'pipelined' && mode !== 'sequential') || !(Number(size) >= 1)) throw new Error(`--child: bad "${opts.child}"`)
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(measure(opts, mode, Number(size)))}\n`)
    return
  }
  const configs: [Mode, number][] = [
    ...opts.sizes.map((s): [Mode, number] => ['pipelined', s]),
    ...opts.seqSizes.map((s): [Mode, number] => ['sequential', s]),
  ]
  const env = environment()
  console.log(`raft-core bench: 3 nodes in memory, one thread, ${opts.entryBytes}-byte entries`)
  console.log(
    `${env.node}, ${env.cpu} (${env.cpus} cpus); ${opts.runs} runs x ${opts.seconds}s after ${opts.warmup}s warm-up per configuration, ` +
      (opts.inProcess ? 'all in this process' : 'each configuration in a fresh process'),
  )
  const results: ConfigResult[] = []
  for (const [mode, size] of configs) {
    const r = opts.inProcess ? measure(opts, mode, size) : measureIsolated(opts, mode, size)
    results.push(r)
    console.log(
      `  ${mode.padEnd(10)} ${String(size).padStart(5)} entries/proposal: median ${fmtNum(r.median)} entries/s ` +
        `(min ${fmtNum(r.min)}, max ${fmtNum(r.max)}, spread ${fmtPct(r.spread)})`,
    )
  }
  console.log()
  console.log(textTable(results))
  console.log(
    '\ncpu/wall: process CPU time (all threads) per wall second during the timed runs; well under 1.00 means the\n' +
      `machine was busy with other work and the figures are low and noisy (1-min load average at start: ${env.loadavg1m}).`,
  )
  const failed = results.filter((r) => r.goal !== null && r.median < r.goal)
  console.log()
  console.log(failed.length === 0 ? 'All goals met.' : `Goals missed: ${failed.map((r) => `${r.mode} ${r.size}`).join(', ')}`)

  if (opts.save) {
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results')
    mkdirSync(dir, { recursive: true })
    const date = new Date().toISOString()
    const json = {
      bench: 'raft-core',
      date,
      environment: env,
      options: { ...opts, child: undefined },
      unit: 'committed entries per second (leader host)',
      results,
    }
    writeFileSync(join(dir, 'raft-core.json'), `${JSON.stringify(json, null, 2)}\n`)
    const md = [
      '# raft-core bench',
      '',
      `${date}; ${env.node}, ${env.cpu} (${env.cpus} cpus), ${env.platform}; 1-min load average at start ${env.loadavg1m}.`,
      `3-node in-memory cluster on one thread, ${opts.entryBytes}-byte entries; ${opts.runs} runs x ${opts.seconds}s ` +
        `after ${opts.warmup}s warm-up per configuration${opts.inProcess ? '' : ' (each in a fresh process)'}; ` +
        `pipelined window ${opts.maxUncommitted} uncommitted entries. ` +
        'Committed entries per second as received by the leader host in `committedEntries`. Run with `npm run bench:raft`.',
      '',
      markdownTable(results),
      '',
      'cpu/wall: process CPU time (all threads) per wall second; well under 1.00 means other work competed for the CPU.',
      '',
    ].join('\n')
    writeFileSync(join(dir, 'raft-core.md'), md)
    console.log(`\nWrote ${relative(process.cwd(), join(dir, 'raft-core.json'))} and ${relative(process.cwd(), join(dir, 'raft-core.md'))}`)
  }
}

main()
