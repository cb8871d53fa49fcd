/**
 * bench/storage.ts — what the storage engine's pieces cost on a real disk
 * (`npm run bench:storage`; DESIGN §4).
 *
 * Three sections, on a temporary directory of a disk file system (never tmpfs: the OS
 * temp dir if it is on disk, else /var/tmp, else the repository's own file system):
 *
 * (a) wal — the synced commit of the per-worker write-ahead log (src/storage/wal: `Wal`
 *     over `NodeWalFs`, add() then commit(): one writev and one fdatasync on this thread),
 *     for commits of 1 record of 100 B, 10 records of 100 B from 10 groups, 1000 x 100 B,
 *     one 116 KB record (a 1000-message batch) and one 1 MiB record. One WAL serves every
 *     run of the section, its default 64 MiB segments, warmed up first so that, as in a
 *     long-running worker, rolls find the next segment prepared (recycled) and sealed
 *     segments are retired at once (outside the timed commit). Beside each shape, the
 *     same bytes (the WAL's sectors: 512 B each, carrying 492 B of frames, 33 B per
 *     record plus a 33 B COMMIT frame) written by two bare loops: `append` (fs.writeSync + fs.fdatasyncSync
 *     to the end of a plain, growing file) and `overwrite` (the same at increasing
 *     positions inside a pre-allocated, synced 64 MiB file, wrapping round): what the
 *     pre-allocation is worth, and what the WAL adds over its floor. Every commit of
 *     every loop is followed by a setImmediate turn, as the worker loop's turns are.
 *     Reported: commits/s over the run (wall time), records/s, MB/s of payload, p50/p99
 *     of one add+commit (or write+sync).
 * (b) store — unsynced writes into one partition store (src/storage/group-store.ts:
 *     `GroupStore`, LevelDB with GROUP_STORE_LEVELDB): putRecord then flush({ sync: false }),
 *     one flush at a time, for batches of 116 KB, of 100 B, and 100 batches of 100 B per
 *     flush (what coalescing gives). Fresh store per run. Reported: flushes/s, MB/s,
 *     p50/p99 of one flush, and disk bytes per payload byte during the run (LevelDB's log
 *     and whatever memtable flushes and compactions ran meanwhile).
 * (c) amp — write amplification of a produce stream through both stores, for the
 *     LevelDB options of GROUP_STORE_LEVELDB (cacheSize 1 MiB, writeBufferSize 4 MiB,
 *     compression off) against compression on, writeBufferSize 16 MiB and 64 MiB. What
 *     one worker does for G partitions (a model of the broker's path, no Raft or
 *     network): each turn adds an Entry record (the batch + a 32 B command header) and a
 *     HardState record per group to the WAL and commits once (synced); then each group
 *     stores its batch (putRecord, unsynced, one flush in flight per group and the rest
 *     coalesced behind it, as src/replica/partition-replica.ts does), saves its applied
 *     state every 50,000 entries or 5 s (a blob of 45 + 24 B per retained batch, the
 *     size of the partition state machine's snapshot), and retention (--amp-retain-mb
 *     per group) deletes the oldest batches. Each sealed WAL segment triggers a
 *     checkpoint round (every group's store written and synced, Checkpoint records
 *     committed, the segment retired), as src/replica/group-runtime.ts does. Two
 *     streams: 116 KB batches to 4 groups, and 1 KiB batches to 16 groups; values are
 *     random bytes (incompressible, like producer-compressed batches) or JSON-like text
 *     (an uncompressed producer's; the client's default is no compression).
 *     Counted from the start of the stream until the stores are settled: a clean stop's
 *     checkpoints, then waiting (up to 60 s) until the process writes nothing for 1 s
 *     (compactions done), then closing and reopening every store once (LevelDB writes
 *     what its log still held as a table then: the memtable flush a large write buffer
 *     only defers) and waiting again. The partition stores' bytes are /proc/self/io
 *     write_bytes of every thread but the main one (LevelDB writes on libuv's pool and
 *     its own compaction thread, both this process's); of them, what the kernel never
 *     wrote because the file was deleted first (cancelled_write_bytes: short-lived
 *     LevelDB logs and tables, which depends on spare memory) is shown apart. The WAL's
 *     bytes are the 4 KiB pages each commit touches (a partly filled page is written
 *     again by the next commit's sync), not the main thread's write_bytes, shown beside
 *     it: this kernel (6.18, ext4 large folios) accounts a whole folio, up to 2 MiB, each
 *     time a commit re-dirties one, while the device writes only the dirty blocks
 *     (checked against /proc/diskstats on a quiet disk: 3.2x accounted, 1.01x written,
 *     for 475 KB commits into a recycled segment). The device's own count (every
 *     process's writes) is a column too, for a quiet machine. Without /proc/self/io the
 *     stores' bytes fall back to the size of the files left (which misses every
 *     rewrite). Reported: payload MB/s of the stream (until every store write finished),
 *     seconds to settle, disk bytes per payload byte, WAL and stores. A longer stream
 *     (more data kept per group) means more LevelDB levels and more amplification:
 *     compare rows of one run.
 *
 * Runs are interleaved (round 1 of every configuration, then round 2, ...) so that slow
 * drift of a shared machine touches all alike; tables show medians over rounds and the
 * spread ((max - min) / median) of the throughput. Each row also shows the CPU the rest
 * of the machine used meanwhile (`other cpu`, cores): high values mean noisy figures.
 * raftmq's code runs compiled by tsc (--code compiled, the default, as the other benches)
 * or from source under tsx.
 *
 * Run:
 *   npm run bench:storage
 *   npm run bench:storage -- --quick
 *   npm run bench:storage -- --sections amp --amp-mb 4096 --runs 3
 *   npm run bench:storage -- --help
 */
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, statfsSync, writeSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { codeKind, importCode } from './lib/broker-process.js'
import type { CodeKind } from './lib/broker-process.js'
import {
  REPO_DIR,
  describeEnvironment,
  environment,
  fmtInt,
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

type StorageModule = typeof import('../src/storage/index.js')
type Wal = import('../src/storage/index.js').Wal
type GroupStore = import('../src/storage/index.js').GroupStore
type LevelDbOptions = NonNullable<import('../src/storage/index.js').GroupStoreOptions['leveldb']>

// ---- options -------------------------------------------------------------------------------

const HELP = `Usage: npm run bench:storage -- [options]

The storage engine on a real disk: (a) WAL commits (Wal + NodeWalFs) against a bare
append + fdatasync and an overwrite of a pre-allocated file; (b) unsynced GroupStore
writes; (c) write amplification of a produce stream (WAL + partition stores + LevelDB's
log and compactions) for the default LevelDB options and alternatives.
Results: bench/results/storage.{json,md}.

Options:
  --sections LIST      wal, store, amp (default all)
  --runs N             interleaved rounds of (a) and (b) (default 5)
  --seconds S          length of one timed run in (a) and (b) (default 1)
  --amp-runs N         rounds of (c) (default 3)
  --amp-mb MB          payload of the 116 KB stream in (c); the 1 KiB stream gets a
                       quarter of it (default 1024)
  --amp-retain-mb MB   retention per group in (c), 0 for none (default 64)
  --amp-values LIST    random, text: the values (c) stores (default random,text; text
                       only for the default options and compression on)
  --dir PATH           where the temporary files go (default: the OS temp dir if it is
                       on disk, else /var/tmp, else beside the repository)
  --code KIND          compiled (default): src/ compiled by tsc first; tsx: from source
  --quick              a smoke run: 2 rounds x 0.3 s, (c) 1 round of 96 MB, random values
  --quiet-cores C      before each run, wait until other processes use at most C cores
                       (default 0.5) ...
  --quiet-wait S       ... but at most S seconds (default 10; 0 never waits)
  --no-save            do not write bench/results/storage.{json,md}
  -h, --help           show this help
`

const SECTIONS = ['wal', 'store', 'amp'] as const
type Section = (typeof SECTIONS)[number]
type Values = 'random' | 'text'

interface Options {
  sections: Section[]
  runs: number
  seconds: number
  ampRuns: number
  ampMb: number
  ampRetainMb: number
  ampValues: Values[]
  dir: string | undefined
  code: CodeKind
  quick: boolean
  quietCores: number
  quietWait: number
  save: boolean
}

function parseOptions(): Options {
  const { values: v } = parseArgs({
    options: {
      sections: { type: 'string', default: SECTIONS.join(',') },
      runs: { type: 'string' },
      seconds: { type: 'string' },
      'amp-runs': { type: 'string' },
      'amp-mb': { type: 'string' },
      'amp-retain-mb': { type: 'string', default: '64' },
      'amp-values': { type: 'string' },
      dir: { type: 'string' },
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
  const sections = v.sections.split(',').map((s) => s.trim())
  for (const s of sections) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--sections: unknown section "${s}" (expected ${SECTIONS.join(', ')})`)
  const values = (v['amp-values'] ?? (quick ? 'random' : 'random,text')).split(',').map((s) => s.trim())
  for (const s of values) if (s !== 'random' && s !== 'text') throw new Error(`--amp-values: expected random or text, got "${s}"`)
  return {
    sections: sections as Section[],
    runs: num('runs', v.runs ?? (quick ? '2' : '5'), 1),
    seconds: num('seconds', v.seconds ?? (quick ? '0.3' : '1'), 0.05, false),
    ampRuns: num('amp-runs', v['amp-runs'] ?? (quick ? '1' : '3'), 1),
    ampMb: num('amp-mb', v['amp-mb'] ?? (quick ? '96' : '1024'), 1, false),
    ampRetainMb: num('amp-retain-mb', v['amp-retain-mb'], 0, false),
    ampValues: values as Values[],
    dir: v.dir,
    code: codeKind(v.code),
    quick,
    quietCores: num('quiet-cores', v['quiet-cores'], 0, false),
    quietWait: num('quiet-wait', v['quiet-wait'], 0, false),
    save: !v['no-save'],
  }
}

// ---- the disk ------------------------------------------------------------------------------

const FS_TYPES: Record<number, string> = {
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x01021994: 'tmpfs',
  0x858458f6: 'ramfs',
  0x794c7630: 'overlayfs',
  0x6969: 'nfs',
  0x2fc12fc1: 'zfs',
  0xf2f52010: 'f2fs',
}

function fsTypeOf(dir: string): string {
  try {
    const t = statfsSync(dir).type
    return FS_TYPES[t] ?? `0x${t.toString(16)}`
  } catch {
    return 'unknown'
  }
}

const inMemory = (t: string): boolean => t === 'tmpfs' || t === 'ramfs'

/** The directory the temporary files go under, and its file system. */
function chooseBase(explicit: string | undefined): { dir: string; fsType: string } {
  if (explicit !== undefined) {
    mkdirSync(explicit, { recursive: true })
    const fsType = fsTypeOf(explicit)
    if (inMemory(fsType)) process.stderr.write(style.yellow(`warning: --dir ${explicit} is on ${fsType}: nothing here reaches a disk\n`))
    return { dir: explicit, fsType }
  }
  for (const dir of [tmpdir(), '/var/tmp', join(REPO_DIR, '..')]) {
    if (existsSync(dir) && !inMemory(fsTypeOf(dir))) return { dir, fsType: fsTypeOf(dir) }
  }
  return { dir: REPO_DIR, fsType: fsTypeOf(REPO_DIR) }
}

/**
 * What this process (or, with `thread`, one of its threads) caused to be written to
 * storage (/proc/self/io; null without it): write_bytes, the pages it dirtied, and
 * cancelled_write_bytes, those of files deleted (or truncated) before the kernel wrote
 * them back, which never reached the disk.
 */
function processIo(thread?: number): { written: number; cancelled: number } | null {
  try {
    const io = readFileSync(thread === undefined ? '/proc/self/io' : `/proc/self/task/${thread}/io`, 'utf8')
    const field = (name: string): number | null => {
      const m = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(io)
      return m ? Number(m[1]) : null
    }
    const written = field('write_bytes')
    return written === null ? null : { written, cancelled: field('cancelled_write_bytes') ?? 0 }
  } catch {
    return null
  }
}

/** write_bytes of /proc/self/io; null without it. */
function processDiskBytes(): number | null {
  return processIo()?.written ?? null
}

/** The main thread's id (the WAL's commits are written by it: synchronous calls). */
const MAIN_THREAD = process.pid

/**
 * Bytes written to the block device `dir` is on, by every process (/proc/diskstats,
 * sectors written x 512); null if the device cannot be found (overlay, device mapper).
 */
function deviceWriter(dir: string): (() => number) | null {
  try {
    const dev = statSync(dir).dev
    const major = (dev >> 8) & 0xfff
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00)
    const read = (): number => {
      for (const line of readFileSync('/proc/diskstats', 'utf8').split('\n')) {
        const f = line.trim().split(/\s+/)
        if (Number(f[0]) === major && Number(f[1]) === minor) return Number(f[9]) * 512
      }
      return NaN
    }
    return Number.isFinite(read()) ? read : null
  } catch {
    return null
  }
}

function dirBytes(dir: string): number {
  let n = 0
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const st = statSync(p)
    n += st.isDirectory() ? dirBytes(p) : st.size
  }
  return n
}

/** Waits until the process writes nothing to disk for `quietMs` (at most `timeoutMs`); returns the seconds waited. */
async function settleDisk(quietMs: number, timeoutMs: number): Promise<number> {
  const t0 = performance.now()
  let last = processDiskBytes()
  if (last === null) return 0
  let quietSince = performance.now()
  while (performance.now() - t0 < timeoutMs) {
    await sleep(100)
    const now = processDiskBytes()!
    if (now !== last) {
      last = now
      quietSince = performance.now()
    } else if (performance.now() - quietSince >= quietMs) break
  }
  return Math.max(0, (quietSince - t0) / 1000)
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

async function withTempDir<T>(base: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(base, 'raftmq-bench-storage-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

// ---- payloads ------------------------------------------------------------------------------

const POOL_BYTES = 16 << 20
let randomPool: Buffer | null = null
let textPool: Buffer | null = null

function pool(values: Values): Buffer {
  if (values === 'random') return (randomPool ??= randomBytes(POOL_BYTES))
  if (textPool === null) {
    // JSON-like events, as an application without producer compression sends them
    const events = ['page_view', 'add_to_cart', 'checkout', 'search', 'login', 'logout']
    const parts: string[] = []
    let n = 0
    let seed = 12345
    const rnd = (m: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      return seed % m
    }
    while (n < POOL_BYTES) {
      const s = `{"ts":${1_767_000_000_000 + rnd(1e9)},"user":"u${String(rnd(100000)).padStart(5, '0')}","event":"${events[rnd(events.length)]}","path":"/p/${rnd(5000)}","ms":${rnd(900)}}\n`
      parts.push(s)
      n += s.length
    }
    textPool = Buffer.from(parts.join('')).subarray(0, POOL_BYTES)
  }
  return textPool
}

/** A view of `bytes` bytes of the pool for item k (offsets vary so consecutive items differ). */
function payload(values: Values, k: number, bytes: number): Uint8Array {
  const p = pool(values)
  const off = (k * 40_961) % (p.length - bytes)
  return p.subarray(off, off + bytes)
}

// ---- timing loops --------------------------------------------------------------------------

interface TimedRun {
  readonly seconds: number
  readonly opsPerSec: number
  readonly p50Us: number
  readonly p99Us: number
  /** Cores the rest of the machine used during the run. */
  readonly otherCpu: number
  /** Net disk bytes written during the run (null without /proc/self/io). */
  readonly diskBytes: number | null
  readonly ops: number
}

/**
 * Runs `step` for a 0.1 s warm-up, then for `seconds`, timing each call; after each
 * call `between` runs untimed (retirement, a setImmediate turn).
 */
async function timeSteps(step: () => void | Promise<void>, between: () => void | Promise<void>, seconds: number): Promise<TimedRun> {
  const warmUntil = performance.now() + 100
  while (performance.now() < warmUntil) {
    await step()
    await between()
  }
  const lat: number[] = []
  const disk0 = processDiskBytes()
  const m0 = machineBusySeconds()
  const c0 = ownCpuSeconds()
  const t0 = performance.now()
  const end = t0 + seconds * 1000
  while (performance.now() < end || lat.length < 20) {
    const a = performance.now()
    await step()
    lat.push(performance.now() - a)
    await between()
  }
  const elapsed = (performance.now() - t0) / 1000
  const disk1 = processDiskBytes()
  const otherCpu = Math.max(0, (machineBusySeconds() - m0 - (ownCpuSeconds() - c0)) / elapsed)
  const sorted = Float64Array.from(lat).sort()
  return {
    seconds: elapsed,
    ops: lat.length,
    opsPerSec: lat.length / elapsed,
    p50Us: percentile(sorted, 50) * 1000,
    p99Us: percentile(sorted, 99) * 1000,
    otherCpu,
    diskBytes: disk0 === null || disk1 === null ? null : disk1 - disk0,
  }
}

// ---- (a) WAL commits ------------------------------------------------------------------------

interface WalShape {
  readonly label: string
  readonly records: number
  readonly groups: number
  readonly bytes: number
}

const WAL_SHAPES: readonly WalShape[] = [
  { label: '1 x 100 B', records: 1, groups: 1, bytes: 100 },
  { label: '10 groups x 1 x 100 B', records: 10, groups: 10, bytes: 100 },
  { label: '1000 x 100 B', records: 1000, groups: 1, bytes: 100 },
  { label: '1 x 116 KB', records: 1, groups: 1, bytes: 116 * 1024 },
  { label: '1 x 1 MiB', records: 1, groups: 1, bytes: 1 << 20 },
]

const WAL_KINDS = ['wal', 'overwrite', 'append'] as const
type WalKind = (typeof WAL_KINDS)[number]

/** Disk bytes of one commit of `s`: its 512-byte sectors (the WAL's own arithmetic, format.ts). */
const walCommitBytes = (m: StorageModule, s: WalShape): number => m.commitDiskBytes(Array.from({ length: s.records }, () => s.bytes))

interface WalRow {
  readonly shape: string
  readonly kind: WalKind
  readonly bytesPerCommit: number
  readonly runs: TimedRun[]
  readonly commitsPerSec: Spread
  readonly recordsPerSec: number
  readonly mbPerSec: number
  readonly p50Us: number
  readonly p99Us: number
  readonly otherCpu: number
}

const SEGMENT_BYTES = 64 << 20

class WalSection {
  readonly #m: StorageModule
  readonly #dir: string
  #wal: Wal | null = null
  #seenSeq = 0
  readonly #index = new Map<number, number>()
  #overwriteFd = -1
  #overwritePos = 0
  #k = 0

  constructor(m: StorageModule, dir: string) {
    this.#m = m
    this.#dir = dir
  }

  /** Opens the shared WAL and warms it up: three segments filled and retired, so rolls recycle; and the overwrite file. */
  async open(): Promise<void> {
    const opened = this.#m.Wal.open({ fs: new this.#m.NodeWalFs(), dir: join(this.#dir, 'wal') }, () => {})
    if (!opened.ok) throw new Error(opened.error.message)
    const wal = opened.value.wal
    this.#wal = wal
    this.#seenSeq = wal.activeSeq
    const filler = payload('random', 0, 1 << 20)
    while (wal.activeSeq < 4) {
      wal.add({ group: 0, type: 1, index: this.#next(0), term: 1, payload: filler })
      const r = wal.commit()
      if (!r.ok) throw new Error(r.error.message)
      this.#retire()
      await yieldTurn()
    }
    await this.#waitPrepared()
    // the overwrite baseline's file: zero-filled, synced, its name durable
    const path = join(this.#dir, 'preallocated')
    const fd = openSync(path, 'w+')
    const zeros = Buffer.alloc(1 << 20)
    for (let pos = 0; pos < SEGMENT_BYTES; pos += zeros.length) writeSync(fd, zeros, 0, zeros.length, pos)
    fdatasyncSync(fd)
    const d = openSync(this.#dir, 'r')
    fsyncSync(d)
    closeSync(d)
    this.#overwriteFd = fd
  }

  #next(group: number): number {
    const i = (this.#index.get(group) ?? 0) + 1
    this.#index.set(group, i)
    return i
  }

  /** Retires every sealed segment, as soon as a roll sealed one (the checkpoint is assumed instant). */
  #retire(): void {
    const wal = this.#wal!
    if (wal.activeSeq === this.#seenSeq) return
    this.#seenSeq = wal.activeSeq
    const r = wal.retire(wal.activeSeq - 1)
    if (!r.ok) throw new Error(r.error.message)
  }

  async #waitPrepared(): Promise<void> {
    const until = performance.now() + 30_000
    while (!this.#wal!.nextPrepared && performance.now() < until) await sleep(5)
  }

  async run(shape: WalShape, kind: WalKind, seconds: number): Promise<TimedRun> {
    const bytes = walCommitBytes(this.#m, shape)
    if (kind === 'wal') {
      await this.#waitPrepared()
      const wal = this.#wal!
      const payloads = Array.from({ length: shape.records }, (_, k) => payload('random', this.#k++ + k, shape.bytes))
      const step = (): void => {
        for (let k = 0; k < shape.records; k++) {
          const group = shape.groups > 1 ? 1 + (k % shape.groups) : 1
          wal.add({ group, type: 1, index: this.#next(group), term: 1, payload: payloads[k]! })
        }
        const r = wal.commit()
        if (!r.ok) throw new Error(r.error.message)
      }
      return timeSteps(step, () => {
        this.#retire()
        return yieldTurn()
      }, seconds)
    }
    const buf = Buffer.from(payload('random', this.#k++, bytes))
    if (kind === 'overwrite') {
      const fd = this.#overwriteFd
      const step = (): void => {
        if (this.#overwritePos + bytes > SEGMENT_BYTES) this.#overwritePos = 0
        writeSync(fd, buf, 0, bytes, this.#overwritePos)
        fdatasyncSync(fd)
        this.#overwritePos += bytes
      }
      return timeSteps(step, yieldTurn, seconds)
    }
    // append: a fresh file per run, growing
    const path = join(this.#dir, `append-${this.#k++}`)
    const fd = openSync(path, 'a')
    const d = openSync(this.#dir, 'r')
    fsyncSync(d)
    closeSync(d)
    try {
      const step = (): void => {
        writeSync(fd, buf, 0, bytes)
        fdatasyncSync(fd)
      }
      return await timeSteps(step, yieldTurn, seconds)
    } finally {
      closeSync(fd)
      await rm(path, { force: true })
    }
  }

  async close(): Promise<void> {
    this.#wal?.close()
    await this.#wal?.settled()
    if (this.#overwriteFd >= 0) closeSync(this.#overwriteFd)
  }
}

function walRow(m: StorageModule, shape: WalShape, kind: WalKind, runs: TimedRun[]): WalRow {
  const med = (f: (r: TimedRun) => number): number => median(runs.map(f))
  const commits = spreadOf(runs.map((r) => r.opsPerSec))
  return {
    shape: shape.label,
    kind,
    bytesPerCommit: walCommitBytes(m, shape),
    runs,
    commitsPerSec: commits,
    recordsPerSec: commits.median * shape.records,
    mbPerSec: (commits.median * shape.records * shape.bytes) / 1e6,
    p50Us: med((r) => r.p50Us),
    p99Us: med((r) => r.p99Us),
    otherCpu: med((r) => r.otherCpu),
  }
}

// ---- (b) partition store writes ---------------------------------------------------------------

interface StoreShape {
  readonly label: string
  readonly batchesPerFlush: number
  readonly bytes: number
}

const STORE_SHAPES: readonly StoreShape[] = [
  { label: '116 KB batch', batchesPerFlush: 1, bytes: 116 * 1024 },
  { label: '100 B batch', batchesPerFlush: 1, bytes: 100 },
  { label: '100 x 100 B batches', batchesPerFlush: 100, bytes: 100 },
]

interface StoreRow {
  readonly shape: string
  readonly runs: TimedRun[]
  readonly flushesPerSec: Spread
  readonly batchesPerSec: number
  readonly mbPerSec: number
  readonly p50Us: number
  readonly p99Us: number
  readonly diskPerPayload: number | null
  readonly otherCpu: number
}

async function storeRun(m: StorageModule, base: string, shape: StoreShape, seconds: number): Promise<TimedRun> {
  return withTempDir(base, async (dir) => {
    const opened = await m.GroupStore.open(join(dir, 'store'))
    if (!opened.ok) throw new Error(opened.error.message)
    const store = opened.value.store
    let offset = 0
    let k = 0
    const step = async (): Promise<void> => {
      for (let b = 0; b < shape.batchesPerFlush; b++) {
        store.putRecord(offset, payload('random', k++, shape.bytes))
        offset += 1000
      }
      const r = await store.flush({ sync: false })
      if (!r.ok) throw new Error(r.error.message)
    }
    try {
      return await timeSteps(step, () => {}, seconds)
    } finally {
      await store.close()
    }
  })
}

function storeRow(shape: StoreShape, runs: TimedRun[]): StoreRow {
  const med = (f: (r: TimedRun) => number): number => median(runs.map(f))
  const flushes = spreadOf(runs.map((r) => r.opsPerSec))
  const disk = runs.every((r) => r.diskBytes !== null) ? med((r) => r.diskBytes! / (r.ops * shape.batchesPerFlush * shape.bytes)) : null
  return {
    shape: shape.label,
    runs,
    flushesPerSec: flushes,
    batchesPerSec: flushes.median * shape.batchesPerFlush,
    mbPerSec: (flushes.median * shape.batchesPerFlush * shape.bytes) / 1e6,
    p50Us: med((r) => r.p50Us),
    p99Us: med((r) => r.p99Us),
    diskPerPayload: disk,
    otherCpu: med((r) => r.otherCpu),
  }
}

// ---- (c) write amplification ------------------------------------------------------------------

interface AmpStream {
  readonly label: string
  readonly groups: number
  readonly batchBytes: number
  /** Share of --amp-mb this stream writes. */
  readonly share: number
}

const AMP_STREAMS: readonly AmpStream[] = [
  { label: '116 KB x 4 groups', groups: 4, batchBytes: 116 * 1024, share: 1 },
  { label: '1 KiB x 16 groups', groups: 16, batchBytes: 1024, share: 0.25 },
]

interface AmpVariant {
  readonly label: string
  readonly leveldb: LevelDbOptions
  /** Also run with text values (when --amp-values has text). */
  readonly text: boolean
}

const AMP_VARIANTS: readonly AmpVariant[] = [
  { label: 'default: wb 4 MiB, no compression', leveldb: {}, text: true },
  { label: 'compression on', leveldb: { compression: true }, text: true },
  { label: 'writeBufferSize 16 MiB', leveldb: { writeBufferSize: 16 << 20 }, text: false },
  { label: 'writeBufferSize 64 MiB', leveldb: { writeBufferSize: 64 << 20 }, text: false },
]

interface AmpRun {
  readonly payloadBytes: number
  /** Stream until every store write finished. */
  readonly seconds: number
  readonly mbPerSec: number
  readonly settleSeconds: number
  /** walDiskBytes + storeDiskBytes. */
  readonly diskBytes: number
  /** Written by the stores and the WAL's background work: write_bytes of every thread but the main one. */
  readonly storeDiskBytes: number
  /** Of storeDiskBytes, the bytes of files deleted before write-back (cancelled_write_bytes). */
  readonly cancelledBytes: number
  /** The WAL's commits: the 4 KiB pages each touched (see walAccountedBytes). */
  readonly walDiskBytes: number
  /** write_bytes of the main thread, which writes the WAL's commits (the kernel's accounting). */
  readonly walAccountedBytes: number
  /** Bytes the device wrote meanwhile, every process's (NaN if unknown). */
  readonly deviceBytes: number
  readonly source: 'proc' | 'file sizes'
  readonly otherCpu: number
}

interface AmpRow {
  readonly stream: string
  readonly variant: string
  readonly values: Values
  readonly leveldb: LevelDbOptions
  readonly runs: AmpRun[]
  readonly mbPerSec: Spread
  readonly amplification: number
  readonly walAmplification: number
  readonly storeAmplification: number
  /** Of `amplification`, what never reached the disk (files deleted while in the page cache). */
  readonly cancelledPerPayload: number
  /** The main thread's write_bytes per payload byte: what the kernel accounted for the WAL's commits. */
  readonly walAccountedPerPayload: number
  /** The device's bytes written (every process) per payload byte. */
  readonly devicePerPayload: number
  readonly settleSeconds: number
  readonly otherCpu: number
  readonly source: string
}

/** src/replica/hosted-group.ts: unsynced saves of the group state, whichever comes first. */
const SAVE_EVERY_ENTRIES = 50_000
const SAVE_EVERY_MS = 5_000
/** Bench-side bound: a group's unflushed bytes before the stream waits for its store. */
const UNFLUSHED_BYTES_MAX = 64 << 20
const COMMAND_HEADER_BYTES = 32
const PAGE = 4096

const WalType = { Entry: 1, HardState: 3, Checkpoint: 5, CheckpointBegin: 7 } as const

/** One group of the stream: its store and the bookkeeping the replica would keep. */
class StreamGroup {
  index = 0
  offset = 0
  /** Retained batches, oldest first from `head`: [baseOffset, bytes]. */
  readonly batches: Array<[number, number]> = []
  head = 0
  retainedBytes = 0
  entriesSinceSave = 0
  savedAt = performance.now()
  unflushedBytes = 0
  flushing: Promise<void> | null = null
  again = false
  failure: Error | null = null

  constructor(readonly id: number, readonly store: GroupStore) {}

  get retainedBatches(): number {
    return this.batches.length - this.head
  }

  saveApplied(): void {
    // the partition snapshot: a 45-byte header and 24 bytes per retained batch (src/partition/state-machine.ts)
    this.store.saveApplied({ index: this.index, term: 1, conf: { voters: [1] }, blob: new Uint8Array(45 + 24 * this.retainedBatches) })
    this.entriesSinceSave = 0
    this.savedAt = performance.now()
  }

  /** One unsynced flush in flight; what is staged meanwhile follows it (partition-replica.ts #flush). */
  flush(): void {
    if (this.flushing) {
      this.again = true
      return
    }
    this.unflushedBytes = 0
    this.flushing = this.store.flush({ sync: false }).then((r) => {
      this.flushing = null
      if (!r.ok) this.failure ??= new Error(r.error.message)
      else if (this.again) {
        this.again = false
        this.flush()
      }
    })
  }

  async drain(): Promise<void> {
    while (this.flushing) await this.flushing
  }
}

async function ampRun(m: StorageModule, base: string, stream: AmpStream, variant: AmpVariant, values: Values, opts: Options): Promise<AmpRun> {
  return withTempDir(base, async (dir) => {
    const opened = m.Wal.open({ fs: new m.NodeWalFs(), dir: join(dir, 'wal') }, () => {})
    if (!opened.ok) throw new Error(opened.error.message)
    const wal = opened.value.wal
    const groups: StreamGroup[] = []
    try {
      // the WAL warmed up as in a long-running worker: segments recycled, the next one prepared
      const filler = payload('random', 1, 1 << 20)
      for (let i = 1; wal.activeSeq < 4; i++) {
        wal.add({ group: 0, type: WalType.Entry, index: i, term: 1, payload: filler })
        const r = wal.commit()
        if (!r.ok) throw new Error(r.error.message)
        const rr = wal.retire(wal.activeSeq - 1)
        if (!rr.ok) throw new Error(rr.error.message)
        await yieldTurn()
      }
      while (!wal.nextPrepared) await sleep(5)
      for (let g = 1; g <= stream.groups; g++) {
        const s = await m.GroupStore.open(join(dir, 'groups', String(g)), { leveldb: variant.leveldb })
        if (!s.ok) throw new Error(s.error.message)
        groups.push(new StreamGroup(g, s.value.store))
      }
      await settleDisk(300, 5_000)

      const payloadTotal = Math.ceil((opts.ampMb * stream.share * 1e6) / (stream.batchBytes * stream.groups)) * stream.batchBytes * stream.groups
      const retainBytes = opts.ampRetainMb * 1e6
      const vote = Buffer.alloc(4, 0)
      vote.writeUInt32BE(1, 0)
      const empty = new Uint8Array(0)
      let seenSeq = wal.activeSeq
      let walDisk = 0
      let walPos = -1
      let walSeq = -1
      let round: Promise<void> | null = null
      let roundAgain = false
      let retireAfterCommit: number | null = null
      let failure: Error | null = null

      // a checkpoint round: every group's store written and synced, one after another (group-runtime.ts)
      const checkpointRound = (throughSeq: number): Promise<void> =>
        (async () => {
          for (const g of groups) {
            g.saveApplied()
            g.store.putHardState({ term: 1, vote: 1, commit: g.index })
            const r = await g.store.flush({ sync: true })
            if (!r.ok) throw new Error(r.error.message)
          }
          for (const g of groups) {
            wal.add({ group: g.id, type: WalType.CheckpointBegin, index: 0, term: 0, payload: empty })
            wal.add({ group: g.id, type: WalType.Checkpoint, index: g.index, term: 1, payload: empty })
          }
          retireAfterCommit = throughSeq
        })().then(
          () => {
            round = null
            if (roundAgain) {
              roundAgain = false
              round = checkpointRound(wal.activeSeq - 1)
            }
          },
          (err: unknown) => {
            round = null
            failure ??= err instanceof Error ? err : new Error(String(err))
          },
        )

      const device = deviceWriter(dir)
      const io0 = processIo()
      const main0 = processIo(MAIN_THREAD)
      const dev0 = device?.() ?? NaN
      const m0 = machineBusySeconds()
      const c0 = ownCpuSeconds()
      const t0 = performance.now()
      let written = 0
      let k = 0
      while (written < payloadTotal) {
        if (failure) throw failure
        // one worker turn: every group's entry, one commit, then apply
        const batches: Uint8Array[] = []
        for (const g of groups) {
          const entry = payload(values, k++, stream.batchBytes + COMMAND_HEADER_BYTES)
          batches.push(entry.subarray(COMMAND_HEADER_BYTES))
          g.index++
          wal.add({ group: g.id, type: WalType.Entry, index: g.index, term: 1, payload: entry })
          wal.add({ group: g.id, type: WalType.HardState, index: g.index - 1, term: 1, payload: vote })
        }
        const r = wal.commit()
        if (!r.ok) throw new Error(r.error.message)
        if (r.value.seq !== walSeq) {
          walSeq = r.value.seq
          walPos = 32
        }
        walDisk += (Math.ceil((walPos + r.value.bytes + 4) / PAGE) - Math.floor(walPos / PAGE)) * PAGE
        walPos += r.value.bytes
        if (retireAfterCommit !== null) {
          const rr = wal.retire(retireAfterCommit)
          if (!rr.ok) throw new Error(rr.error.message)
          retireAfterCommit = null
        }
        const now = performance.now()
        for (const [i, g] of groups.entries()) {
          const batch = batches[i]!
          g.store.putRecord(g.offset, batch)
          g.batches.push([g.offset, batch.length])
          g.offset += Math.max(1, Math.round(batch.length / 116))
          g.retainedBytes += batch.length
          g.unflushedBytes += batch.length
          if (retainBytes > 0 && g.retainedBytes > retainBytes * 1.1) {
            while (g.retainedBytes > retainBytes && g.retainedBatches > 1) g.retainedBytes -= g.batches[g.head++]![1]
            g.store.deleteRecordsBelow(g.batches[g.head]![0])
            if (g.head > 4096) {
              g.batches.splice(0, g.head)
              g.head = 0
            }
          }
          if (++g.entriesSinceSave >= SAVE_EVERY_ENTRIES || now - g.savedAt >= SAVE_EVERY_MS) g.saveApplied()
          g.flush()
          if (g.failure) throw g.failure
          if (g.unflushedBytes > UNFLUSHED_BYTES_MAX) await g.drain()
        }
        written += stream.batchBytes * stream.groups
        if (wal.activeSeq !== seenSeq) {
          seenSeq = wal.activeSeq
          if (round) roundAgain = true
          else round = checkpointRound(seenSeq - 1)
        }
        await yieldTurn()
      }
      for (const g of groups) await g.drain()
      while (round) await round
      if (failure) throw failure
      const seconds = (performance.now() - t0) / 1000
      const otherCpu = Math.max(0, (machineBusySeconds() - m0 - (ownCpuSeconds() - c0)) / seconds)

      // a clean stop: every group checkpoints (synced); then what LevelDB still owes
      for (const g of groups) {
        g.saveApplied()
        const r = await g.store.flush({ sync: true })
        if (!r.ok) throw new Error(r.error.message)
      }
      let settleSeconds = await settleDisk(1000, 60_000)
      for (const g of groups) await g.store.close()
      groups.length = 0
      for (let g = 1; g <= stream.groups; g++) {
        const s = await m.GroupStore.open(join(dir, 'groups', String(g)), { leveldb: variant.leveldb, mustExist: true })
        if (!s.ok) throw new Error(s.error.message)
        groups.push(new StreamGroup(g, s.value.store))
      }
      settleSeconds += await settleDisk(1000, 60_000)
      for (const g of groups) await g.store.close()
      groups.length = 0
      wal.close()
      await wal.settled()
      const io1 = processIo()
      const main1 = processIo(MAIN_THREAD)
      const fromProc = io0 !== null && io1 !== null && main0 !== null && main1 !== null
      const walAccounted = fromProc ? main1.written - main0.written : NaN
      // without /proc/self/io: the files left, less the WAL's (whose bytes are estimated)
      const storeDisk = fromProc ? io1.written - io0.written - walAccounted : dirBytes(join(dir, 'groups'))
      return {
        payloadBytes: written,
        seconds,
        mbPerSec: written / seconds / 1e6,
        settleSeconds,
        diskBytes: storeDisk + walDisk,
        storeDiskBytes: storeDisk,
        cancelledBytes: fromProc ? io1.cancelled - io0.cancelled - (main1.cancelled - main0.cancelled) : 0,
        walDiskBytes: walDisk,
        walAccountedBytes: walAccounted,
        deviceBytes: (device?.() ?? NaN) - dev0,
        source: fromProc ? 'proc' : 'file sizes',
        otherCpu,
      }
    } finally {
      for (const g of groups) await g.store.close()
      wal.close()
      await wal.settled()
    }
  })
}

function ampRow(stream: AmpStream, variant: AmpVariant, values: Values, runs: AmpRun[]): AmpRow {
  const med = (f: (r: AmpRun) => number): number => median(runs.map(f))
  const amp = med((r) => r.diskBytes / r.payloadBytes)
  const wal = med((r) => r.walDiskBytes / r.payloadBytes)
  return {
    stream: stream.label,
    variant: variant.label,
    values,
    leveldb: variant.leveldb,
    runs,
    mbPerSec: spreadOf(runs.map((r) => r.mbPerSec)),
    amplification: amp,
    walAmplification: wal,
    storeAmplification: med((r) => r.storeDiskBytes / r.payloadBytes),
    cancelledPerPayload: med((r) => r.cancelledBytes / r.payloadBytes),
    walAccountedPerPayload: med((r) => r.walAccountedBytes / r.payloadBytes),
    devicePerPayload: med((r) => r.deviceBytes / r.payloadBytes),
    settleSeconds: med((r) => r.settleSeconds),
    otherCpu: med((r) => r.otherCpu),
    source: runs[0]?.source ?? '-',
  }
}

// ---- output ----------------------------------------------------------------------------------

const fx = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '-')
const fmtUs = (us: number): string => (Number.isFinite(us) ? (us >= 10_000 ? fmtInt(us) : us >= 100 ? us.toFixed(0) : us.toFixed(1)) : '-')

const WAL_COLUMNS: Column[] = [
  { title: 'commit', align: 'left' },
  { title: 'how', align: 'left' },
  { title: 'bytes', align: 'right' },
  { title: 'commits/s', align: 'right' },
  { title: 'spread', align: 'right' },
  { title: 'records/s', align: 'right' },
  { title: 'MB/s', align: 'right' },
  { title: 'p50 µs', align: 'right' },
  { title: 'p99 µs', align: 'right' },
  { title: 'other cpu', align: 'right' },
]

function walRowText(r: WalRow, color: boolean): string[] {
  const rate = fmtInt(r.commitsPerSec.median)
  return [r.shape, r.kind, fmtInt(r.bytesPerCommit), color && r.kind === 'wal' ? style.bold(rate) : rate, fmtPct(r.commitsPerSec.spread), fmtInt(r.recordsPerSec), fx(r.mbPerSec, 1), fmtUs(r.p50Us), fmtUs(r.p99Us), fx(r.otherCpu)]
}

const STORE_COLUMNS: Column[] = [
  { title: 'flush of', align: 'left' },
  { title: 'flushes/s', align: 'right' },
  { title: 'spread', align: 'right' },
  { title: 'batches/s', align: 'right' },
  { title: 'MB/s', align: 'right' },
  { title: 'p50 µs', align: 'right' },
  { title: 'p99 µs', align: 'right' },
  { title: 'disk B / payload B', align: 'right' },
  { title: 'other cpu', align: 'right' },
]

function storeRowText(r: StoreRow, color: boolean): string[] {
  const mb = fx(r.mbPerSec, 1)
  return [r.shape, fmtInt(r.flushesPerSec.median), fmtPct(r.flushesPerSec.spread), fmtInt(r.batchesPerSec), color ? style.bold(mb) : mb, fmtUs(r.p50Us), fmtUs(r.p99Us), r.diskPerPayload === null ? '-' : fx(r.diskPerPayload), fx(r.otherCpu)]
}

const AMP_COLUMNS: Column[] = [
  { title: 'stream', align: 'left' },
  { title: 'values', align: 'left' },
  { title: 'LevelDB options', align: 'left' },
  { title: 'MB/s', align: 'right' },
  { title: 'spread', align: 'right' },
  { title: 'settle s', align: 'right' },
  { title: 'disk/payload', align: 'right' },
  { title: 'WAL', align: 'right' },
  { title: 'stores', align: 'right' },
  { title: 'cancelled', align: 'right' },
  { title: 'WAL acct', align: 'right' },
  { title: 'device', align: 'right' },
  { title: 'other cpu', align: 'right' },
]

function ampRowText(r: AmpRow, color: boolean): string[] {
  const amp = fx(r.amplification)
  return [r.stream, r.values, r.variant, fx(r.mbPerSec.median, 1), fmtPct(r.mbPerSec.spread), fx(r.settleSeconds, 1), color ? style.bold(amp) : amp, fx(r.walAmplification), fx(r.storeAmplification), fx(r.cancelledPerPayload), fx(r.walAccountedPerPayload), fx(r.devicePerPayload), fx(r.otherCpu)]
}

const LEGEND = `wal: bytes = what one commit writes (its 512-byte sectors: records' frames and the COMMIT frame, 492 B a sector); append and overwrite write
the same bytes with writeSync + fdatasyncSync (append: to the end of a growing file; overwrite: inside a
pre-allocated one). commits/s: over the run's wall time, a setImmediate turn after each; p50/p99: one
add+commit (write+sync). store: putRecord + flush({ sync: false }), one at a time; disk B / payload B during
the run only. amp: MB/s = payload / time until every store write finished; settle s = how long LevelDB kept
writing after the stream (compactions), reopen included; disk/payload = WAL + stores, bytes per payload
byte, until settled; WAL = the 4 KiB pages each commit touched; stores = write_bytes (/proc/self/io) of every
thread but the main one (LevelDB's writes and compactions); cancelled = of stores, files deleted before the
kernel wrote them back (short-lived LevelDB logs and tables: never reached the disk here, would under memory
pressure); WAL acct = the main thread's write_bytes (the kernel counts a whole large folio, up to 2 MiB, each
time a commit re-dirties one, so this overstates overwrites in place); device = what the block device wrote
meanwhile per payload byte, every process's (a cross-check on a quiet machine only). Medians
over rounds; spread = (max - min) / median; other cpu = cores the rest of the machine used meanwhile.`

// ---- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseOptions()
  const m = await importCode<StorageModule>(opts.code, 'src/storage/index')
  const env = environment()
  const git = gitState()
  const { dir: base, fsType } = chooseBase(opts.dir)
  const quiet = async (): Promise<void> => {
    if (opts.quietWait > 0) await waitForQuiet(opts.quietCores, opts.quietWait * 1000, (c) => process.stdout.write(style.yellow(`(waiting: others use ${c.toFixed(1)} cores) `)))
  }
  console.log(style.bold('raftmq storage bench') + style.dim(' — WAL commits, partition store writes, write amplification, on a real disk'))
  console.log(style.dim(`  ${describeEnvironment(env)}`))
  console.log(style.dim(`  files under ${base} (${fsType}); tree at ${git.commit}${git.dirty.length > 0 ? ` with ${git.dirty.length} files changed in src/ and workers/` : ''}; raftmq's code ${opts.code === 'compiled' ? 'compiled by tsc' : 'from source under tsx'}`))
  console.log(style.dim(`  GROUP_STORE_LEVELDB = ${JSON.stringify(m.GROUP_STORE_LEVELDB)}; /proc/self/io ${processDiskBytes() === null ? 'unavailable: amplification from file sizes' : 'available'}`))
  console.log()

  const walRows: WalRow[] = []
  if (opts.sections.includes('wal')) {
    console.log(style.bold('(a) WAL commits') + style.dim(` — ${opts.runs} interleaved rounds x ${opts.seconds}s per row`))
    await withTempDir(base, async (dir) => {
      const section = new WalSection(m, dir)
      await section.open()
      try {
        const runs = new Map<string, TimedRun[]>()
        for (let round = 0; round < opts.runs; round++) {
          process.stdout.write(style.dim(`  round ${round + 1}/${opts.runs} `))
          for (const shape of WAL_SHAPES) {
            for (const kind of WAL_KINDS) {
              await quiet()
              const r = await section.run(shape, kind, opts.seconds)
              const key = `${shape.label}|${kind}`
              runs.set(key, [...(runs.get(key) ?? []), r])
              process.stdout.write('.')
            }
          }
          process.stdout.write('\n')
        }
        for (const shape of WAL_SHAPES) for (const kind of WAL_KINDS) walRows.push(walRow(m, shape, kind, runs.get(`${shape.label}|${kind}`)!))
      } finally {
        await section.close()
      }
    })
    console.log(textTable(WAL_COLUMNS, walRows.map((r) => walRowText(r, true)), 2))
    console.log()
  }

  const storeRows: StoreRow[] = []
  if (opts.sections.includes('store')) {
    console.log(style.bold('(b) partition store, unsynced writes') + style.dim(` — ${opts.runs} interleaved rounds x ${opts.seconds}s, a fresh store each`))
    const runs = new Map<string, TimedRun[]>()
    for (let round = 0; round < opts.runs; round++) {
      process.stdout.write(style.dim(`  round ${round + 1}/${opts.runs} `))
      for (const shape of STORE_SHAPES) {
        await quiet()
        const r = await storeRun(m, base, shape, opts.seconds)
        runs.set(shape.label, [...(runs.get(shape.label) ?? []), r])
        process.stdout.write('.')
      }
      process.stdout.write('\n')
    }
    for (const shape of STORE_SHAPES) storeRows.push(storeRow(shape, runs.get(shape.label)!))
    console.log(textTable(STORE_COLUMNS, storeRows.map((r) => storeRowText(r, true)), 2))
    console.log()
  }

  const ampRows: AmpRow[] = []
  if (opts.sections.includes('amp')) {
    const configs: Array<{ stream: AmpStream; variant: AmpVariant; values: Values }> = []
    for (const stream of AMP_STREAMS) {
      for (const values of opts.ampValues) {
        for (const variant of AMP_VARIANTS) if (values === 'random' || variant.text) configs.push({ stream, variant, values })
      }
    }
    console.log(
      style.bold('(c) write amplification') +
        style.dim(` — ${configs.length} configurations x ${opts.ampRuns} rounds; ${opts.ampMb} MB per 116 KB stream, ${opts.ampMb / 4} MB per 1 KiB stream; retention ${opts.ampRetainMb > 0 ? `${opts.ampRetainMb} MB per group` : 'none'}`),
    )
    const runs = new Map<number, AmpRun[]>()
    for (let round = 0; round < opts.ampRuns; round++) {
      for (const [i, c] of configs.entries()) {
        process.stdout.write(style.dim(`  [${round + 1}/${opts.ampRuns}] `) + `${c.stream.label.padEnd(18)} ${c.values.padEnd(6)} ${c.variant.label.padEnd(34)} `)
        await quiet()
        const r = await ampRun(m, base, c.stream, c.variant, c.values, opts)
        runs.set(i, [...(runs.get(i) ?? []), r])
        console.log(`${fx(r.mbPerSec, 1).padStart(6)} MB/s  ${fx(r.diskBytes / r.payloadBytes)} disk B / payload B  ${style.dim(`(settled in ${fx(r.settleSeconds, 1)} s)`)}`)
      }
    }
    for (const [i, c] of configs.entries()) ampRows.push(ampRow(c.stream, c.variant, c.values, runs.get(i)!))
    console.log()
    console.log(textTable(AMP_COLUMNS, ampRows.map((r) => ampRowText(r, true)), 2))
    console.log()
  }
  console.log(style.dim(LEGEND))

  if (opts.save) {
    const date = new Date().toISOString()
    const json = { bench: 'storage', date, environment: env, git, options: opts, disk: { dir: base, fsType }, groupStoreLevelDb: m.GROUP_STORE_LEVELDB, wal: walRows, store: storeRows, amp: ampRows }
    const md = [
      '# storage bench',
      '',
      `${date}; ${describeEnvironment(env)}; files on ${fsType}. Tree at ${git.commit}${git.dirty.length > 0 ? ` plus uncommitted changes to ${git.dirty.join(', ')}` : ''}. ` +
        `raftmq's code ${opts.code === 'compiled' ? 'compiled by tsc' : 'from source under tsx'}. Run with \`npm run bench:storage${opts.quick ? ' -- --quick' : ''}\`; what each section does is in the header of bench/storage.ts.`,
      '',
      ...(walRows.length > 0
        ? [`## (a) WAL commits (Wal + NodeWalFs, 64 MiB segments) against a bare append and an overwrite of a pre-allocated file`, '', `${opts.runs} interleaved rounds x ${opts.seconds}s; medians.`, '', markdownTable(WAL_COLUMNS, walRows.map((r) => walRowText(r, false))), '']
        : []),
      ...(storeRows.length > 0
        ? [`## (b) partition store (GroupStore, GROUP_STORE_LEVELDB), unsynced writes`, '', `${opts.runs} interleaved rounds x ${opts.seconds}s, a fresh store each; medians.`, '', markdownTable(STORE_COLUMNS, storeRows.map((r) => storeRowText(r, false))), '']
        : []),
      ...(ampRows.length > 0
        ? [
            `## (c) write amplification of a produce stream (WAL + partition stores + LevelDB's log and compactions)`,
            '',
            `${opts.ampRuns} rounds; ${opts.ampMb} MB of payload in the 116 KB stream, ${opts.ampMb / 4} MB in the 1 KiB stream; retention ${opts.ampRetainMb > 0 ? `${opts.ampRetainMb} MB per group` : 'none'}; disk bytes from ${ampRows[0]!.source === 'proc' ? '/proc/self/io' : 'the sizes of the files left'}. ` +
              `GROUP_STORE_LEVELDB = \`${JSON.stringify(m.GROUP_STORE_LEVELDB)}\`; the alternatives change one option each.`,
            '',
            markdownTable(AMP_COLUMNS, ampRows.map((r) => ampRowText(r, false))),
            '',
          ]
        : []),
      LEGEND,
      '',
    ].join('\n')
    const files = saveResults('storage', json, md)
    console.log()
    console.log(style.dim(`Wrote ${files.join(' and ')}`))
  }
}

await main()
