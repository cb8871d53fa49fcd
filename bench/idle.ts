/**
 * bench/idle.ts — what a node with many idle partitions costs (`npm run bench:idle`, i.e.
 * `tsx bench/idle.ts`).
 *
 * One broker in a child process (bench/lib/broker-process.ts: resolveConfig +
 * runNodeProcess) on a data directory of this bench's own. Phases:
 *   1. empty: the node started on a new data directory; time to ready (spawn to its
 *      "raftmq node started" line), then resident memory, open file descriptors and
 *      threads, and its CPU over a few seconds.
 *   2. created: --partitions partitions created through the client's admin API
 *      (createTopic), in topics of at most --topic-partitions partitions each; the time
 *      that took; then, once the node is idle (its CPU over 2 s windows has stopped
 *      falling, or is under 1% of a core; at most --idle-wait seconds), its CPU over
 *      --seconds (utime + stime of /proc/<pid>/stat, as % of one core), RSS (VmRSS,
 *      median of one sample a second), open fds (/proc/<pid>/fd) and threads.
 *   3. restarted: the node stopped cleanly (SIGINT) and started again on the same data
 *      directory: time to ready (every partition opened and recovered before the node
 *      listens), then the same idle measurement.
 * If creation fails part way (a limit met: file descriptors, memory), the error is
 * reported and the partitions that exist are measured. The broker's warnings (first
 * few) are printed. `other cpu` is what the rest of the machine used meanwhile (cores):
 * a busy machine makes the CPU figure noisy.
 *
 * Run:
 *   npm run bench:idle
 *   npm run bench:idle -- --quick
 *   npm run bench:idle -- --partitions 2000 --workers 1 --seconds 10
 *   npm run bench:idle -- --help
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Client } from '../src/client/index.js'
import { codeKind, compiledBroker, importCode, spawnBroker } from './lib/broker-process.js'
import type { BrokerProcess, CodeKind } from './lib/broker-process.js'
import {
  describeEnvironment,
  environment,
  fmtInt,
  gitState,
  machineBusySeconds,
  markdownTable,
  median,
  ownCpuSeconds,
  saveResults,
  sleep,
  style,
  textTable,
  waitForQuiet,
} from './lib/report.js'
import type { Column } from './lib/report.js'
import { optionNumber } from './lib/options.js'

const HELP = `Usage: npm run bench:idle -- [options]   (or: npx tsx bench/idle.ts [options])

A node with many idle partitions: start-up time, then CPU (% of one core), resident
memory, open file descriptors and threads once idle; then a restart on the same data
directory (time to ready) and the same figures. Results: bench/results/idle.{json,md}.

Options:
  --partitions N        partitions to create (default 10000)
  --topic-partitions N  at most this many per topic (default 1000)
  --workers N           the broker's worker threads (default: the broker's default)
  --seconds S           the idle CPU window (default 30)
  --idle-wait S         wait at most S seconds for the node to go idle (default 120)
  --start-timeout S     how long a (re)start may take (default 900)
  --code KIND           compiled (default): src/ compiled by tsc first; tsx: from source
  --quick               a smoke run: 1000 partitions, 5 s windows
  --quiet-cores C       before each measurement, wait until other processes use at most C
                        cores (default 0.5) ...
  --quiet-wait S        ... but at most S seconds (default 10; 0 never waits)
  --no-save             do not write bench/results/idle.{json,md}
  -h, --help            show this help
`

interface Options {
  partitions: number
  topicPartitions: number
  workers: number | undefined
  seconds: number
  idleWait: number
  startTimeout: number
  code: CodeKind
  quick: boolean
  quietCores: number
  quietWait: number
  save: boolean
}

function parseOptions(): Options {
  const { values: v } = parseArgs({
    options: {
      partitions: { type: 'string' },
      'topic-partitions': { type: 'string', default: '1000' },
      workers: { type: 'string' },
      seconds: { type: 'string' },
      'idle-wait': { type: 'string', default: '120' },
      'start-timeout': { type: 'string', default: '900' },
      code: { type: 'string', default: 'compiled' },
      quick: { type: 'boolean', default: false },
      'quiet-cores': { type: 'string', default: '0.5' },
      'quiet-wait': { type: 'string', default: '10' },
      'no-save': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (v.help) {
    process.stdout.write(HELP)
    process.exit(0)
  }
  const num = optionNumber
  const quick = v.quick
  return {
    partitions: num('partitions', v.partitions ?? (quick ? '1000' : '10000'), 1),
    topicPartitions: num('topic-partitions', v['topic-partitions'], 1),
    workers: v.workers === undefined ? undefined : num('workers', v.workers, 0),
    seconds: num('seconds', v.seconds ?? (quick ? '5' : '30'), 1, false),
    idleWait: num('idle-wait', v['idle-wait'], 0, false),
    startTimeout: num('start-timeout', v['start-timeout'], 1, false),
    code: codeKind(v.code),
    quick,
    quietCores: num('quiet-cores', v['quiet-cores'], 0, false),
    quietWait: num('quiet-wait', v['quiet-wait'], 0, false),
    save: !v['no-save'],
  }
}

// ---- measuring -------------------------------------------------------------------------------

interface Phase {
  readonly phase: 'empty' | 'created' | 'restarted'
  readonly partitions: number
  /** Spawn to ready (empty, restarted), or the time the createTopic calls took (created). */
  readonly seconds: number
  /** Seconds waited for the node to go idle before the window. */
  readonly idleAfterSeconds: number
  /** CPU of the node over the window, % of one core. */
  readonly cpuPercent: number
  readonly rssBytes: number
  readonly peakRssBytes: number
  readonly openFds: number
  readonly threads: number
  readonly windowSeconds: number
  readonly otherCpu: number
  readonly error: string | null
}

/** The node's CPU (cores) over `ms`. */
async function cpuOver(broker: BrokerProcess, ms: number): Promise<number> {
  const c0 = broker.cpuSeconds()
  const t0 = performance.now()
  await sleep(ms)
  return (broker.cpuSeconds() - c0) / ((performance.now() - t0) / 1000)
}

/** Waits until the node's CPU over 2 s windows stops falling (or is under 1% of a core); returns the seconds waited. */
async function waitIdle(broker: BrokerProcess, maxSeconds: number): Promise<number> {
  const t0 = performance.now()
  let prev = await cpuOver(broker, 2000)
  while ((performance.now() - t0) / 1000 < maxSeconds) {
    if (prev < 0.01) break
    const cur = await cpuOver(broker, 2000)
    if (cur >= prev * 0.9) break
    prev = cur
  }
  return (performance.now() - t0) / 1000
}

async function measureIdle(broker: BrokerProcess, seconds: number): Promise<Pick<Phase, 'cpuPercent' | 'rssBytes' | 'peakRssBytes' | 'openFds' | 'threads' | 'windowSeconds' | 'otherCpu'>> {
  const c0 = broker.cpuSeconds()
  const own0 = ownCpuSeconds()
  const m0 = machineBusySeconds()
  const t0 = performance.now()
  const rss: number[] = []
  const fds: number[] = []
  const end = t0 + seconds * 1000
  while (performance.now() < end) {
    await sleep(Math.min(1000, Math.max(0, end - performance.now())))
    rss.push(broker.memory()?.rssBytes ?? NaN)
    fds.push(broker.openFds())
  }
  const window = (performance.now() - t0) / 1000
  const cpu = (broker.cpuSeconds() - c0) / window
  const other = Math.max(0, (machineBusySeconds() - m0 - (ownCpuSeconds() - own0)) / window - cpu)
  return {
    cpuPercent: cpu * 100,
    rssBytes: median(rss),
    peakRssBytes: broker.memory()?.hwmBytes ?? NaN,
    openFds: median(fds),
    threads: broker.threads(),
    windowSeconds: window,
    otherCpu: other,
  }
}

/** Creates `total` partitions in topics of at most `perTopic`; returns how many exist and the first error. */
async function createPartitions(client: Client, total: number, perTopic: number, onTopic: (made: number) => void): Promise<{ made: number; error: string | null }> {
  let made = 0
  for (let t = 0; made < total; t++) {
    const n = Math.min(perTopic, total - made)
    try {
      await client.admin().createTopic({ name: `idle-${t}`, partitions: n })
    } catch (err) {
      // what does exist, if the node still answers
      const error = err instanceof Error ? err.message : String(err)
      try {
        const topics = await client.admin().listTopics()
        made = topics.reduce((sum, tp) => sum + tp.partitions, 0)
      } catch {
        // the node is gone: keep what was acknowledged
      }
      return { made, error }
    }
    made += n
    onTopic(made)
  }
  return { made, error: null }
}

function warningsOf(broker: BrokerProcess): void {
  if (broker.warnings.length === 0) return
  process.stderr.write(style.yellow(`  broker warnings (${broker.warnings.length}${broker.warnings.length >= 200 ? '+' : ''}):\n    ${broker.warnings.slice(0, 5).join('\n    ')}\n`))
}

// ---- output ----------------------------------------------------------------------------------

const MB = (b: number): string => (Number.isFinite(b) ? (b / 1e6).toFixed(0) : '-')

const COLUMNS: Column[] = [
  { title: 'phase', align: 'left' },
  { title: 'partitions', align: 'right' },
  { title: 'time s', align: 'right' },
  { title: 'cpu % of a core', align: 'right' },
  { title: 'RSS MB', align: 'right' },
  { title: 'peak RSS MB', align: 'right' },
  { title: 'KB per partition', align: 'right' },
  { title: 'open fds', align: 'right' },
  { title: 'threads', align: 'right' },
  { title: 'other cpu', align: 'right' },
  { title: 'note', align: 'left' },
]

const PHASE_TEXT: Record<Phase['phase'], string> = {
  empty: 'empty node: start to ready',
  created: 'partitions created (createTopic)',
  restarted: 'restart on the same data: to ready',
}

function rowOf(p: Phase, empty: Phase | undefined): string[] {
  const perPartition = empty && p.partitions > 0 && p.phase !== 'empty' ? (p.rssBytes - empty.rssBytes) / p.partitions / 1e3 : NaN
  return [
    PHASE_TEXT[p.phase],
    fmtInt(p.partitions),
    p.seconds.toFixed(p.seconds >= 100 ? 0 : 1),
    Number.isFinite(p.cpuPercent) ? p.cpuPercent.toFixed(1) : '-',
    MB(p.rssBytes),
    MB(p.peakRssBytes),
    Number.isFinite(perPartition) ? fmtInt(perPartition) : '-',
    fmtInt(p.openFds),
    fmtInt(p.threads),
    p.otherCpu.toFixed(2),
    p.error === null ? '' : p.error.split('\n')[0]!.slice(0, 120),
  ]
}

const LEGEND = `time s: spawn to the node's "started" line (empty, restart: every partition opened before it listens), or
the createTopic calls (created). cpu: the node's utime + stime over the idle window, % of one core. RSS: VmRSS,
median of one sample a second (worker threads included); peak: VmHWM. KB per partition: RSS above the empty
node's, per partition. open fds: /proc/<pid>/fd. other cpu: cores the rest of the machine used meanwhile.`

// ---- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseOptions()
  const ClientImpl = (await importCode<typeof import('../src/client/index.js')>(opts.code, 'src/client/index')).Client
  const compiledMain = opts.code === 'compiled' ? (await compiledBroker()).main : undefined
  const env = environment()
  const git = gitState()
  const quiet = async (): Promise<void> => {
    if (opts.quietWait > 0) await waitForQuiet(opts.quietCores, opts.quietWait * 1000, (c) => process.stdout.write(style.yellow(`(waiting: others use ${c.toFixed(1)} cores) `)))
  }
  const topics = Math.ceil(opts.partitions / opts.topicPartitions)
  console.log(style.bold('raftmq idle-partitions bench') + style.dim(` — ${fmtInt(opts.partitions)} partitions in ${topics} topic${topics === 1 ? '' : 's'}, one node in a child process`))
  console.log(style.dim(`  ${describeEnvironment(env)}`))
  console.log(style.dim(`  tree at ${git.commit}${git.dirty.length > 0 ? ` with ${git.dirty.length} files changed in src/ and workers/` : ''}; raftmq's code ${opts.code === 'compiled' ? 'compiled by tsc' : 'from source under tsx'}; workers ${opts.workers ?? 'default'}`))
  console.log()

  const dataDir = await mkdtemp(join(tmpdir(), 'raftmq-bench-idle-'))
  const phases: Phase[] = []
  const startTimeoutMs = opts.startTimeout * 1000
  try {
    // 1. empty
    await quiet()
    process.stdout.write(style.dim('  empty node: starting ... '))
    let broker = await spawnBroker({ workers: opts.workers, compiledMain, dataDir, startTimeoutMs })
    let created = 0
    try {
      const idleAfter = await waitIdle(broker, opts.idleWait)
      const m = await measureIdle(broker, Math.min(opts.seconds, 5))
      phases.push({ phase: 'empty', partitions: 0, seconds: broker.startMs / 1000, idleAfterSeconds: idleAfter, ...m, error: null })
      console.log(`ready in ${(broker.startMs / 1000).toFixed(1)} s, ${MB(m.rssBytes)} MB, ${m.openFds} fds`)

      // 2. created
      process.stdout.write(style.dim(`  creating ${fmtInt(opts.partitions)} partitions ... `))
      const client = new ClientImpl({ brokers: [broker.address], requestTimeoutMs: startTimeoutMs })
      const t0 = performance.now()
      const r = await createPartitions(client, opts.partitions, opts.topicPartitions, (made) => process.stdout.write(style.dim(`${fmtInt(made)} `)))
      const createSeconds = (performance.now() - t0) / 1000
      await client.close()
      created = r.made
      console.log(r.error === null ? `done in ${createSeconds.toFixed(1)} s` : style.red(`stopped at ${fmtInt(r.made)}: ${r.error.split('\n')[0]}`))
      if (broker.memory() !== null) {
        process.stdout.write(style.dim('  waiting for the node to go idle ... '))
        const idle = await waitIdle(broker, opts.idleWait)
        await quiet()
        process.stdout.write(style.dim(`idle after ${idle.toFixed(0)} s; measuring ${opts.seconds} s ... `))
        const mc = await measureIdle(broker, opts.seconds)
        phases.push({ phase: 'created', partitions: created, seconds: createSeconds, idleAfterSeconds: idle, ...mc, error: r.error })
        console.log(`${mc.cpuPercent.toFixed(1)}% of a core, ${MB(mc.rssBytes)} MB, ${fmtInt(mc.openFds)} fds`)
      } else {
        phases.push({ phase: 'created', partitions: created, seconds: createSeconds, idleAfterSeconds: 0, cpuPercent: NaN, rssBytes: NaN, peakRssBytes: NaN, openFds: NaN, threads: NaN, windowSeconds: 0, otherCpu: 0, error: r.error ?? 'the node exited' })
      }
    } finally {
      warningsOf(broker)
      const t = performance.now()
      const exit = await broker.stop()
      console.log(style.dim(`  stopped in ${((performance.now() - t) / 1000).toFixed(1)} s (exit ${exit.code ?? exit.signal})`))
    }

    // 3. restarted
    await quiet()
    process.stdout.write(style.dim('  restart on the same data directory ... '))
    try {
      broker = await spawnBroker({ workers: opts.workers, compiledMain, dataDir, startTimeoutMs })
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err)
      console.log(style.red(`failed: ${error.split('\n')[0]}`))
      phases.push({ phase: 'restarted', partitions: created, seconds: NaN, idleAfterSeconds: 0, cpuPercent: NaN, rssBytes: NaN, peakRssBytes: NaN, openFds: NaN, threads: NaN, windowSeconds: 0, otherCpu: 0, error })
      return report(opts, env, git, phases)
    }
    try {
      console.log(`ready in ${(broker.startMs / 1000).toFixed(1)} s`)
      process.stdout.write(style.dim('  waiting for the node to go idle ... '))
      const idle = await waitIdle(broker, opts.idleWait)
      await quiet()
      process.stdout.write(style.dim(`idle after ${idle.toFixed(0)} s; measuring ${opts.seconds} s ... `))
      const mr = await measureIdle(broker, opts.seconds)
      phases.push({ phase: 'restarted', partitions: created, seconds: broker.startMs / 1000, idleAfterSeconds: idle, ...mr, error: null })
      console.log(`${mr.cpuPercent.toFixed(1)}% of a core, ${MB(mr.rssBytes)} MB, ${fmtInt(mr.openFds)} fds`)
    } finally {
      warningsOf(broker)
      await broker.stop()
    }
    report(opts, env, git, phases)
  } finally {
    await rm(dataDir, { recursive: true, force: true })
  }
}

function report(opts: Options, env: ReturnType<typeof environment>, git: ReturnType<typeof gitState>, phases: Phase[]): void {
  const empty = phases.find((p) => p.phase === 'empty')
  console.log()
  console.log(textTable(COLUMNS, phases.map((p) => rowOf(p, empty))))
  console.log()
  console.log(style.dim(LEGEND))
  if (!opts.save) return
  const date = new Date().toISOString()
  const json = { bench: 'idle', date, environment: env, git, options: opts, phases }
  const md = [
    '# idle partitions bench',
    '',
    `${date}; ${describeEnvironment(env)}. Tree at ${git.commit}${git.dirty.length > 0 ? ` plus uncommitted changes to ${git.dirty.join(', ')}` : ''}.`,
    '',
    `One raftmq node in a child process (${opts.code === 'compiled' ? 'compiled by tsc' : 'from source under tsx'}, ${opts.workers ?? 'default'} worker threads), ` +
      `${fmtInt(opts.partitions)} partitions asked for, in topics of at most ${fmtInt(opts.topicPartitions)}; idle windows of ${opts.seconds} s. ` +
      `Run with \`npm run bench:idle${opts.quick ? ' -- --quick' : ''}\`; see its header for the method.`,
    '',
    markdownTable(COLUMNS, phases.map((p) => rowOf(p, empty))),
    '',
    LEGEND,
    '',
  ].join('\n')
  const files = saveResults('idle', json, md)
  console.log()
  console.log(style.dim(`Wrote ${files.join(' and ')}`))
}

await main()
