/**
 * bench/storage.ts — what a synced Ready costs in LevelRaftStorage (src/storage).
 *
 * What it measures: `persist(rd)` of Readies carrying N entries of B bytes plus a hard
 * state — one chained batch, `sync: true` — back to back, one in flight (the Ready
 * contract allows no more), on a fresh store in a temp directory per run. Each Ready
 * also hands out the previous one's entries as committed, so the entry cache evicts as
 * it would under load. Reported per configuration: entries/s and payload MB/s over the
 * timed run, persists/s, p50 and p99 latency of one persist, and the bytes the process
 * caused to be written to disk per payload byte (/proc/self/io write_bytes: LevelDB's
 * write-ahead log plus whatever memtable flushes and compactions ran meanwhile, which
 * short runs undercount). Each figure is the median over --runs runs.
 *
 * `raw` rows are the floor: the same keys and values (13-byte header + data) and hard
 * state put into a classic-level chained batch directly, with no store logic, CRC or
 * cache, so the difference is what LevelRaftStorage itself costs.
 *
 * Then a sustained run writes --sustained-mb of 116 KB entries (one 1000-message batch
 * each) with retention compacting behind, closes the store (so pending flushes land),
 * and reports the write amplification LevelDB adds to "each record written once".
 *
 * Payloads are random bytes (incompressible, like producer-compressed batches, so
 * LevelDB's snappy cannot flatter the numbers), preallocated and reused.
 *
 * Run:
 *   npx tsx bench/storage.ts
 *   npx tsx bench/storage.ts --runs 7 --seconds 2 --sustained-mb 512 --dir /var/tmp
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ClassicLevel } from 'classic-level'
import { EntryType } from '../src/raft/index.js'
import type { Entry, Ready } from '../src/raft/index.js'
import { LevelRaftStorage } from '../src/storage/index.js'
import { HARD_STATE_KEY, encodeHardState, encodeEntryValue, entryKey } from '../src/storage/keys.js'

const HELP = `Usage: npx tsx bench/storage.ts [options]

Synced persist of Readies into LevelRaftStorage: entries/s and latency per persist.

Options:
  --runs N            timed runs per configuration (default 5)
  --seconds S         length of one timed run (default 1)
  --sustained-mb MB   payload of the sustained write-amplification run, 0 to skip (default 256)
  --dir PATH          where the temp stores go (default the OS temp dir)
  --help`

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '1' },
    'sustained-mb': { type: 'string', default: '256' },
    dir: { type: 'string', default: tmpdir() },
    help: { type: 'boolean', default: false },
  },
})
if (args.help) {
  console.log(HELP)
  process.exit(0)
}
const RUNS = Number(args.runs)
const SECONDS = Number(args.seconds)
const SUSTAINED_MB = Number(args['sustained-mb'])
const BASE = args.dir

interface Config {
  readonly label: string
  readonly entries: number
  readonly bytes: number
}

const CONFIGS: readonly Config[] = [
  { label: '1 x 100 B', entries: 1, bytes: 100 },
  { label: '100 x 100 B', entries: 100, bytes: 100 },
  { label: '1000 x 100 B', entries: 1000, bytes: 100 },
  { label: '1 x 116 KB', entries: 1, bytes: 116 * 1024 },
]

interface RunResult {
  readonly entriesPerSec: number
  readonly mbPerSec: number
  readonly persistsPerSec: number
  readonly p50Us: number
  readonly p99Us: number
  readonly diskPerPayload: number | null
}

// ---- helpers ----------------------------------------------------------------------------

const POOL = randomBytes(8 << 20)

/** A view of random bytes for entry k (offsets vary so consecutive entries differ). */
function payload(k: number, bytes: number): Uint8Array {
  const off = (k * 4099) % (POOL.length - bytes)
  return POOL.subarray(off, off + bytes)
}

function diskWriteBytes(): number | null {
  if (!existsSync('/proc/self/io')) return null
  const m = /^write_bytes:\s*(\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'))
  return m ? Number(m[1]) : null
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

function readyOf(entries: Entry[], committed: Entry[], commit: number): Ready {
  return {
    softState: null,
    hardState: { term: 1, vote: 1, commit },
    snapshot: null,
    entries,
    committedEntries: committed,
    messages: [],
    messagesAfterPersist: [],
    mustSync: true,
  }
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(BASE, 'raftmq-bench-storage-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Runs `step` (one persist of `entriesPer` entries) for a warm-up, then for SECONDS, timing each call. */
async function timeSteps(step: () => Promise<void>, cfg: Config): Promise<RunResult> {
  const warmUntil = performance.now() + 200
  while (performance.now() < warmUntil) await step()
  const lat: number[] = []
  const disk0 = diskWriteBytes()
  const t0 = performance.now()
  const end = t0 + SECONDS * 1000
  let now = t0
  while (now < end || lat.length < 20) {
    await step()
    const t = performance.now()
    lat.push(t - now)
    now = t
  }
  const elapsedS = (now - t0) / 1000
  const disk1 = diskWriteBytes()
  const sorted = Float64Array.from(lat).sort()
  const entries = lat.length * cfg.entries
  const payloadBytes = entries * cfg.bytes
  return {
    entriesPerSec: entries / elapsedS,
    mbPerSec: payloadBytes / elapsedS / 1e6,
    persistsPerSec: lat.length / elapsedS,
    p50Us: percentile(sorted, 0.5) * 1000,
    p99Us: percentile(sorted, 0.99) * 1000,
    diskPerPayload: disk0 === null || disk1 === null ? null : (disk1 - disk0) / payloadBytes,
  }
}

// ---- the two modes ---------------------------------------------------------------------

async function runStore(cfg: Config): Promise<RunResult> {
  return withTempDir(async (dir) => {
    const opened = await LevelRaftStorage.open(dir, { voters: [1] })
    if (!opened.ok) throw new Error(opened.error.message)
    const st = opened.value
    let last = 0
    let prev: Entry[] = []
    const step = async (): Promise<void> => {
      const entries = new Array<Entry>(cfg.entries)
      for (let k = 0; k < cfg.entries; k++) entries[k] = { term: 1, index: last + 1 + k, type: EntryType.Normal, data: payload(last + k, cfg.bytes) }
      await st.persist(readyOf(entries, prev, last))
      prev = entries
      last += cfg.entries
    }
    try {
      return await timeSteps(step, cfg)
    } finally {
      await st.close()
    }
  })
}

async function runRaw(cfg: Config): Promise<RunResult> {
  return withTempDir(async (dir) => {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    await db.open()
    // values prepared once: the floor excludes encoding and CRC
    const values = Array.from({ length: Math.min(cfg.entries, 1000) }, (_, k) =>
      encodeEntryValue({ term: 1, index: k + 1, type: EntryType.Normal, data: payload(k, cfg.bytes) }),
    )
    let last = 0
    const step = async (): Promise<void> => {
      const batch = db.batch()
      for (let k = 0; k < cfg.entries; k++) batch.put(entryKey(last + 1 + k), values[k % values.length]!)
      batch.put(HARD_STATE_KEY, encodeHardState({ term: 1, vote: 1, commit: last }))
      await batch.write({ sync: true })
      last += cfg.entries
    }
    try {
      return await timeSteps(step, cfg)
    } finally {
      await db.close()
    }
  })
}

async function sustained(mb: number): Promise<{ seconds: number; mbPerSec: number; amplification: number | null }> {
  return withTempDir(async (dir) => {
    const opened = await LevelRaftStorage.open(dir, { voters: [1] })
    if (!opened.ok) throw new Error(opened.error.message)
    const st = opened.value
    const bytes = 116 * 1024
    const total = Math.ceil((mb * 1e6) / bytes)
    const disk0 = diskWriteBytes()
    const t0 = performance.now()
    let prev: Entry[] = []
    for (let i = 1; i <= total; i++) {
      const entries: Entry[] = [{ term: 1, index: i, type: EntryType.Normal, data: payload(i, bytes) }]
      await st.persist(readyOf(entries, prev, i - 1))
      prev = entries
      // retention: keep about 64 MB, compacting in steps as the broker would
      if (i % 256 === 0 && i > 600) {
        await st.saveApplied(i - 1, new Uint8Array(64))
        await st.compact(i - 600)
      }
    }
    const seconds = (performance.now() - t0) / 1000
    await st.close()
    const disk1 = diskWriteBytes()
    return {
      seconds,
      mbPerSec: (total * bytes) / seconds / 1e6,
      amplification: disk0 === null || disk1 === null ? null : (disk1 - disk0) / (total * bytes),
    }
  })
}

// ---- main -----------------------------------------------------------------------------------

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

console.log(`# storage bench\n`)
console.log(`${new Date().toISOString()}; ${process.version}, ${cpus()[0]?.model ?? '?'} (${cpus().length} cpus), ${process.platform} ${process.arch}; stores under ${BASE}.`)
console.log(`Synced persist of one Ready (N entries + hard state, one chained batch); ${RUNS} runs x ${SECONDS}s after a 0.2s warm-up, fresh store per run; medians over runs.\n`)
const rows: string[][] = []
for (const cfg of CONFIGS) {
  for (const mode of ['store', 'raw'] as const) {
    const results: RunResult[] = []
    for (let r = 0; r < RUNS; r++) results.push(await (mode === 'store' ? runStore(cfg) : runRaw(cfg)))
    const m = (f: (x: RunResult) => number) => median(results.map(f))
    const disk = results.every((x) => x.diskPerPayload !== null) ? fmt(m((x) => x.diskPerPayload!), 2) : '-'
    rows.push([cfg.label, mode, fmt(m((x) => x.entriesPerSec)), fmt(m((x) => x.mbPerSec), 1), fmt(m((x) => x.persistsPerSec)), fmt(m((x) => x.p50Us)), fmt(m((x) => x.p99Us)), disk])
    process.stderr.write(`  done: ${cfg.label} ${mode}\n`)
  }
}
const header = ['Ready', 'mode', 'entries/s', 'MB/s', 'persists/s', 'p50 us', 'p99 us', 'disk B / payload B']
console.log(`| ${header.join(' | ')} |`)
console.log(`| :-- | :-- | ${header.slice(2).map(() => '--:').join(' | ')} |`)
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
console.log(`\nstore: LevelRaftStorage.persist (encode + CRC + chained batch + sync + cache). raw: the same puts straight into a classic-level chained batch, synced.`)

if (SUSTAINED_MB > 0) {
  const s = await sustained(SUSTAINED_MB)
  console.log(
    `\nSustained: ${SUSTAINED_MB} MB of 116 KB entries (one per persist) with retention compacting behind: ${fmt(s.mbPerSec, 1)} MB/s over ${fmt(s.seconds, 1)}s; ` +
      `disk bytes written per payload byte, compactions included up to close: ${s.amplification === null ? '-' : fmt(s.amplification, 2)}.`,
  )
}
