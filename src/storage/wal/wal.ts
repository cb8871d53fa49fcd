/**
 * Wal: one Raft write-ahead log per worker thread, shared by every group the worker
 * hosts (DESIGN §4). Each turn of the worker loop add()s the records of every group with
 * work, then commit() makes ONE vectored write and ONE fdatasync of all of them, on the
 * calling thread: fs.writevSync + fs.fdatasyncSync, no libuv pool round trip on the
 * acknowledgement path. The WAL knows nothing of Raft: records are opaque (group, type,
 * index, term, payload), and the caller gives them meaning (a later record for the same
 * group and index replaces an earlier one, and so on).
 *
 * Segments (segment.ts) are pre-allocated files, so a commit only overwrites bytes inside
 * one and its fdatasync has no file size or block allocation to journal. Why that pays,
 * measured with node:fs in /tmp on this VM (ext4; the disk is shared and noisy, so each
 * figure is a median of 3 runs, range in brackets), one 137 B write + fdatasync:
 * appending to a growing file p50 168 µs [147-285], overwriting a pre-allocated one
 * 126 µs [91-198]: 1.3-1.6x. (SHARED-LOG §3's 154-171 against 117-125 µs is the same
 * ratio; its "2.4-2.7x the syncs/s" did not reproduce as a latency ratio.) The WAL:
 *   1 record of 100 B per commit      6,000 commits/s [2.6k-6.7k], p50 145 µs [108-260]
 *   1000 records of 100 B per commit  ~990 commits/s = ~1M records/s, p50 0.73 ms
 *   1 MiB per commit                  220 MB/s [170-260] zero-filling new segments,
 *                                     270 MB/s [220-315] recycling retired ones
 *   recovery                          1.1M records/s (a 64 MiB segment of 100 B records in 0.44 s)
 * (Those figures are of format version 1, before sectors.) Disk bytes per payload byte
 * (write amplification): (33 + payload) per record plus 33 per commit, in sectors of 492
 * frame bytes each (512 on disk), a commit starting on a sector of its own: 5.1 for one
 * 100 B record per commit (one sector), 1.39 for 1000; a fresh segment's zero fill adds
 * 1.0 once, a recycled one nothing.
 *
 * The next segment is prepared ahead, in the background (fs.promises), from the moment a
 * segment becomes active; a roll that comes first prepares one synchronously, without
 * the zero fill (segment.ts). So a commit that rolls still makes one write and one sync,
 * into a file whose name and header are already durable.
 *
 * Commit rules:
 * - A commit that does not fit in the active segment's remaining space goes whole into
 *   the next segment (records never span segments), whose first frame records where the
 *   active one's data ends. A commit larger than a segment extends the file it goes into
 *   (that one commit pays for an append).
 * - A failed write leaves the records queued and the position unmoved, so the next
 *   commit() rewrites them from the last good position. ENOSPC (from a write, or from
 *   preparing the next segment) is WAL_FULL: retriable once space returns. Anything else
 *   is WAL_IO, and so is any failed fdatasync, whatever its code: after a failed
 *   fdatasync Linux may have dropped the dirty pages and cleared the error, so a retry
 *   would "succeed" without the data (fsyncgate). WAL_IO is final: every later commit()
 *   and retire() returns it and the caller must fail-stop.
 * - retire() removes (or renames for reuse) the oldest segments one at a time, each with
 *   its own directory sync, so a crash can only leave a contiguous run of segments.
 *
 * Not for concurrent use: one Wal per directory, driven by one thread. After close(),
 * await settled() before opening the same directory again in the same process.
 *
 * Imports node:path, src/base and the modules of this folder.
 */
import { join } from 'node:path'
import { assert, fail, ok } from '../../base/index.js'
import type { Failure, Result } from '../../base/index.js'
import { CALLER_TYPE_MAX, CALLER_TYPE_MIN, CommitBuffer, DATA_START, commitOverheadBytes, diskBytesFor, frameBytesOf } from './format.js'
import type { Seal, WalRecord } from './format.js'
import type { WalFile, WalFs } from './fs.js'
import { walLimits } from './limits.js'
import { recover } from './recovery.js'
import type { WalOpenError, WalRecoveryReport } from './recovery.js'
import { Preparation, freeName, prepareSync, segmentName, writeAll } from './segment.js'
import type { SegmentSource } from './segment.js'

export interface WalOptions {
  readonly fs: WalFs
  /** One directory per WAL, e.g. <data-dir>/wal/w0. */
  readonly dir: string
  /** Pre-allocated segment size; default walLimits.segmentBytesDefault (64 MiB). */
  readonly segmentBytes?: number
  /** Reuse retired segment files instead of deleting them (default true). */
  readonly recycle?: boolean
}

export type WalWriteError = 'WAL_FULL' | 'WAL_IO'

interface OpenSegment {
  readonly seq: number
  readonly path: string
  readonly file: WalFile
  /** Its size on disk. */
  fileBytes: number
  /** What commits may fill before a roll: the segment size, or more for an oversized commit. */
  capacityBytes: number
  /** Where the next commit into it starts: the end of its committed data. */
  pos: number
  /** The number its next commit (or attempt at one) takes. */
  nextCommit: number
}

interface SealedSegment {
  readonly seq: number
  readonly name: string
  readonly fileBytes: number
  readonly dataEnd: number
}

type WriteFailure = { readonly ok: false; readonly error: Failure<WalWriteError> }

export class Wal {
  readonly #fs: WalFs
  readonly #dir: string
  readonly #segmentBytes: number
  readonly #recycle: boolean
  readonly #buf = new CommitBuffer()
  /** Live segments before the active one, oldest first. */
  readonly #sealed: SealedSegment[]
  #active: OpenSegment
  #next: OpenSegment | null
  #job: Preparation | null = null
  #jobSettled: Promise<void> = Promise.resolve()
  /** Set when background preparation met ENOSPC; cleared by a roll or a retire, which may free space. */
  #prepBlocked = false
  readonly #free: string[]
  #queue: WalRecord[] = []
  #pendingBytes = 0
  #failure: Failure<'WAL_IO'> | null = null
  #closed = false

  private constructor(opts: Required<WalOptions>, sealed: SealedSegment[], active: OpenSegment, next: OpenSegment | null, free: string[]) {
    this.#fs = opts.fs
    this.#dir = opts.dir
    this.#segmentBytes = opts.segmentBytes
    this.#recycle = opts.recycle
    this.#sealed = sealed
    this.#active = active
    this.#next = next
    this.#free = free
  }

  /**
   * Opens (creating if missing) the WAL in dir, recovering it: every valid record, oldest
   * first, is passed to onRecord with the sequence number of its segment. If open fails,
   * discard what onRecord received. Payloads are views into read buffers: copy to keep.
   */
  static open(opts: WalOptions, onRecord: (rec: WalRecord, segmentSeq: number) => void): Result<{ wal: Wal; report: WalRecoveryReport }, WalOpenError> {
    const o: Required<WalOptions> = {
      fs: opts.fs,
      dir: opts.dir,
      segmentBytes: opts.segmentBytes ?? walLimits.segmentBytesDefault,
      recycle: opts.recycle ?? true,
    }
    assert(
      Number.isInteger(o.segmentBytes) && o.segmentBytes >= walLimits.segmentBytesMin && o.segmentBytes <= walLimits.commitBytesMax,
      () => `WalOptions.segmentBytes ${o.segmentBytes} outside ${walLimits.segmentBytesMin}..${walLimits.commitBytesMax}`,
    )
    const { fs, dir } = o
    const io = (what: string, e: Failure): { readonly ok: false; readonly error: Failure<'WAL_IO'> } => fail('WAL_IO', `${what}: ${e.code} ${e.message}`)
    const made = fs.mkdirp(dir)
    if (!made.ok) return io(`cannot create WAL directory ${dir}`, made.error)
    const rec = recover(fs, dir, onRecord)
    if (!rec.ok) return rec
    let segments = rec.value.segments.slice()
    let freeNames = rec.value.freeNames.slice()

    // No segment at all: a new WAL (or one whose files were all removed). Free files may
    // hold stale frames of any seq, and seqs restart at 1, so they must go.
    if (segments.length === 0) {
      for (const name of freeNames) fs.remove(join(dir, name))
      freeNames = []
      let r = prepareSync(fs, dir, 1, o.segmentBytes, { kind: 'fresh' }, true)
      // a full disk: a header-only segment, so that a node can start and serve reads (its
      // commits then append, and answer WAL_FULL until there is room)
      if (!r.ok && r.error.code === 'ENOSPC') r = prepareSync(fs, dir, 1, o.segmentBytes, { kind: 'fresh' }, false)
      if (!r.ok) return io(`cannot create the first WAL segment in ${dir}`, r.error)
      segments = [{ seq: 1, name: segmentName(1), fileBytes: o.segmentBytes, dataEnd: DATA_START, nextCommit: 1 }]
    }

    // The segment after the active one (empty) is the prepared next. Empty segments
    // beyond that can only be leftovers of a crash: they hold no record.
    const a = rec.value.activeIndex
    if (segments.length > a + 2) {
      for (const s of segments.slice(a + 2)) {
        const r = fs.remove(join(dir, s.name))
        if (!r.ok) return io(`cannot remove the unused segment ${join(dir, s.name)}`, r.error)
      }
      const r = fs.syncDir(dir)
      if (!r.ok) return io(`cannot sync WAL directory ${dir}`, r.error)
      segments = segments.slice(0, a + 2)
    }

    // Free files worth keeping: exactly one segment long, a bounded number of them.
    const free: string[] = []
    for (const name of freeNames) {
      const path = join(dir, name)
      const h = fs.open(path)
      const size = h.ok ? fs.size(h.value) : h
      if (h.ok) fs.close(h.value)
      if (o.recycle && size.ok && size.value === o.segmentBytes && free.length < walLimits.freeSegmentsMax) free.push(name)
      else fs.remove(path)
    }

    const openSeg = (seq: number, pos: number, nextCommit: number): Result<OpenSegment, 'WAL_IO'> => {
      const path = join(dir, segmentName(seq))
      const h = fs.open(path)
      if (!h.ok) return io(`cannot open ${path}`, h.error)
      const size = fs.size(h.value)
      if (!size.ok) {
        fs.close(h.value)
        return io(`cannot stat ${path}`, size.error)
      }
      return ok({ seq, path, file: h.value, fileBytes: size.value, capacityBytes: Math.max(size.value, o.segmentBytes), pos, nextCommit })
    }
    const activeSeg = segments[a]!
    const active = openSeg(activeSeg.seq, activeSeg.dataEnd, activeSeg.nextCommit)
    if (!active.ok) return active
    let next: OpenSegment | null = null
    if (segments.length > a + 1) {
      const n = openSeg(segments[a + 1]!.seq, DATA_START, segments[a + 1]!.nextCommit)
      if (!n.ok) {
        fs.close(active.value.file)
        return n
      }
      next = n.value
    }
    const sealed = segments.slice(0, a).map((s) => ({ seq: s.seq, name: s.name, fileBytes: s.fileBytes, dataEnd: s.dataEnd }))
    const wal = new Wal(o, sealed, active.value, next, free)
    const tornBytesDropped = rec.value.tornTails.reduce((n, t) => n + t.bytes, 0)
    const report: WalRecoveryReport = {
      segments: sealed.length + 1,
      records: rec.value.records,
      bytes: rec.value.bytes,
      firstSeq: segments[0]!.seq,
      lastSeq: activeSeg.seq,
      tornBytesDropped,
      tornTails: rec.value.tornTails,
    }
    wal.#maybePrepare()
    return ok({ wal, report })
  }

  /** Queues a record for the next commit (no I/O; the payload is referenced, not copied, until commit). */
  add(rec: WalRecord): void {
    assert(!this.#closed, 'Wal.add after close')
    assert(Number.isInteger(rec.group) && rec.group >= 0 && rec.group <= 0xffff_ffff, () => `WalRecord.group ${rec.group} is not a u32`)
    assert(Number.isInteger(rec.type) && rec.type >= CALLER_TYPE_MIN && rec.type <= CALLER_TYPE_MAX, () => `WalRecord.type ${rec.type} outside ${CALLER_TYPE_MIN}..${CALLER_TYPE_MAX}`)
    assert(Number.isSafeInteger(rec.index) && rec.index >= 0, () => `WalRecord.index ${rec.index} is not a safe non-negative integer`)
    assert(Number.isSafeInteger(rec.term) && rec.term >= 0, () => `WalRecord.term ${rec.term} is not a safe non-negative integer`)
    assert(rec.payload.length <= walLimits.recordPayloadBytesMax, () => `WalRecord payload of ${rec.payload.length} bytes exceeds ${walLimits.recordPayloadBytesMax}`)
    const bytes = frameBytesOf(rec.payload.length)
    assert(
      diskBytesFor(this.#pendingBytes + bytes + commitOverheadBytes(true)) <= walLimits.commitBytesMax,
      () => `Wal.add: ${this.#pendingBytes + bytes} pending bytes exceed walLimits.commitBytesMax; commit first`,
    )
    this.#queue.push(rec)
    this.#pendingBytes += bytes
  }

  get pendingRecords(): number {
    return this.#queue.length
  }

  /** Frame bytes the queued records take on disk. */
  get pendingBytes(): number {
    return this.#pendingBytes
  }

  get activeSeq(): number {
    return this.#active.seq
  }

  /** Bytes of the live (unretired) segment files, active included, for metrics. */
  get liveBytes(): number {
    let n = this.#active.fileBytes
    for (const s of this.#sealed) n += s.fileBytes
    return n
  }

  /** Whether the segment the next roll will use is ready (prepared, durably named). */
  get nextPrepared(): boolean {
    return this.#next !== null
  }

  /**
   * ONE vectored write (split only past IOV_MAX buffers or after a short write) and ONE
   * fdatasync of everything added since the last successful commit. Returns the segment
   * seq the records landed in and the bytes written. See the header for the errors.
   */
  commit(): Result<{ seq: number; bytes: number }, WalWriteError> {
    assert(!this.#closed, 'Wal.commit after close')
    if (this.#failure !== null) return fail('WAL_IO', this.#failure.message)
    if (this.#queue.length === 0) return ok({ seq: this.#active.seq, bytes: 0 })
    const active = this.#active
    let target = active
    let seal: Seal | null = null
    if (active.pos === DATA_START) {
      // The segment's first commit: its SEAL records where the previous one ends.
      const prev = this.#sealed[this.#sealed.length - 1]
      seal = { prevSeq: active.seq - 1, prevEnd: prev !== undefined && prev.seq === active.seq - 1 ? prev.dataEnd : 0 }
    } else if (active.pos + diskBytesFor(this.#pendingBytes + commitOverheadBytes(false)) > active.capacityBytes) {
      const n = this.#takeNext()
      if (!n.ok) return n
      target = n.value
      seal = { prevSeq: active.seq, prevEnd: active.pos }
    }
    const rolled = target !== active
    // A number per attempt: sectors a failed write left behind never pass for the retry's.
    const encoded = this.#buf.encode({ seq: target.seq, commit: target.nextCommit++, at: target.pos }, this.#queue, seal)
    const w = writeAll(this.#fs, target.file, encoded.iovecs, target.pos)
    if (!w.ok) {
      if (rolled) this.#next = target // keep it for the retry
      if (w.error.code === 'ENOSPC') return fail('WAL_FULL', `WAL write to ${target.path} at ${target.pos}: ${w.error.message}`)
      return this.#stop(`WAL write to ${target.path} at ${target.pos} failed: ${w.error.code} ${w.error.message}`)
    }
    const s = this.#fs.datasync(target.file)
    if (!s.ok) return this.#stop(`fdatasync of ${target.path} failed: ${s.error.code} ${s.error.message}`)
    if (rolled) {
      this.#sealed.push({ seq: active.seq, name: segmentName(active.seq), fileBytes: active.fileBytes, dataEnd: active.pos })
      this.#fs.close(active.file)
      this.#active = target
      this.#prepBlocked = false
    }
    target.pos += encoded.diskBytes
    target.fileBytes = Math.max(target.fileBytes, target.pos)
    target.capacityBytes = Math.max(target.capacityBytes, target.fileBytes)
    this.#queue = []
    this.#pendingBytes = 0
    this.#maybePrepare()
    return ok({ seq: target.seq, bytes: encoded.diskBytes })
  }

  /**
   * Retires (deletes, or renames for reuse) every segment with seq <= throughSeq, oldest
   * first; the active segment is never retired. The caller decides when: once every group
   * with records in those segments has made them durable elsewhere.
   */
  retire(throughSeq: number): Result<void, WalWriteError> {
    assert(!this.#closed, 'Wal.retire after close')
    if (this.#failure !== null) return fail('WAL_IO', this.#failure.message)
    while (this.#sealed.length > 0 && this.#sealed[0]!.seq <= throughSeq) {
      const seg = this.#sealed[0]!
      const path = join(this.#dir, seg.name)
      const reuse = this.#recycle && seg.fileBytes === this.#segmentBytes && this.#free.length < walLimits.freeSegmentsMax
      const free = reuse ? this.#unusedFreeName(seg.seq) : ''
      const r = reuse ? this.#fs.rename(path, join(this.#dir, free)) : this.#fs.remove(path)
      if (!r.ok) {
        if (r.error.code === 'ENOSPC') return fail('WAL_FULL', `cannot retire ${path}: ${r.error.message}`)
        return this.#stop(`cannot retire ${path}: ${r.error.code} ${r.error.message}`)
      }
      const s = this.#fs.syncDir(this.#dir)
      if (!s.ok) return this.#stop(`fsync of WAL directory ${this.#dir} failed: ${s.error.code} ${s.error.message}`)
      this.#sealed.shift()
      if (reuse) this.#free.push(free)
    }
    this.#prepBlocked = false
    this.#maybePrepare()
    return ok(undefined)
  }

  /** Closes the files and cancels background preparation (see settled()). Queued records are dropped. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#job?.cancel()
    this.#fs.close(this.#active.file)
    if (this.#next !== null) this.#fs.close(this.#next.file)
    this.#queue = []
    this.#pendingBytes = 0
  }

  /** Resolves once background preparation has stopped (for tests, and before reopening after close()). */
  settled(): Promise<void> {
    return this.#jobSettled
  }

  /** WAL_IO: final. */
  #stop(message: string): { readonly ok: false; readonly error: Failure<'WAL_IO'> } {
    this.#failure ??= { code: 'WAL_IO', message }
    return fail('WAL_IO', message)
  }

  #fsFailure(what: string, e: Failure): WriteFailure {
    if (e.code === 'ENOSPC') return fail('WAL_FULL', `${what}: ${e.message}`)
    return this.#stop(`${what}: ${e.code} ${e.message}`)
  }

  /** The segment the roll goes to: the prepared one, the background job finished here, or one prepared now. */
  #takeNext(): Result<OpenSegment, WalWriteError> {
    if (this.#next !== null) {
      const n = this.#next
      this.#next = null
      return ok(n)
    }
    const seq = this.#active.seq + 1
    assert(seq <= walLimits.segmentSeqMax, 'WAL segment seqs exhausted')
    const job = this.#job
    if (job !== null) {
      this.#job = null
      job.overtake()
      if (job.canFinishSync) {
        const r = job.finishSync()
        if (!r.ok) {
          job.discard()
          return this.#fsFailure(`cannot finish preparing ${job.finalPath}`, r.error)
        }
        return this.#openNew(seq)
      }
      // Too early to use: when it settles, its file is kept for reuse (see #settle).
    }
    // No zero fill here, on the commit path: a free file if there is one, else a file of
    // just a header that this segment's commits extend (segment.ts, prepareSync).
    const r = prepareSync(this.#fs, this.#dir, seq, this.#segmentBytes, this.#takeFree(), false)
    if (!r.ok) return this.#fsFailure(`cannot prepare WAL segment ${segmentName(seq)} in ${this.#dir}`, r.error)
    return this.#openNew(seq)
  }

  #openNew(seq: number): Result<OpenSegment, WalWriteError> {
    const path = join(this.#dir, segmentName(seq))
    const h = this.#fs.open(path)
    if (!h.ok) return this.#stop(`cannot open ${path}: ${h.error.code} ${h.error.message}`)
    const size = this.#fs.size(h.value)
    if (!size.ok) {
      this.#fs.close(h.value)
      return this.#stop(`cannot stat ${path}: ${size.error.code} ${size.error.message}`)
    }
    return ok({ seq, path, file: h.value, fileBytes: size.value, capacityBytes: Math.max(size.value, this.#segmentBytes), pos: DATA_START, nextCommit: 1 })
  }

  #unusedFreeName(seq: number): string {
    for (;;) {
      const name = freeName(seq)
      if (!this.#fs.exists(join(this.#dir, name))) return name
    }
  }

  #takeFree(): SegmentSource {
    const name = this.#recycle ? this.#free.pop() : undefined
    return name === undefined ? { kind: 'fresh' } : { kind: 'recycled', freeName: name }
  }

  /**
   * Starts preparing the next segment in the background as soon as a segment becomes
   * active. (Waiting until it is half full left too little time: with 1 MiB commits, half
   * of a 64 MiB segment went by in ~30 ms, while zero-filling the next took 100 ms and
   * more on the same disk.)
   */
  #maybePrepare(): void {
    if (this.#closed || this.#failure !== null || this.#next !== null || this.#job !== null || this.#prepBlocked) return
    const a = this.#active
    if (a.seq + 1 > walLimits.segmentSeqMax) return
    const job = new Preparation(this.#fs, this.#dir, a.seq + 1, this.#segmentBytes, this.#takeFree())
    this.#job = job
    // Chained, so settled() also waits for jobs cancelled earlier that are still running.
    this.#jobSettled = Promise.all([this.#jobSettled, job.settled.then(() => this.#settle(job))]).then(() => undefined)
  }

  #settle(job: Preparation): void | Promise<void> {
    if (job.cancelledIn !== null) {
      // The writer finished this job itself (its temp file is gone), or overtook it: then
      // a whole file is kept for the next preparation, which needs only write a header.
      if (!this.#fs.exists(job.tmpPath)) return
      if (!this.#closed && job.fileComplete && this.#recycle && this.#free.length < walLimits.freeSegmentsMax) {
        const name = this.#unusedFreeName(job.seq)
        if (this.#fs.rename(job.tmpPath, join(this.#dir, name)).ok) {
          this.#free.push(name)
          this.#maybePrepare()
          return
        }
      }
      // an overtaken job's partial file: unlinking 64 MiB took ~35 ms, off the commit thread
      return job.discardAsync()
    }
    assert(this.#job === job, 'a background preparation settled that the WAL no longer tracks')
    this.#job = null
    if (job.phase === 'failed') {
      const e = job.failure!
      if (e.code === 'ENOSPC') this.#prepBlocked = true
      else this.#stop(`background preparation of ${job.finalPath} failed (${job.failedIn}): ${e.code} ${e.message}`)
      return job.discardAsync()
    }
    const n = this.#openNew(job.seq)
    if (n.ok) this.#next = n.value
  }
}
