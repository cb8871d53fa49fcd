/**
 * The durable storage of one simulated node in `wal` storage mode: its Raft log lives in
 * a real Wal over a MemoryWalFs, through a real LogEngine (one group, the engine being
 * the node's one "worker"), and every restart is a real recovery: Wal.open over the
 * crashed file system, every record folded with replayRecord, the host's store merged
 * in as src/storage/recovery.ts merges a partition store (entries after the store's
 * applied index replace its tail, the newer hard state wins), then the recovered state
 * drained back into the store and the group re-hosted with its checkpoint (addGroup).
 *
 * The host's store (`StoreState`) stands for the partition store beside the WAL: what it
 * holds synced is the state machine at an applied index, with the hard state and the
 * unapplied entries of that moment (HostedGroup.#write). The simulator writes it at every
 * checkpoint, with the engine's bookkeeping as GroupRuntime drives it (checkpointBegin
 * when the state is captured, checkpointed once the store write is durable, a simulated
 * disk latency later, with Readys committed in between; then carryForward, canRetire,
 * retire) when the sealed segments pile up and at every snapshot, and when it installs a
 * leader's snapshot. Its unsynced writes are the simulator's `appliedSurvival` model.
 *
 * SimWalFs sits between the WAL and the MemoryWalFs and injects the storage faults at
 * exactly the call they are meant for, through MemoryWalFs.failNext, so its semantics
 * hold (fsyncgate: a failed fdatasync forgets the unsynced writes): ENOSPC on the next
 * write or segment creation (a roll's, or a background preparation's), EIO on the next
 * write or fdatasync of a commit. It also captures, when asked, the file system a crash
 * inside each fdatasync would leave: a commit that is struck mid-way runs to completion
 * on the doomed machine, and the image of its last fdatasync is the disk the restarted
 * node finds (its write dropped, torn at a random byte, kept by the OS, or kept sector by
 * sector). The `worker` host, whose commits run inside the production WorkerLoop, cannot
 * re-run a commit on a doomed machine: there SimWalFs holds a successful fdatasync back
 * instead (`holdSyncs`), while the simulated thread is blocked in it, so that a crash
 * meanwhile finds its write still unsynced; the sync completes when the thread is free
 * again, or at the next call that must come after it.
 *
 * Flips (`flip`) are aimed by reading the segments back with the WAL's own recovery
 * scan: `synced` hits a header or an acknowledged commit other than the newest one, and
 * `newest` the newest acknowledged commit (recovery must refuse: WAL_CORRUPT; its
 * sector stamps tell a damaged commit from a torn one); `inflight` hits the bytes of the
 * write a crash interrupted (recovery must go on without them, unless the write had
 * landed whole, which no recovery can tell from an acknowledged commit, or the flip hit
 * the stamp of a sector of it that had not landed), and `unused` the bytes after a
 * segment's data (recovery must go on); `forged` changes an entry's payload and fixes its
 * checksum, a disk that lies undetectably (test-only: the checker must catch the changed
 * entry).
 *
 * Background preparation of the next segment runs in MemoryWalFs's 'manual' async mode:
 * the simulator decides, from the seed, when each queued step runs (runAsync), so a roll
 * can overtake a preparation at any phase.
 */
import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import type { Prng } from '../../src/base/index.js'
import { MemoryStorage } from '../../src/raft/index.js'
import type { ConfState, Entry, HardState, Ready } from '../../src/raft/index.js'
import { LogEngine, MemoryWalFs, Wal, WalRecordType, newerHardState, replayRecord } from '../../src/storage/index.js'
import type { GroupReplay, WalFs } from '../../src/storage/index.js'
import type { CrashOptions, FsResult, WalFile } from '../../src/storage/wal/index.js'
import type { WalRecoveryReport } from '../../src/storage/wal/recovery.js'
import { DATA_START, FRAME_HEADER_BYTES, SECTOR_BYTES, decodeSegmentHeader, fileOffsetOf, readStamp } from '../../src/storage/wal/format.js'
import { scanSegment } from '../../src/storage/wal/recovery.js'
import { classifyName } from '../../src/storage/wal/segment.js'
import { entryKey } from './state-machine.js'

/** The one group each simulated node hosts. */
export const SIM_GROUP = 1
export const WAL_DIR = '/data/wal/w0'

/** Counters the disk adds to the run's statistics. */
export interface WalCounters {
  /** Retired segment files claimed again for a new segment. */
  walRecycled: number
  /** Segments the background preparation finished (renamed into place). */
  walPreparedInBackground: number
  /** ENOSPC injected on a segment creation. */
  walNoSpaceOnCreate: number
}

/** What the host's store holds, synced. */
export interface StoreState {
  readonly index: number
  readonly term: number
  readonly conf: ConfState
  /** The state machine at `index` (SimStateMachine.encode()). */
  readonly data: Uint8Array
  readonly hardState: HardState | null
  /** The entries after `index`, as of the moment the store was written. */
  readonly tail: readonly Entry[]
}

/** The bytes one write put on disk. */
export interface WriteSpan {
  readonly path: string
  readonly position: number
  readonly length: number
}

type ArmedOp = 'create' | 'write' | 'sync'

/** The WalFs the WAL sees: a MemoryWalFs with faults aimed at single calls, and crash capture. */
export class SimWalFs implements WalFs {
  readonly inner: MemoryWalFs
  readonly #counters: WalCounters
  readonly #paths = new Map<WalFile, string>()
  readonly #armed = new Map<ArmedOp, string>()
  #capture: CrashOptions | null = null
  #lastWrite: WriteSpan | null = null
  #holding = false
  /** A successful fdatasync held back, and the write it makes durable. */
  #held: { readonly file: WalFile; readonly write: WriteSpan | null } | null = null
  /** With capture on: the disk a crash inside the latest fdatasync left, and that sync's write. */
  captured: { readonly fs: MemoryWalFs; readonly write: WriteSpan | null } | null = null
  /** Faults that fired, as `op:code`. */
  readonly fired: string[] = []

  constructor(inner: MemoryWalFs, counters: WalCounters) {
    this.inner = inner
    this.#counters = counters
  }

  /** The next call of `op` fails with `code`. */
  arm(op: ArmedOp, code: string): void {
    this.#armed.set(op, code)
  }

  disarm(op?: ArmedOp): void {
    if (op === undefined) this.#armed.clear()
    else this.#armed.delete(op)
  }

  /** While on, every fdatasync first records the file system a crash at that moment would leave. */
  captureCrashes(opts: CrashOptions | null): void {
    this.#capture = opts
    this.captured = null
  }

  /**
   * While on, a successful fdatasync is held back: it reports success at once, and the
   * data becomes durable only at releaseHeldSync() or at the next call that must follow
   * it (any call that changes the file system; reads and background preparation, which
   * runs beside the syncing thread, do not). An armed sync fault is never held.
   */
  holdSyncs(on: boolean): void {
    this.#holding = on
  }

  /** The held-back fdatasync's write (null: it had none), or undefined if none is held. */
  get heldWrite(): WriteSpan | null | undefined {
    return this.#held === null ? undefined : this.#held.write
  }

  /** The held-back fdatasync completes. */
  releaseHeldSync(): void {
    const h = this.#held
    if (h === null) return
    this.#held = null
    const r = this.inner.datasync(h.file)
    if (!r.ok) throw new Error(`a held-back fdatasync failed: ${r.error.code} ${r.error.message}`)
  }

  #fire(op: ArmedOp): void {
    const code = this.#armed.get(op)
    if (code === undefined) return
    this.#armed.delete(op)
    this.inner.failNext(op, code)
    this.fired.push(`${op}:${code}`)
    if (op === 'create' && code === 'ENOSPC') this.#counters.walNoSpaceOnCreate++
  }

  create(path: string): FsResult<WalFile> {
    this.releaseHeldSync()
    this.#fire('create')
    const r = this.inner.create(path)
    if (r.ok) this.#paths.set(r.value, path)
    return r
  }

  open(path: string): FsResult<WalFile> {
    this.releaseHeldSync()
    const r = this.inner.open(path)
    if (r.ok) this.#paths.set(r.value, path)
    return r
  }

  writev(file: WalFile, buffers: readonly Uint8Array[], position: number): FsResult<number> {
    this.releaseHeldSync()
    this.#fire('write')
    const r = this.inner.writev(file, buffers, position)
    if (r.ok) this.#lastWrite = { path: this.#paths.get(file) ?? '?', position, length: r.value }
    return r
  }

  read(file: WalFile, into: Uint8Array, position: number): FsResult<number> {
    return this.inner.read(file, into, position)
  }

  datasync(file: WalFile): FsResult<void> {
    this.releaseHeldSync()
    if (this.#capture !== null) this.captured = { fs: this.inner.crash(this.#capture), write: this.#lastWrite }
    if (this.#holding && !this.#armed.has('sync')) {
      this.#held = { file, write: this.#lastWrite }
      return { ok: true, value: undefined }
    }
    this.#fire('sync')
    return this.inner.datasync(file)
  }

  size(file: WalFile): FsResult<number> {
    return this.inner.size(file)
  }

  close(file: WalFile): void {
    this.releaseHeldSync()
    this.#paths.delete(file)
    this.inner.close(file)
  }

  list(dir: string): FsResult<string[]> {
    return this.inner.list(dir)
  }

  mkdirp(dir: string): FsResult<void> {
    this.releaseHeldSync()
    return this.inner.mkdirp(dir)
  }

  rename(from: string, to: string): FsResult<void> {
    this.releaseHeldSync()
    const r = this.inner.rename(from, to)
    if (r.ok && from.endsWith('.free')) this.#counters.walRecycled++
    return r
  }

  remove(path: string): FsResult<void> {
    this.releaseHeldSync()
    return this.inner.remove(path)
  }

  removeDir(path: string): FsResult<void> {
    this.releaseHeldSync()
    return this.inner.removeDir(path)
  }

  syncDir(dir: string): FsResult<void> {
    this.releaseHeldSync()
    return this.inner.syncDir(dir)
  }

  exists(path: string): boolean {
    return this.inner.exists(path)
  }

  writeSyncedAsync(path: string, create: boolean, buffers: readonly Uint8Array[], position: number): Promise<FsResult<void>> {
    // a background preparation's file creation is a segment creation too: the next create fails
    if (create) this.#fire('create')
    return this.inner.writeSyncedAsync(path, create, buffers, position)
  }

  renameAsync(from: string, to: string): Promise<FsResult<void>> {
    const claim = from.endsWith('.free')
    const done = from.endsWith('.prep') && to.endsWith('.wal')
    const p = this.inner.renameAsync(from, to)
    if (!claim && !done) return p
    return p.then((r) => {
      if (r.ok && claim) this.#counters.walRecycled++
      if (r.ok && done) this.#counters.walPreparedInBackground++
      return r
    })
  }

  syncDirAsync(dir: string): Promise<FsResult<void>> {
    return this.inner.syncDirAsync(dir)
  }

  removeAsync(path: string): Promise<FsResult<void>> {
    return this.inner.removeAsync(path)
  }
}

export type OpenOutcome =
  | { readonly kind: 'ok'; readonly view: MemoryStorage; readonly report: WalRecoveryReport; readonly entries: readonly Entry[] }
  /** Wal.open refused the log (WAL_CORRUPT, WAL_INCOMPATIBLE, WAL_IO): the node does not start. */
  | { readonly kind: 'refused'; readonly code: string; readonly message: string }
  /** The WAL opened but what it holds cannot be the node's log: a bug the simulator reports. */
  | { readonly kind: 'broken'; readonly message: string }

export interface WalDiskOptions {
  readonly segmentBytes: number
  readonly recycle: boolean
}

/** One node's disk: the WAL, its engine, and the host's store. */
export class WalDisk {
  readonly #opts: WalDiskOptions
  readonly #counters: WalCounters
  proxy: SimWalFs
  wal: Wal | null = null
  engine: LogEngine | null = null
  store: StoreState
  /** The newest segment seq retired so far. */
  retiredThrough = 0

  constructor(voters: readonly number[], opts: WalDiskOptions, counters: WalCounters) {
    this.#opts = opts
    this.#counters = counters
    this.proxy = new SimWalFs(new MemoryWalFs({ async: 'manual' }), counters)
    this.store = { index: 0, term: 0, conf: { voters: [...voters].sort((a, b) => a - b) }, data: new Uint8Array(0), hardState: null, tail: [] }
  }

  /** The machine's file system (the page cache's view of it). */
  get fs(): MemoryWalFs {
    return this.proxy.inner
  }

  /** Sealed segments not retired yet. */
  get sealedWaiting(): number {
    return this.wal === null ? 0 : this.wal.activeSeq - 1 - this.retiredThrough
  }

  /** The machine went down: its next start finds `image`. */
  crashTo(image: MemoryWalFs): void {
    this.proxy = new SimWalFs(image, this.#counters)
    this.wal = null
    this.engine = null
  }

  /** A restart's recovery, as a real node's: the WAL replayed over the store into a fresh view. */
  open(): OpenOutcome {
    const replays = new Map<number, GroupReplay>()
    let bad: string | null = null
    const opened = Wal.open({ fs: this.proxy, dir: WAL_DIR, segmentBytes: this.#opts.segmentBytes, recycle: this.#opts.recycle }, (rec) => {
      if (bad === null) bad = replayRecord(replays, rec)
    })
    if (!opened.ok) return { kind: 'refused', code: opened.error.code, message: opened.error.message }
    const { wal, report } = opened.value
    const broken = (message: string): OpenOutcome => {
      wal.close()
      return { kind: 'broken', message }
    }
    if (bad !== null) return broken(`replayRecord: ${bad}`)
    for (const g of replays.keys()) if (g !== SIM_GROUP) return broken(`records of group ${g}, which this node never hosted`)
    const r = replays.get(SIM_GROUP)
    const s = this.store
    if (r && r.checkpoint > s.index) return broken(`the WAL holds a checkpoint at ${r.checkpoint}, but the store is at ${s.index}: the store lost synced state`)
    const fromWal = (r?.entries ?? []).filter((e) => e.index > s.index)
    let merged = s.tail
    if (fromWal.length > 0) {
      const from = fromWal[0]!.index
      const tailEnd = s.index + s.tail.length
      if (from > tailEnd + 1) return broken(`the store ends at index ${tailEnd} and the WAL resumes at ${from}: entries ${tailEnd + 1}..${from - 1} are lost`)
      merged = s.tail.slice(0, from - s.index - 1).concat(fromWal)
    }
    const view = new MemoryStorage(s.conf.voters)
    view.applySnapshot({ metadata: { index: s.index, term: s.term, conf: s.conf }, data: s.data })
    view.append(merged)
    const hs = newerHardState(s.hardState, r?.hardState ?? null)
    if (hs !== null) view.setHardState(hs)
    // drained into the store (synced), as recovery does before the group opens, so that
    // the checkpoint addGroup stages is true and the old segments may be retired
    this.store = { ...s, hardState: hs, tail: merged }
    const engine = new LogEngine(wal)
    engine.addGroup(SIM_GROUP, view, { index: s.index, term: s.term })
    const c = engine.commit()
    if (!c.ok) return broken(`the first commit after recovery failed: ${c.error.code} ${c.error.message}`)
    this.wal = wal
    this.engine = engine
    return { kind: 'ok', view, report, entries: merged }
  }

  /**
   * Runs the commit of a write in flight on a machine that dies inside its fdatasync:
   * returns the disk the crash leaves (null if the commit never reached a sync).
   */
  commitAndCrash(stage: Ready | null, crash: CrashOptions): { readonly fs: MemoryWalFs; readonly write: WriteSpan | null } | null {
    const engine = this.engine!
    if (stage !== null) engine.stage(SIM_GROUP, stage)
    this.proxy.captureCrashes(crash)
    engine.commit()
    const got = this.proxy.captured
    this.proxy.captureCrashes(null)
    return got
  }

  /** A checkpoint begins: the host captured `state` now; its store write completes later (finishCheckpoint). */
  beginCheckpoint(): void {
    this.engine!.checkpointBegin(SIM_GROUP)
  }

  /** The store write of a checkpoint is durable: the checkpoint is recorded and committed. */
  finishCheckpoint(state: StoreState): WriteOutcome {
    const engine = this.engine!
    this.store = state
    engine.checkpointed(SIM_GROUP, { index: state.index, term: state.term })
    const c = engine.commit()
    return c.ok ? { ok: true, retired: 0 } : { ok: false, code: c.error.code, message: c.error.message }
  }

  /** A checkpoint that began will not complete (its store write was superseded). */
  cancelCheckpoint(): void {
    this.engine!.checkpointFailed(SIM_GROUP)
  }

  /** Whether the group must checkpoint before segments through `throughSeq` can go. */
  checkpointDue(throughSeq: number): boolean {
    return this.engine!.checkpointsDue(throughSeq).length > 0
  }

  /** GroupRuntime's retirement once no checkpoint is due: carry an idle group's record forward, commit, retire. */
  retire(throughSeq: number): WriteOutcome {
    const engine = this.engine!
    engine.carryForward(throughSeq)
    const c = engine.commit()
    if (!c.ok) return { ok: false, code: c.error.code, message: c.error.message }
    if (throughSeq <= this.retiredThrough || !engine.canRetire(throughSeq)) return { ok: true, retired: 0 }
    const r = engine.retire(throughSeq)
    if (!r.ok) return { ok: false, code: r.error.code, message: r.error.message }
    const retired = throughSeq - this.retiredThrough
    this.retiredThrough = throughSeq
    return { ok: true, retired }
  }
}

export type WriteOutcome = { readonly ok: true; readonly retired: number } | { readonly ok: false; readonly code: 'WAL_FULL' | 'WAL_IO'; readonly message: string }

// ---- what a crash must leave -------------------------------------------------------

/** A node's durable log as the simulator knows it: what recovery must give back. */
export interface LogImage {
  readonly first: number
  readonly entries: readonly Entry[]
  readonly hardState: HardState
}

/** The durable part of `st`: its entries and hard state, the commit index as last synced. */
export function imageOf(st: MemoryStorage, syncedCommit: number): LogImage {
  const first = st.firstIndex()
  const last = st.lastIndex()
  const hs = st.hardState()
  return { first, entries: last >= first ? st.entries(first, last + 1, Infinity) : [], hardState: { ...hs, commit: Math.min(hs.commit, syncedCommit) } }
}

/** `st` once `rd` is durable too (a write in flight that the crash may have let through). */
export function imageAfter(st: MemoryStorage, rd: Ready): LogImage {
  const first = st.firstIndex()
  const c = new MemoryStorage()
  c.applySnapshot({ metadata: { index: first - 1, term: st.term(first - 1), conf: st.snapshot().metadata.conf }, data: new Uint8Array(0) })
  if (st.lastIndex() >= first) c.append(st.entries(first, st.lastIndex() + 1, Infinity))
  c.setHardState(st.hardState())
  c.persist(rd)
  return imageOf(c, c.hardState().commit)
}

/** Null if `got` holds everything `want` had made durable, unchanged; else what differs. */
export function compareImage(got: MemoryStorage, want: LogImage): string | null {
  const last = want.first + want.entries.length - 1
  if (got.lastIndex() !== last) return `its log ends at ${got.lastIndex()}, the durable one at ${last}`
  const lo = Math.max(got.firstIndex(), want.first)
  const mine = lo <= last ? got.entries(lo, last + 1, Infinity) : []
  for (let i = lo; i <= last; i++) {
    const w = want.entries[i - want.first]!
    const g = mine[i - lo]!
    if (g.term !== w.term || entryKey(g) !== entryKey(w)) return `index ${i} holds ${entryKey(g)}@t${g.term}, the durable log ${entryKey(w)}@t${w.term}`
  }
  const hs = got.hardState()
  const w = want.hardState
  if (hs.term !== w.term || hs.vote !== w.vote) return `hard state term ${hs.term} vote ${hs.vote}, durably term ${w.term} vote ${w.vote}`
  if (hs.commit < w.commit) return `commit index ${hs.commit}, durably ${w.commit}`
  return null
}

// ---- flips ---------------------------------------------------------------------------

export type FlipKind = 'synced' | 'inflight' | 'unused' | 'newest' | 'forged'

export interface Flip {
  readonly kind: FlipKind
  readonly path: string
  readonly offset: number
  readonly bit: number
  /** For `inflight`: recovery may refuse (see inflightMayRefuse); `synced` and `newest` must. */
  readonly mayRefuse: boolean
}

interface Span {
  readonly path: string
  readonly from: number
  readonly to: number
}

interface SegmentLayout {
  readonly path: string
  readonly seq: number
  readonly size: number
  /** Committed commits, in order: [start, end) in the file. */
  readonly commits: readonly { readonly start: number; readonly end: number; readonly commit: number }[]
  /** Entry frames of those commits: where each starts among its commit's frame bytes, and its length. */
  readonly entries: readonly { readonly at: number; readonly bytes: number; readonly commit: number }[]
  readonly dataEnd: number
}

/** The live segments of the WAL in `fs`, read back with the WAL's own recovery scan. */
export function walLayout(fs: MemoryWalFs, dir: string = WAL_DIR): SegmentLayout[] {
  const listed = fs.list(dir)
  if (!listed.ok) return []
  const segs: { seq: number; path: string }[] = []
  for (const name of listed.value) {
    const c = classifyName(name)
    if (c.kind === 'segment') segs.push({ seq: c.seq, path: `${dir}/${name}` })
  }
  segs.sort((a, b) => a.seq - b.seq)
  return segs.map(({ seq, path }) => {
    const bytes = fs.readAll(path)
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    const commits: { start: number; end: number; commit: number }[] = []
    const entries: { at: number; bytes: number; commit: number }[] = []
    if (decodeSegmentHeader(buf).kind === 'ok') {
      for (const c of scanSegment(buf, seq, buf.length).commits) {
        for (const f of c.frames) {
          if (f.type === WalRecordType.Entry && f.bytes > FRAME_HEADER_BYTES) entries.push({ at: f.payloadAt - FRAME_HEADER_BYTES - c.frameStart, bytes: f.bytes, commit: commits.length })
        }
        commits.push({ start: c.start, end: c.end, commit: c.commit })
      }
    }
    const dataEnd = commits.length > 0 ? commits[commits.length - 1]!.end : DATA_START
    return { path, seq, size: bytes.length, commits, entries, dataEnd }
  })
}

function overlaps(s: Span, w: WriteSpan | null): boolean {
  return w !== null && s.path === w.path && s.from < w.position + w.length && w.position < s.to
}

/** `s` minus the bytes of `w`. */
function without(s: Span, w: WriteSpan | null): Span[] {
  if (!overlaps(s, w)) return [s]
  const end = w!.position + w!.length
  const out: Span[] = []
  if (s.from < w!.position) out.push({ path: s.path, from: s.from, to: w!.position })
  if (end < s.to) out.push({ path: s.path, from: end, to: s.to })
  return out
}

function pickIn(spans: readonly Span[], prng: Prng): { path: string; offset: number } | null {
  const total = spans.reduce((n, s) => n + (s.to - s.from), 0)
  if (total <= 0) return null
  let k = prng.int(total)
  for (const s of spans) {
    const n = s.to - s.from
    if (k < n) return { path: s.path, offset: s.from + k }
    k -= n
  }
  return null
}

/**
 * Flips one bit of the WAL in `fs` where `kind` says (see the header); `inflight` is the
 * write a crash interrupted, if any. Null when there is no such byte.
 */
export function flip(fs: MemoryWalFs, kind: FlipKind, prng: Prng, inflight: WriteSpan | null): Flip | null {
  const layout = walLayout(fs)
  if (kind === 'forged') return forge(fs, layout, prng, inflight)
  let newestAt = -1
  for (let k = layout.length - 1; k >= 0 && newestAt < 0; k--) if (layout[k]!.commits.length > 0) newestAt = k
  const spans: Span[] = []
  for (let k = 0; k < layout.length; k++) {
    const seg = layout[k]!
    const { path, commits } = seg
    if (kind === 'synced') {
      spans.push({ path, from: 0, to: DATA_START })
      const upto = k === newestAt ? commits.length - 1 : commits.length
      for (let c = 0; c < upto; c++) spans.push({ path, from: commits[c]!.start, to: commits[c]!.end })
    } else if (kind === 'newest' && k === newestAt) {
      const c = commits[commits.length - 1]!
      spans.push({ path, from: c.start, to: c.end })
    } else if (kind === 'unused') {
      spans.push({ path, from: seg.dataEnd, to: seg.size })
    } else if (kind === 'inflight' && inflight !== null && inflight.path === path) {
      spans.push({ path, from: inflight.position, to: Math.min(seg.size, inflight.position + inflight.length) })
    }
  }
  // the interrupted write's bytes are its own kind
  const usable = kind === 'inflight' ? spans : spans.flatMap((s) => without(s, inflight))
  const at = pickIn(usable, prng)
  if (at === null) return null
  const bit = prng.int(8)
  const mayRefuse = kind === 'inflight' && inflight !== null && inflightMayRefuse(layout, inflight, at, fs)
  fs.flipBit(at.path, at.offset, bit)
  return { kind, path: at.path, offset: at.offset, bit, mayRefuse }
}

/** A payload bit of a committed entry flipped and its frame's checksum fixed: damage no CRC can see. */
function forge(fs: MemoryWalFs, layout: readonly SegmentLayout[], prng: Prng, inflight: WriteSpan | null): Flip | null {
  const frames: { path: string; start: number; at: number; bytes: number }[] = []
  for (const seg of layout) {
    for (const e of seg.entries) {
      const c = seg.commits[e.commit]!
      if (!overlaps({ path: seg.path, from: c.start, to: c.end }, inflight)) frames.push({ path: seg.path, start: c.start, at: e.at, bytes: e.bytes })
    }
  }
  if (frames.length === 0) return null
  const f = prng.pick(frames)
  // frame byte l of the commit sits at fileOffsetOf(start, l): a frame may span sectors
  const fileAt = (l: number): number => fileOffsetOf(f.start, l)
  const offset = fileAt(f.at + FRAME_HEADER_BYTES + prng.int(f.bytes - FRAME_HEADER_BYTES))
  const bit = prng.int(8)
  fs.flipBit(f.path, offset, bit)
  const file = fs.readAll(f.path)
  const frame = Buffer.alloc(f.bytes)
  for (let l = 0; l < f.bytes; l++) frame[l] = file[fileAt(f.at + l)]!
  const want = crc32c(frame.subarray(8)) >>> 0
  const diff = (frame.readUInt32BE(4) ^ want) >>> 0
  for (let b = 0; b < 32; b++) {
    if ((diff >>> b) & 1) fs.flipBit(f.path, fileAt(f.at + 4 + (3 - (b >> 3))), b & 7)
  }
  return { kind: 'forged', path: f.path, offset, bit, mayRefuse: false }
}

/**
 * Whether recovery may refuse a WAL whose interrupted write `w` took flip `f`: yes when
 * the write had landed whole (a complete commit, which no recovery can tell from an
 * acknowledged one), or when the flip hit the stamp of one of its sectors that had not
 * landed (then it reads as damaged, not as missing).
 */
function inflightMayRefuse(layout: readonly SegmentLayout[], w: WriteSpan, at: { path: string; offset: number }, fs: MemoryWalFs): boolean {
  const seg = layout.find((s) => s.path === w.path)
  if (seg === undefined) return false
  if (seg.commits.some((c) => c.start === w.position)) return true
  const sector = at.offset - (at.offset % SECTOR_BYTES)
  if (at.offset - sector >= 20) return false
  const file = fs.readAll(w.path)
  const st = readStamp(Buffer.from(file.buffer, file.byteOffset, file.length), sector)
  return !(st.kind === 'stamp' && st.seq === seg.seq && st.part === (sector - w.position) / SECTOR_BYTES)
}
