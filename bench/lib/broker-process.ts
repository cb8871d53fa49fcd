/**
 * bench/lib/broker-process.ts — a raftmq broker in a child process, for benchmarks that
 * want the broker's own memory and CPU apart from the load generator's.
 *
 * The child is `node --import tsx bench/lib/broker-main.ts` — what `raftmq start` runs
 * (resolveConfig + startNode), without the CLI — on a fresh temporary data directory and
 * an ephemeral port, which it learns from the node's "raftmq node started" log line. While it runs, its resident memory
 * (VmRSS, VmHWM from /proc/<pid>/status, worker threads included: they share the
 * process) and CPU time (utime + stime of all its threads, /proc/<pid>/stat) can be
 * read at any moment, and so can what the node counted itself (`stats()`: SIGUSR2, which
 * src/broker/node.ts runNodeProcess answers with one stdout line `raftmq stats {json}`),
 * its open file descriptors (/proc/<pid>/fd) and threads. `stop()` sends SIGINT (a clean
 * shutdown: databases closed, a --cpu-prof profile written) and removes the data
 * directory, unless the caller gave its own (`dataDir`: a restart on the same data).
 *
 * `compiledBroker()` builds src/ with tsc into a temporary folder once, so a broker can
 * also run as plain JavaScript (what `npm start` runs from dist/), without tsx's loader
 * in the main thread and in every worker.
 *
 * Imports node modules and ./report only.
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createInterface } from 'node:readline'
import { createServer } from 'node:net'
import { REPO_DIR, clockTicksPerSecond } from './report.js'

/** What a node counted since it started (src/broker/node.ts RunningNode.stats). */
export interface NodeStats {
  /** Durable WAL commits, each one write and one fdatasync, of every thread. */
  readonly walSyncs: number
  readonly produceRequests: number
}

export interface BrokerProcess {
  readonly pid: number
  /** host:port for Client({ brokers }) */
  readonly address: string
  readonly dataDir: string
  /** Milliseconds from spawning the process to its "raftmq node started" line (every topic open, listening). */
  readonly startMs: number
  /** The node's own counters (SIGUSR2; rejects after 10 s without an answer). */
  stats(): Promise<NodeStats>
  /** Open file descriptors of the broker process (/proc/<pid>/fd); NaN once it exited. */
  openFds(): number
  /** Threads of the broker process (/proc/<pid>/status Threads); NaN once it exited. */
  threads(): number
  /** Resident and peak resident memory of the broker process, in bytes; null once it exited. */
  memory(): { rssBytes: number; hwmBytes: number } | null
  /** CPU seconds the broker used so far (user + system, all threads). */
  cpuSeconds(): number
  /** Lines the broker logged at warn level or above (capped), for error reports. */
  readonly warnings: string[]
  /** Clean shutdown (SIGINT), then the data directory is removed (unless it was the caller's). */
  stop(): Promise<{ code: number | null; signal: string | null }>
  /** kill -9; the data directory stays (a restart on it is the caller's: spawnBroker with `dataDir`). */
  kill(): Promise<void>
}

/**
 * How raftmq's own code runs, in the broker and in the bench's client alike: compiled by
 * tsc to plain JavaScript (as `npm start` and an application using the package run it),
 * or from source under tsx (as in development; esbuild's `__name` helper then runs
 * wherever a named function is created, which makes per-record loops several times
 * slower).
 */
export type CodeKind = 'compiled' | 'tsx'

export function codeKind(s: string): CodeKind {
  if (s !== 'tsx' && s !== 'compiled') throw new Error(`--code: expected compiled or tsx, got "${s}"`)
  return s
}

/**
 * Imports one of raftmq's modules as `kind` says: `path` is relative to the repository,
 * without extension (e.g. 'src/client/index'). Type it with `typeof import(...)` of the
 * source module; the compiled one has the same shape.
 */
export async function importCode<T>(kind: CodeKind, path: string): Promise<T> {
  const file = kind === 'compiled' ? join((await compiledBroker()).dir, 'dist', `${path}.js`) : join(REPO_DIR, `${path}.ts`)
  return (await import(pathToFileURL(file).href)) as T
}

export interface BrokerSpawnOptions {
  readonly workers?: number
  readonly tickMs?: number
  /** Passes --cpu-prof --cpu-prof-dir=<dir> to the broker's node (one profile per thread). */
  readonly cpuProfDir?: string
  /** Run this compiled launcher (from compiledBroker()) instead of bench/lib/broker-main.ts under tsx. */
  readonly compiledMain?: string
  readonly startTimeoutMs?: number
  /** Run on this data directory (kept at stop) instead of a fresh temporary one. */
  readonly dataDir?: string
  /** More settings (RawConfig keys, src/broker/config.ts) over the defaults: a cluster's peers. */
  readonly config?: Readonly<Record<string, string>>
}

const LAUNCHER = join(REPO_DIR, 'bench', 'lib', 'broker-main.ts')

export async function spawnBroker(opts: BrokerSpawnOptions = {}): Promise<BrokerProcess> {
  const ownDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'raftmq-bench-')))
  const spawnedAt = performance.now()
  const nodeArgs: string[] = []
  if (opts.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`)
  if (opts.compiledMain) nodeArgs.push(opts.compiledMain)
  else nodeArgs.push('--import', 'tsx', LAUNCHER)
  const config: Record<string, string> = { dataDir, listen: '127.0.0.1:0', logLevel: 'info' }
  if (opts.workers !== undefined) config.workers = String(opts.workers)
  if (opts.tickMs !== undefined) config.tickMs = String(opts.tickMs)
  Object.assign(config, opts.config)
  const args = [...nodeArgs, JSON.stringify(config)]
  const child = spawn(process.execPath, args, { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'pipe'] })
  const warnings: string[] = []
  const statsWaiters: Array<(s: NodeStats) => void> = []
  const stderr: string[] = []
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (s: string) => {
    if (stderr.length < 200) stderr.push(s)
  })
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the broker did not start within ${opts.startTimeoutMs ?? 60_000} ms\n${stderr.join('')}`)), opts.startTimeoutMs ?? 60_000)
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      if (line.startsWith('raftmq stats ')) {
        statsWaiters.shift()?.(JSON.parse(line.slice('raftmq stats '.length)) as NodeStats)
        return
      }
      let entry: { level?: number; msg?: string; listen?: string }
      try {
        entry = JSON.parse(line) as typeof entry
      } catch {
        return
      }
      if ((entry.level ?? 0) >= 40 && warnings.length < 200) warnings.push(line)
      if (entry.msg === 'raftmq node started' && typeof entry.listen === 'string') {
        clearTimeout(timer)
        resolve(entry.listen)
      }
    })
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`the broker exited during start (code ${code}, signal ${signal})\n${stderr.join('')}${warnings.join('\n')}`))
    })
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL')
    if (ownDir) await rm(dataDir, { recursive: true, force: true })
    throw err
  })
  const startMs = performance.now() - spawnedAt
  return brokerHandle({ child, address, dataDir, ownDir, startMs, warnings, statsWaiters, exited })
}

interface HandleParts {
  readonly child: ChildProcess
  readonly address: string
  readonly dataDir: string
  readonly ownDir: boolean
  readonly startMs: number
  readonly warnings: string[]
  /** Resolvers of stats() calls, oldest first: the node answers SIGUSR2s in order. */
  readonly statsWaiters: Array<(s: NodeStats) => void>
  readonly exited: Promise<{ code: number | null; signal: string | null }>
}

function brokerHandle(h: HandleParts): BrokerProcess {
  const { child, address, dataDir, ownDir, startMs, warnings, statsWaiters, exited } = h
  const pid = child.pid!
  let stopped: Promise<{ code: number | null; signal: string | null }> | null = null
  return {
    pid,
    address,
    dataDir,
    startMs,
    warnings,
    stats() {
      return new Promise<NodeStats>((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = statsWaiters.indexOf(answer)
          if (i >= 0) statsWaiters.splice(i, 1)
          reject(new Error('the broker did not answer SIGUSR2 with a "raftmq stats" line within 10 s'))
        }, 10_000)
        const answer = (s: NodeStats): void => {
          clearTimeout(timer)
          resolve(s)
        }
        statsWaiters.push(answer)
        child.kill('SIGUSR2')
      })
    },
    openFds() {
      try {
        return readdirSync(`/proc/${pid}/fd`).length
      } catch {
        return NaN
      }
    },
    threads() {
      try {
        return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
      } catch {
        return NaN
      }
    },
    memory() {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8')
        const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
        return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') }
      } catch {
        return null
      }
    },
    cpuSeconds() {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        // fields after "(comm)": state is field 3, utime 14, stime 15
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        return (Number(f[11]) + Number(f[12])) / clockTicksPerSecond()
      } catch {
        return NaN
      }
    },
    async kill() {
      child.kill('SIGKILL')
      await exited
    },
    stop() {
      stopped ??= (async () => {
        child.kill('SIGINT')
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
        const r = await exited
        clearTimeout(timer)
        if (ownDir) await rm(dataDir, { recursive: true, force: true })
        return r
      })()
      return stopped
    },
  }
}

/** A TCP port nothing listens on right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a !== null ? a.port : 0
      s.close(() => (port > 0 ? resolve(port) : reject(new Error('no port from the kernel'))))
    })
  })
}

/** The brokers of one benchmark run: a single node, or every node of a cluster, measured together. */
export interface Brokers {
  readonly nodes: readonly BrokerProcess[]
  /** Every node's client address, for Client({ brokers }). */
  readonly addresses: readonly string[]
  /** What the nodes counted, summed. */
  stats(): Promise<NodeStats>
  /** CPU seconds of every node, summed. */
  cpuSeconds(): number
  /** Resident memory of every node, summed (null once one exited). */
  memory(): { rssBytes: number; hwmBytes: number } | null
  readonly warnings: string[]
  stop(): Promise<Array<{ code: number | null; signal: string | null }>>
  /** kill -9 node `i` (0-based); its data stays for `restart`. */
  kill(i: number): Promise<void>
  /** Starts node `i` again on its data directory and ports; resolves once it serves. */
  restart(i: number): Promise<void>
}

/**
 * `n` brokers: one node (n = 1) or a cluster of n nodes on loopback, each in its own child
 * process with its own data directory, started together (each lists every node in
 * --peers).
 */
export async function spawnBrokers(n: number, opts: BrokerSpawnOptions = {}): Promise<Brokers> {
  let nodes: BrokerProcess[]
  // every node on a data directory of this run's (removed at stop), so a killed node restarts on it
  const root = await mkdtemp(join(tmpdir(), 'raftmq-bench-'))
  const specs: BrokerSpawnOptions[] = []
  if (n === 1) {
    specs.push({ ...opts, dataDir: join(root, 'node-1') })
  } else {
    const ports: { client: number; peer: number }[] = []
    for (let i = 0; i < n; i++) ports.push({ client: await freePort(), peer: await freePort() })
    const peers = ports.map((p, i) => `${i + 1}@127.0.0.1:${p.peer}`).join(',')
    ports.forEach((p, i) => specs.push({ ...opts, dataDir: join(root, `node-${i + 1}`), config: { ...opts.config, nodeId: String(i + 1), listen: `127.0.0.1:${p.client}`, peers } }))
  }
  {
    const started = await Promise.allSettled(specs.map((spec) => spawnBroker(spec)))
    nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    const failed = started.find((r) => r.status === 'rejected')
    if (failed) {
      await Promise.all(nodes.map((b) => b.stop()))
      await rm(root, { recursive: true, force: true })
      throw (failed as PromiseRejectedResult).reason
    }
  }
  const addresses = nodes.map((b) => b.address)
  return {
    get nodes() {
      return nodes
    },
    addresses,
    async stats() {
      const all = await Promise.all(nodes.map((b) => b.stats()))
      return { walSyncs: all.reduce((a, s) => a + s.walSyncs, 0), produceRequests: all.reduce((a, s) => a + s.produceRequests, 0) }
    },
    cpuSeconds: () => nodes.reduce((a, b) => a + b.cpuSeconds(), 0),
    memory() {
      const all = nodes.map((b) => b.memory())
      if (all.some((m) => m === null)) return null
      return { rssBytes: all.reduce((a, m) => a + m!.rssBytes, 0), hwmBytes: all.reduce((a, m) => a + m!.hwmBytes, 0) }
    },
    get warnings() {
      return nodes.flatMap((b) => b.warnings)
    },
    async stop() {
      const exits = await Promise.all(nodes.map((b) => b.stop()))
      await rm(root, { recursive: true, force: true })
      return exits
    },
    kill: (i) => nodes[i]!.kill(),
    async restart(i) {
      nodes = [...nodes]
      nodes[i] = await spawnBroker(specs[i]!)
    },
  }
}

/**
 * Compiles src/ and workers/ with tsc into a temporary folder (with node_modules linked
 * and "type": "module"), once per process, removed when the process exits; returns a
 * launcher like broker-main.ts for it.
 */
let compiled: Promise<{ main: string; dir: string }> | null = null
export function compiledBroker(): Promise<{ main: string; dir: string }> {
  compiled ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raftmq-bench-build-'))
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
    const tsc = join(REPO_DIR, 'node_modules', 'typescript', 'bin', 'tsc')
    // type errors still emit JavaScript (the tree may be mid-edit); only a missing output is fatal
    spawnSync(process.execPath, [tsc, '-p', join(REPO_DIR, 'tsconfig.json'), '--outDir', join(dir, 'dist'), '--declaration', 'false', '--sourceMap', 'false'], {
      cwd: REPO_DIR,
      stdio: 'ignore',
    })
    symlinkSync(join(REPO_DIR, 'node_modules'), join(dir, 'node_modules'), 'dir')
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
    const node = join(dir, 'dist', 'src', 'broker', 'node.js')
    if (!existsSync(node)) throw new Error(`tsc did not produce ${node}`)
    // the same launcher as broker-main.ts, as JavaScript against the compiled broker
    // (runNodeProcess: clean stop on SIGINT/SIGTERM, stats on SIGUSR2)
    const main = join(dir, 'broker-main.mjs')
    writeFileSync(
      main,
      [
        "import { resolveConfig } from './dist/src/broker/config.js'",
        "import { runNodeProcess } from './dist/src/broker/node.js'",
        "const config = resolveConfig(JSON.parse(process.argv[2] ?? '{}'))",
        "if (!config.ok) { process.stderr.write(`broker-main: ${config.error.message}\\n`); process.exit(2) }",
        "await runNodeProcess(config.value, 'broker-main')",
        '',
      ].join('\n'),
    )
    return { main, dir }
  })()
  return compiled
}
