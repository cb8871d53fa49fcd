/**
 * bench/produce.ts — produce throughput, acknowledgement latency and broker memory of one
 * raftmq node (`npm run bench:produce`).
 *
 * Setup: every run of every configuration gets a fresh broker in a child process (bench/
 * lib/broker-process.ts: resolveConfig + runNodeProcess, a new temporary data directory,
 * --workers W worker threads) and a fresh topic of P partitions. The broker acknowledges
 * only what its worker's write-ahead log has fsynced (one write and one fdatasync per
 * worker loop turn, for every group of the worker: DESIGN §4), so every figure here is
 * for durable writes. The load generator is this process; it talks to the broker over
 * loopback TCP with the public client (Client, Producer).
 *
 * The matrix (the storage issue's): partitions 1, 2, 4, 8, 16 x --workers 1 and 2 x
 * 100 B and 1 KiB x sequential (one request at a time) and pipelined. fsyncs/req is what
 * the node counted itself: WAL syncs (every thread's) per produce request over the timed
 * run, read before and after it with SIGUSR2 (the node prints `raftmq stats {...}`). One
 * sync per worker touched is the most a request should cost; under concurrency, fewer.
 *
 * Modes (a "request" is one produce request, one round trip):
 *   send-seq    one `send()` at a time to partition 0: the single-message path,
 *               latency-bound (run for the first partition count only).
 *   batch-seq   one `sendBatch()` at a time, holding `batch` messages for each of the P
 *               partitions: P batches, each one Raft proposal and one sync on its group.
 *   batch-pipe  --producers producers (one Client and connection each), each keeping
 *               --depth such sendBatch requests in flight.
 *   send-pipe   --producers producers, each keeping --window `send()` calls outstanding
 *               over the P partitions round-robin; the producer's queue (lingerMs,
 *               maxInFlight) and the broker's group commit do the batching. `msgs/req`
 *               shows the batch size that emerged.
 *
 * Runs are interleaved: round 1 of every configuration, then round 2, and so on (--runs
 * rounds), so that the slow drift of a shared machine touches every configuration alike.
 * One run: a fresh broker, the load started, --warmup seconds, then one timed window of
 * --seconds on the running load. Per run: acknowledged messages/s
 * and payload MB/s (value bytes only), p50/p99 acknowledgement latency (call to
 * resolution; per request for sendBatch, per message for send), the broker's resident
 * memory (VmRSS; worker threads included) and the CPU used — by the broker, by this
 * process, and by everything else on the machine (`other`: other people's work on a
 * shared machine, which makes figures low and noisy). Tables show medians over runs and
 * the spread ((max - min) / median) of throughput.
 *
 * raftmq's code — the broker's and the client's this bench drives — runs compiled by
 * tsc into a temporary folder (--code compiled, the default: what `npm start` and an
 * application using the package run, built from the working tree in about 3 s) or from
 * source under tsx (--code tsx: what a developer runs). tsx costs memory (its loader in
 * the main thread and in each worker, ~70 MB) and speed: esbuild's `__name` helper runs
 * wherever a named function is created, e.g. per record in the record walk (bench/
 * batch-stages.ts measures it: about 6x slower there).
 *
 * Then: a broker with 64 idle partitions (one topic) and its resident memory, for both
 * ways of running it (a --quick run: only the chosen one). bench/idle.ts measures
 * thousands of idle partitions.
 *
 * The issue's goals (reported, never asserted), for 100-byte messages: batches of 1000 to
 * one partition >= 500,000 msgs/s; 4 pipelined send producers >= 300,000 msgs/s;
 * sequential single sends >= 2,800/s with p50 <= 0.35 ms; 64 idle partitions < 300 MB RSS.
 *
 * Run:
 *   npm run bench:produce
 *   npm run bench:produce -- --quick
 *   npm run bench:produce -- --sizes 100 --partitions 1 --workers 1 --modes send-seq,batch-seq --runs 5
 *   npm run bench:produce -- --help
 * Profile the broker (one .cpuprofile per thread, written when the broker stops), then
 * summarise the profiles:
 *   npm run bench:produce -- --sizes 100 --partitions 1 --workers 1 --modes send-seq --idle-partitions 0 --cpu-prof /tmp/prof --no-save
 *   npx tsx bench/cpuprofile.ts /tmp/prof/*.cpuprofile
 */
import { parseArgs } from 'node:util'
import type { Client, Message, Producer } from '../src/client/index.js'
import { codeKind, compiledBroker, importCode, spawnBroker, spawnBrokers } from './lib/broker-process.js'
import type { CodeKind } from './lib/broker-process.js'
import {
  describeEnvironment,
  environment,
  fmtInt,
  fmtMB,
  fmtMs,
  fmtPct,
  gitState,
  machineBusySeconds,
  markdownTable,
  median,
  ownCpuSeconds,
  percentile,
  saveResults,
  sleep,
  spreadOf,
  style,
  textTable,
  waitForQuiet,
} from './lib/report.js'
import type { Column, Spread } from './lib/report.js'
import { optionNumber } from './lib/options.js'

// ---- options -------------------------------------------------------------------------------

const HELP = `Usage: npm run bench:produce -- [options]

Durable produce throughput and latency of one raftmq node in a child process, fsyncs per
produce request (counted by the node), and its memory with 64 idle partitions.
Results: bench/results/produce.{json,md}.

Options:
  --sizes LIST         message value bytes (default 100,1024)
  --partitions LIST    partitions of the topic (default 1,2,4,8,16)
  --workers LIST       the broker's worker threads, one configuration each (default 1,2)
  --batches LIST       messages per partition per sendBatch (default 10,1000)
  --modes LIST         send-seq, batch-seq, batch-pipe, send-pipe (default all)
  --producers N        producers in the pipelined modes, one connection each (default 4)
  --depth N            batch-pipe: sendBatch requests in flight per producer (default 4)
  --window N           send-pipe: send() calls outstanding per producer (default 1000)
  --linger-ms MS       send-pipe: the producers' lingerMs (default 0)
  --max-in-flight N    send-pipe: the producers' maxInFlight per partition (default 5)
  --nodes N            brokers: 1 (one node) or a cluster of N nodes on loopback, every
                       partition replicated N ways (default 1); results then go to
                       bench/results/produce-rfN.{json,md}
  --runs N             interleaved rounds: timed runs per configuration, each on a fresh
                       broker (default 3)
  --seconds S          length of one timed run (default 1)
  --warmup S           load before the timed runs (default 0.5)
  --idle-partitions N  partitions of the idle-memory check, 0 to skip (default 64)
  --code KIND          how raftmq's code runs, in the broker and in this load generator:
                       compiled (default): src/ compiled by tsc into a temporary folder
                       first, plain JavaScript as \`npm start\` runs it; tsx: from source
  --quick              a short smoke run: 100 B, 1 and 16 partitions, batches 10 and 1000,
                       2 rounds x 0.5 s
  --quiet-cores C      before each run, wait until other processes use at most C
                       cores (default 0.5) ...
  --quiet-wait S       ... but at most S seconds (default 10; 0 never waits)
  --cpu-prof DIR       run each broker with node --cpu-prof, profiles into DIR
  --no-save            do not write bench/results/produce.{json,md}
  -h, --help           show this help
`

const MODES = ['send-seq', 'batch-seq', 'batch-pipe', 'send-pipe'] as const
type Mode = (typeof MODES)[number]

interface Options {
  sizes: number[]
  partitions: number[]
  workers: number[]
  batches: number[]
  modes: Mode[]
  producers: number
  depth: number
  window: number
  lingerMs: number
  maxInFlight: number
  runs: number
  seconds: number
  warmup: number
  idlePartitions: number
  code: CodeKind
  nodes: number
  quick: boolean
  quietCores: number
  quietWait: number
  cpuProf: string | undefined
  save: boolean
}

function parseOptions(): Options {
  const { values: v } = parseArgs({
    options: {
      sizes: { type: 'string' },
      partitions: { type: 'string' },
      batches: { type: 'string' },
      modes: { type: 'string' },
      producers: { type: 'string', default: '4' },
      depth: { type: 'string', default: '4' },
      window: { type: 'string', default: '1000' },
      'linger-ms': { type: 'string', default: '0' },
      'max-in-flight': { type: 'string', default: '5' },
      runs: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      workers: { type: 'string' },
      'idle-partitions': { type: 'string', default: '64' },
      code: { type: 'string', default: 'compiled' },
      nodes: { type: 'string', default: '1' },
      quick: { type: 'boolean', default: false },
      'quiet-cores': { type: 'string', default: '0.5' },
      'quiet-wait': { type: 'string', default: '10' },
      'cpu-prof': { type: 'string' },
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
  const list = (name: string, s: string, min = 1): number[] => s.split(',').map((x) => num(name, x.trim(), min))
  const quick = v.quick
  const modes = (v.modes ?? MODES.join(',')).split(',').map((m) => m.trim())
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) throw new Error(`--modes: unknown mode "${m}" (expected ${MODES.join(', ')})`)
  return {
    sizes: list('sizes', v.sizes ?? (quick ? '100' : '100,1024')),
    partitions: list('partitions', v.partitions ?? (quick ? '1,16' : '1,2,4,8,16')),
    workers: list('workers', v.workers ?? '1,2', 0),
    batches: list('batches', v.batches ?? '10,1000'),
    modes: modes as Mode[],
    producers: num('producers', v.producers, 1),
    depth: num('depth', v.depth, 1),
    window: num('window', v.window, 1),
    lingerMs: num('linger-ms', v['linger-ms'], 0),
    maxInFlight: num('max-in-flight', v['max-in-flight'], 1),
    runs: num('runs', v.runs ?? (quick ? '2' : '3'), 1),
    seconds: num('seconds', v.seconds ?? (quick ? '0.5' : '1'), 0.05, false),
    warmup: num('warmup', v.warmup ?? (quick ? '0.25' : '0.5'), 0, false),
    idlePartitions: num('idle-partitions', v['idle-partitions'], 0),
    code: codeKind(v.code),
    nodes: num('nodes', v.nodes, 1),
    quick,
    quietCores: num('quiet-cores', v['quiet-cores'], 0, false),
    quietWait: num('quiet-wait', v['quiet-wait'], 0, false),
    cpuProf: v['cpu-prof'],
    save: !v['no-save'],
  }
}

// ---- load ------------------------------------------------------------------------------------

interface Config {
  readonly size: number
  /** The broker's worker threads. */
  readonly workers: number
  readonly partitions: number
  readonly mode: Mode
  /** Messages per partition per request; 0 for send-pipe (the producer decides). */
  readonly batch: number
}

/** What one timed window saw. */
class Window {
  messages = 0
  requests = 0
  readonly latenciesMs: number[] = []
}

/**
 * A running load: loops that keep the configured requests in flight until stopped,
 * recording into whichever Window is current.
 */
class Load {
  #window = new Window()
  #stopped = false
  #error: Error | null = null
  readonly #loops: Promise<void>[] = []
  /** produce requests sent (counted at the client, so send-pipe's coalescing shows) */
  requestsSent = 0

  constructor(readonly config: Config, readonly opts: Options, readonly clients: readonly Client[]) {
    for (const c of clients) {
      const request = c.request.bind(c)
      c.request = ((api, body, timeoutMs) => {
        if (api === 'produce') this.requestsSent++
        return request(api, body, timeoutMs)
      }) as Client['request']
    }
  }

  get error(): Error | null {
    return this.#error
  }

  /** Starts a new window and returns the finished one. */
  swap(): Window {
    const w = this.#window
    this.#window = new Window()
    return w
  }

  #fail(err: unknown): void {
    this.#error ??= err instanceof Error ? err : new Error(String(err))
    this.#stopped = true
  }

  start(): void {
    const { config: c, opts } = this
    const value = new Uint8Array(c.size)
    for (let i = 0; i < value.length; i++) value[i] = (i * 2654435761) >>> 24 // not compressible by a trivial run-length
    const topic = 'bench'
    if (c.mode === 'send-seq') {
      const p = this.clients[0]!.producer()
      this.#loops.push(this.#sendLoop(p, { topic, partition: 0, value }))
      return
    }
    if (c.mode === 'send-pipe') {
      for (const client of this.clients) {
        const p = client.producer({ lingerMs: opts.lingerMs, maxInFlight: opts.maxInFlight })
        const msgs = Array.from({ length: c.partitions }, (_, partition): Message => ({ topic, partition, value }))
        this.#loops.push(this.#sendWindow(p, msgs, opts.window))
      }
      return
    }
    const msgs: Message[] = []
    for (let partition = 0; partition < c.partitions; partition++) for (let i = 0; i < c.batch; i++) msgs.push({ topic, partition, value })
    if (c.mode === 'batch-seq') {
      this.#loops.push(this.#batchLoop(this.clients[0]!.producer(), msgs))
      return
    }
    for (const client of this.clients) {
      const p = client.producer()
      for (let d = 0; d < opts.depth; d++) this.#loops.push(this.#batchLoop(p, msgs))
    }
  }

  async #sendLoop(p: Producer, m: Message): Promise<void> {
    try {
      while (!this.#stopped) {
        const t0 = performance.now()
        await p.send(m)
        const w = this.#window
        w.latenciesMs.push(performance.now() - t0)
        w.messages++
        w.requests++
      }
    } catch (err) {
      this.#fail(err)
    }
  }

  async #batchLoop(p: Producer, msgs: readonly Message[]): Promise<void> {
    try {
      while (!this.#stopped) {
        const t0 = performance.now()
        const { results } = await p.sendBatch(msgs)
        const ms = performance.now() - t0
        for (const r of results) if ('error' in r) throw new Error(`sendBatch: ${r.error.code}: ${r.error.message}`)
        const w = this.#window
        w.latenciesMs.push(ms)
        w.messages += msgs.length
        w.requests++
      }
    } catch (err) {
      this.#fail(err)
    }
  }

  /** Keeps `window` send() calls outstanding, over `msgs` (one per partition) round-robin. */
  #sendWindow(p: Producer, msgs: readonly Message[], window: number): Promise<void> {
    return new Promise((resolve) => {
      let outstanding = 0
      let next = 0
      const pump = (): void => {
        while (!this.#stopped && outstanding < window) {
          outstanding++
          const t0 = performance.now()
          p.send(msgs[next++ % msgs.length]!).then(
            () => {
              outstanding--
              const w = this.#window
              w.latenciesMs.push(performance.now() - t0)
              w.messages++
              pump()
            },
            (err: unknown) => {
              outstanding--
              this.#fail(err)
              pump()
            },
          )
        }
        if (this.#stopped && outstanding === 0) resolve()
      }
      pump()
    })
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await Promise.all(this.#loops)
  }
}

// ---- measuring one run ------------------------------------------------------------------------

interface RunStats {
  readonly seconds: number
  readonly messagesPerSec: number
  readonly mbPerSec: number
  readonly requestsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** WAL syncs per produce request, as the node counted both (NaN if it served none). */
  readonly fsyncsPerRequest: number
  readonly walSyncsPerSec: number
  readonly brokerRssBytes: number
  readonly brokerPeakRssBytes: number
  /** CPU cores used on average during the run. */
  readonly brokerCpu: number
  readonly clientCpu: number
  readonly otherCpu: number
}

interface ConfigResult extends Config {
  /** Producers (one Client each) generating the load. */
  readonly producers: number
  readonly runs: RunStats[]
  /** Runs that failed, with why. */
  readonly failures: string[]
  readonly messagesPerSec: Spread
  readonly mbPerSec: number
  readonly messagesPerRequest: number
  readonly fsyncsPerRequest: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly brokerRssBytes: number
  readonly brokerPeakRssBytes: number
  readonly brokerCpu: number
  readonly clientCpu: number
  readonly otherCpu: number
  readonly goals: GoalCheck[]
}

interface GoalCheck {
  readonly goal: string
  readonly met: boolean
}

function clientsFor(mode: Mode, producers: number): number {
  return mode === 'send-seq' || mode === 'batch-seq' ? 1 : producers
}

/** One run of `cfg`: a fresh broker, warm-up, one timed window. */
async function measureRun(cfg: Config, opts: Options): Promise<RunStats> {
  const compiledMain = opts.code === 'compiled' ? (await compiledBroker()).main : undefined
  const broker = await spawnBrokers(opts.nodes, { workers: cfg.workers, cpuProfDir: opts.cpuProf, compiledMain })
  const clients: Client[] = []
  let load: Load | null = null
  try {
    for (let i = 0; i < clientsFor(cfg.mode, opts.producers); i++) clients.push(new ClientImpl({ brokers: [...broker.addresses], clientId: `bench-${i}` }))
    await clients[0]!.admin().createTopic({ name: 'bench', partitions: cfg.partitions, replicationFactor: opts.nodes })
    // every partition's leader known (and its preferred replica leading) before the load starts
    await waitForPreferredLeaders(clients[0]!, 'bench', cfg.partitions)
    load = new Load(cfg, opts, clients)
    load.start()
    await sleep(opts.warmup * 1000)
    const s0 = await broker.stats()
    load.swap()
    const requests0 = load.requestsSent
    const t0 = performance.now()
    const b0 = broker.cpuSeconds()
    const c0 = ownCpuSeconds()
    const m0 = machineBusySeconds()
    await sleep(opts.seconds * 1000)
    const w = load.swap()
    const seconds = (performance.now() - t0) / 1000
    const brokerCpu = (broker.cpuSeconds() - b0) / seconds
    const clientCpu = (ownCpuSeconds() - c0) / seconds
    const otherCpu = Math.max(0, (machineBusySeconds() - m0) / seconds - brokerCpu - clientCpu)
    const requests = cfg.mode === 'send-pipe' ? load.requestsSent - requests0 : w.requests
    const memory = broker.memory()
    const s1 = await broker.stats()
    await load.stop()
    if (load.error) throw load.error
    const syncs = s1.walSyncs - s0.walSyncs
    const served = s1.produceRequests - s0.produceRequests
    const lat = Float64Array.from(w.latenciesMs).sort()
    return {
      seconds,
      messagesPerSec: w.messages / seconds,
      mbPerSec: (w.messages * cfg.size) / seconds / 1e6,
      requestsPerSec: requests / seconds,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      fsyncsPerRequest: served > 0 ? syncs / served : NaN,
      walSyncsPerSec: syncs / seconds,
      brokerRssBytes: memory?.rssBytes ?? NaN,
      brokerPeakRssBytes: memory?.hwmBytes ?? NaN,
      brokerCpu,
      clientCpu,
      otherCpu,
    }
  } finally {
    await load?.stop()
    await Promise.all(clients.map((c) => c.close()))
    for (const exit of await broker.stop()) if (exit.code !== 0) process.stderr.write(style.yellow(`  (a broker exited with ${exit.code ?? exit.signal})\n`))
    if (broker.warnings.length > 0) process.stderr.write(style.yellow(`  broker warnings:\n    ${broker.warnings.slice(0, 5).join('\n    ')}\n`))
  }
}

/** Waits (up to 10 s) until every partition of `topic` is led by its preferred replica (the first). */
async function waitForPreferredLeaders(client: Client, topic: string, partitions: number): Promise<void> {
  const until = performance.now() + 10_000
  while (performance.now() < until) {
    const md = await client.metadata([topic])
    const ps = md.topics[0]?.partitions ?? []
    if (ps.length === partitions && ps.every((p) => p.leader !== null && p.leader === p.replicas[0])) return
    await sleep(50)
  }
}

function resultOf(cfg: Config, opts: Options, runs: RunStats[], failures: string[]): ConfigResult {
  const med = (f: (r: RunStats) => number): number => median(runs.map(f).filter((x) => !Number.isNaN(x)))
  const result: ConfigResult = {
    ...cfg,
    producers: clientsFor(cfg.mode, opts.producers),
    runs,
    failures,
    messagesPerSec: runs.length > 0 ? spreadOf(runs.map((r) => r.messagesPerSec)) : { median: NaN, min: NaN, max: NaN, spread: NaN },
    mbPerSec: med((r) => r.mbPerSec),
    messagesPerRequest: med((r) => r.messagesPerSec) / med((r) => r.requestsPerSec),
    fsyncsPerRequest: med((r) => r.fsyncsPerRequest),
    p50Ms: med((r) => r.p50Ms),
    p99Ms: med((r) => r.p99Ms),
    brokerRssBytes: med((r) => r.brokerRssBytes),
    brokerPeakRssBytes: Math.max(...runs.map((r) => r.brokerPeakRssBytes)),
    brokerCpu: med((r) => r.brokerCpu),
    clientCpu: med((r) => r.clientCpu),
    otherCpu: med((r) => r.otherCpu),
    goals: [],
  }
  return runs.length > 0 ? { ...result, goals: goalsFor(result, opts.nodes) } : result
}

/** The issue's throughput goals that apply to a configuration (100-byte messages only). */
/**
 * The issues' goals for 100-byte messages: one node's (the storage issue), or a 3-node
 * cluster's at replication factor 3 (the cluster issue: 5x NATS JetStream R3 for batches).
 */
const GOALS = {
  single: { batch: 500_000, sendPipe: 300_000, sendSeq: 2_800, sendSeqP50Ms: 0.35 },
  cluster: { batch: 250_000, sendPipe: 200_000, sendSeq: 1_500, sendSeqP50Ms: 0.7 },
} as const

function goalsFor(r: ConfigResult, nodes: number): GoalCheck[] {
  if (r.size !== 100) return []
  const g = nodes === 1 ? GOALS.single : GOALS.cluster
  const rate = r.messagesPerSec.median
  const goals: GoalCheck[] = []
  if ((r.mode === 'batch-seq' || r.mode === 'batch-pipe') && r.batch === 1000 && r.partitions === 1) {
    goals.push({ goal: `>= ${fmtInt(g.batch)} msgs/s`, met: rate >= g.batch })
  }
  if (r.mode === 'send-pipe' && r.producers === 4) goals.push({ goal: `>= ${fmtInt(g.sendPipe)} msgs/s`, met: rate >= g.sendPipe })
  if (r.mode === 'send-seq' && r.partitions === 1) {
    goals.push({ goal: `>= ${fmtInt(g.sendSeq)}/s`, met: rate >= g.sendSeq }, { goal: `p50 <= ${g.sendSeqP50Ms} ms`, met: r.p50Ms <= g.sendSeqP50Ms })
  }
  return goals
}

// ---- idle partitions -----------------------------------------------------------------------------

interface IdleResult {
  readonly broker: CodeKind
  readonly partitions: number
  /** Before the topic exists (controller only, workers started). */
  readonly emptyRssBytes: number
  /** Median of samples after the partitions settled. */
  readonly idleRssBytes: number
  readonly perPartitionBytes: number
  /** CPU cores the idle broker uses (ticks, heartbeats, timers). */
  readonly idleCpu: number
  readonly met: boolean
}

async function measureIdle(partitions: number, opts: Options, kind: CodeKind): Promise<IdleResult> {
  const compiledMain = kind === 'compiled' ? (await compiledBroker()).main : undefined
  const broker = await spawnBroker({ compiledMain })
  const client = new ClientImpl({ brokers: [broker.address] })
  try {
    await sleep(1000)
    const empty = broker.memory()!.rssBytes
    await client.admin().createTopic({ name: 'idle', partitions })
    await client.close()
    await sleep(opts.quick ? 1000 : 3000)
    const samples: number[] = []
    const cpu0 = broker.cpuSeconds()
    const t0 = performance.now()
    for (let i = 0; i < (opts.quick ? 3 : 6); i++) {
      await sleep(500)
      samples.push(broker.memory()!.rssBytes)
    }
    const idleCpu = (broker.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000)
    const idle = median(samples)
    return { broker: kind, partitions, emptyRssBytes: empty, idleRssBytes: idle, perPartitionBytes: (idle - empty) / partitions, idleCpu, met: idle < 300e6 }
  } finally {
    await client.close()
    await broker.stop()
  }
}

// ---- output ---------------------------------------------------------------------------------------

const MB = (b: number): string => (Number.isFinite(b) ? (b / 1e6).toFixed(0) : '-')

const COLUMNS: Column[] = [
  { title: 'size', align: 'right' },
  { title: 'workers', align: 'right' },
  { title: 'parts', align: 'right' },
  { title: 'mode', align: 'left' },
  { title: 'batch', align: 'right' },
  { title: 'msgs/req', align: 'right' },
  { title: 'fsyncs/req', align: 'right' },
  { title: 'msgs/s', align: 'right' },
  { title: 'spread', align: 'right' },
  { title: 'MB/s', align: 'right' },
  { title: 'p50 ms', align: 'right' },
  { title: 'p99 ms', align: 'right' },
  { title: 'RSS MB', align: 'right' },
  { title: 'broker cpu', align: 'right' },
  { title: 'client cpu', align: 'right' },
  { title: 'other cpu', align: 'right' },
  { title: 'goal', align: 'left' },
]

function goalText(r: ConfigResult, color: boolean): string {
  return r.goals
    .map((g) => {
      const s = `${g.met ? 'PASS' : 'FAIL'} ${g.goal}`
      return color ? (g.met ? style.green(s) : style.red(s)) : s
    })
    .join(', ')
}

function rowOf(r: ConfigResult, color: boolean): string[] {
  return [
    r.size === 1024 ? '1 KiB' : `${r.size} B`,
    String(r.workers),
    String(r.partitions),
    r.mode,
    r.mode === 'send-pipe' ? 'auto' : String(r.batch),
    r.messagesPerRequest >= 10 ? fmtInt(r.messagesPerRequest) : r.messagesPerRequest.toFixed(1),
    Number.isFinite(r.fsyncsPerRequest) ? r.fsyncsPerRequest.toFixed(2) : '-',
    color ? style.bold(fmtInt(r.messagesPerSec.median)) : fmtInt(r.messagesPerSec.median),
    fmtPct(r.messagesPerSec.spread),
    fmtMB(r.mbPerSec * 1e6),
    fmtMs(r.p50Ms),
    fmtMs(r.p99Ms),
    MB(r.brokerRssBytes),
    r.brokerCpu.toFixed(2),
    r.clientCpu.toFixed(2),
    r.otherCpu.toFixed(2),
    r.failures.length > 0 ? `${goalText(r, color)}${r.goals.length > 0 ? '; ' : ''}${r.failures.length} run(s) failed` : goalText(r, color),
  ]
}

const IDLE_COLUMNS: Column[] = [
  { title: 'broker', align: 'left' },
  { title: 'partitions', align: 'right' },
  { title: 'RSS empty MB', align: 'right' },
  { title: 'RSS idle MB', align: 'right' },
  { title: 'per partition KB', align: 'right' },
  { title: 'idle cpu', align: 'right' },
  { title: 'goal', align: 'left' },
]

function idleRow(r: IdleResult, color: boolean): string[] {
  const goal = `${r.met ? 'PASS' : 'FAIL'} < 300 MB`
  return [
    r.broker === 'tsx' ? 'tsx (from source)' : 'compiled JS',
    String(r.partitions),
    MB(r.emptyRssBytes),
    MB(r.idleRssBytes),
    fmtInt(r.perPartitionBytes / 1e3),
    r.idleCpu.toFixed(3),
    color ? (r.met ? style.green(goal) : style.red(goal)) : goal,
  ]
}

function configsOf(opts: Options): Config[] {
  const out: Config[] = []
  for (const size of opts.sizes) {
    for (const workers of opts.workers) {
      for (const partitions of opts.partitions) {
        for (const mode of opts.modes) {
          if (mode === 'send-seq') {
            if (partitions === opts.partitions[0]) out.push({ size, workers, partitions, mode, batch: 1 })
          } else if (mode === 'send-pipe') out.push({ size, workers, partitions, mode, batch: 0 })
          else for (const batch of opts.batches) out.push({ size, workers, partitions, mode, batch })
        }
      }
    }
  }
  return out
}

function describeConfig(c: Config): string {
  const size = c.size === 1024 ? '1 KiB' : `${c.size} B`
  return `${size.padStart(6)}  ${c.workers}w  ${String(c.partitions).padStart(2)} partition${c.partitions === 1 ? ' ' : 's'}  ${c.mode.padEnd(10)}  ${c.mode === 'send-pipe' ? 'auto' : String(c.batch).padStart(4)}`
}

// ---- main --------------------------------------------------------------------------------------------

/** The Client class of the code under test (compiled or source, per --code). */
let ClientImpl: typeof Client

async function main(): Promise<void> {
  const opts = parseOptions()
  ClientImpl = (await importCode<typeof import('../src/client/index.js')>(opts.code, 'src/client/index')).Client
  const env = environment()
  const git = gitState()
  const configs = configsOf(opts)
  // one run: the broker's start and stop (~1.5 s) + warm-up + the timed window
  const perRun = opts.warmup + opts.seconds + 1.5
  console.log(style.bold('raftmq produce bench') + style.dim(' — one node in a child process, every acknowledgement after a disk sync'))
  console.log(style.dim(`  ${describeEnvironment(env)}`))
  console.log(style.dim(`  tree at ${git.commit}${git.dirty.length > 0 ? ` with ${git.dirty.length} files changed in src/ and workers/` : ''}; raftmq's code (broker and client) ${opts.code === 'compiled' ? 'compiled by tsc' : 'from source under tsx'}`))
  console.log(
    style.dim(
      `  ${configs.length} configurations x ${opts.runs} interleaved rounds of (a fresh broker, ${opts.warmup}s warm-up, ${opts.seconds}s timed): about ${Math.ceil((configs.length * opts.runs * perRun) / 60)} min`,
    ),
  )
  console.log(
    style.dim(
      `  pipelined: ${opts.producers} producers; batch-pipe ${opts.depth} requests in flight each; send-pipe ${opts.window} sends outstanding each, lingerMs ${opts.lingerMs}, maxInFlight ${opts.maxInFlight}`,
    ),
  )
  console.log()
  const runs = configs.map((): RunStats[] => [])
  const failures = configs.map((): string[] => [])
  const width = String(configs.length).length
  for (let round = 0; round < opts.runs; round++) {
    for (const [i, cfg] of configs.entries()) {
      process.stdout.write(style.dim(`  round ${round + 1}/${opts.runs} [${String(i + 1).padStart(width)}/${configs.length}] `) + describeConfig(cfg) + '  ')
      if (opts.quietWait > 0) await waitForQuiet(opts.quietCores, opts.quietWait * 1000, (c) => process.stdout.write(style.yellow(`(waiting: others use ${c.toFixed(1)} cores) `)))
      try {
        const r = await measureRun(cfg, opts)
        runs[i]!.push(r)
        console.log(
          `${style.bold(fmtInt(r.messagesPerSec).padStart(9))} msgs/s  p50 ${fmtMs(r.p50Ms)} ms  p99 ${fmtMs(r.p99Ms)} ms  ${Number.isFinite(r.fsyncsPerRequest) ? r.fsyncsPerRequest.toFixed(2) : '-'} fsyncs/req  ${style.dim(`other cpu ${r.otherCpu.toFixed(2)}`)}`,
        )
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err)
        failures[i]!.push(message)
        console.log(style.red(`failed: ${message.split('\n')[0]}`))
      }
    }
  }
  const results = configs.map((cfg, i) => resultOf(cfg, opts, runs[i]!, failures[i]!))
  const idle: IdleResult[] = []
  if (opts.idlePartitions > 0) {
    console.log()
    // both ways of running the broker (a full run), or the one the run used (--quick)
    const kinds: CodeKind[] = opts.quick ? [opts.code] : ['tsx', 'compiled']
    for (const kind of kinds) {
      process.stdout.write(style.dim(`  idle: ${opts.idlePartitions} partitions, broker ${kind === 'tsx' ? 'from source (tsx)' : 'compiled to JavaScript'} ... `))
      if (opts.quietWait > 0) await waitForQuiet(opts.quietCores, opts.quietWait * 1000)
      const r = await measureIdle(opts.idlePartitions, opts, kind)
      idle.push(r)
      console.log(`${MB(r.idleRssBytes)} MB`)
    }
  }

  console.log()
  console.log(textTable(COLUMNS, results.map((r) => rowOf(r, true))))
  if (idle.length > 0) {
    console.log()
    console.log(textTable(IDLE_COLUMNS, idle.map((r) => idleRow(r, true))))
  }
  console.log()
  console.log(style.dim(LEGEND))
  const checks = [...results.flatMap((r) => r.goals.map((g) => ({ where: describeConfig(r).replace(/\s+/g, ' ').trim(), ...g }))), ...idle.map((r) => ({ where: `idle ${r.partitions} partitions (${r.broker})`, goal: '< 300 MB RSS', met: r.met }))]
  if (checks.length > 0) {
    console.log()
    console.log(style.bold('Goals') + style.dim(' (reported, not asserted)'))
    for (const c of checks) console.log(`  ${c.met ? style.green('PASS') : style.red('FAIL')}  ${c.goal.padEnd(18)} ${style.dim(c.where)}`)
  }

  if (opts.save) {
    const date = new Date().toISOString()
    const json = { bench: 'produce', date, environment: env, git, options: opts, unit: 'acknowledged (durable) messages per second', results, idle }
    const md = [
      '# produce bench',
      '',
      `${date}; ${describeEnvironment(env)}. Tree at ${git.commit}${git.dirty.length > 0 ? ` plus uncommitted changes to ${git.dirty.join(', ')}` : ''}.`,
      '',
      `${opts.nodes === 1 ? 'One raftmq node in a child process' : `A cluster of ${opts.nodes} raftmq nodes on loopback, each in a child process, every partition replicated ${opts.nodes} ways (an acknowledgement waits for a majority of replicas to have fsynced it)`} (raftmq's code, the broker's and the load generator's client, ${opts.code === 'compiled' ? 'compiled by tsc, as `npm start` runs it' : 'from source under tsx'}; a fresh broker and data directory per run, the worker threads of the \`workers\` column), ` +
        'every acknowledgement after its WAL fsync; the load generator is the bench process (public Client/Producer over loopback TCP). ' +
        `${opts.runs} interleaved rounds (every configuration once per round), each run ${opts.seconds}s after ${opts.warmup}s warm-up; medians over runs. ` +
        `Pipelined modes: ${opts.producers} producers; batch-pipe ${opts.depth} requests in flight each; send-pipe ${opts.window} send() calls outstanding each ` +
        `(lingerMs ${opts.lingerMs}, maxInFlight ${opts.maxInFlight}). Run with \`npm run bench:produce\`${opts.quick ? ' -- --quick' : ''}.`,
      '',
      markdownTable(COLUMNS, results.map((r) => rowOf(r, false))),
      '',
      ...(idle.length > 0 ? ['Idle partitions (one topic; RSS of the broker process, worker threads included):', '', markdownTable(IDLE_COLUMNS, idle.map((r) => idleRow(r, false))), ''] : []),
      LEGEND,
      '',
    ].join('\n')
    const files = saveResults(opts.nodes === 1 ? 'produce' : `produce-rf${opts.nodes}`, json, md)
    console.log()
    console.log(style.dim(`Wrote ${files.join(' and ')}`))
  }
}

const LEGEND = `size: value bytes per message. workers: the broker's worker threads. parts: partitions of the topic.
batch: messages per partition per request (send-pipe: chosen by the producer; msgs/req shows what it chose).
fsyncs/req: WAL syncs (all threads) per produce request, both as the node counted them over the timed run
(SIGUSR2 before and after). msgs/s: acknowledged messages per second, median of runs; spread: (max - min) /
median. MB/s: value bytes. p50/p99: acknowledgement latency, per request (sendBatch) or per message (send).
RSS: broker resident memory at the end of a run. cpu: cores used on average by the broker process, by the
load generator, and by everything else on the machine (other work on a shared machine: figures with high
"other" are low and noisy).`

await main()
