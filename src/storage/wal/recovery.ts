/**
 * Recovery: reads a WAL directory back, hands every committed record to the caller
 * (oldest first), and decides for each sector that fails its checks whether a crash tore
 * it (truncate, report) or the disk lost or damaged data (refuse, naming file and offset).
 *
 * Only one commit can ever be torn: the writer syncs each commit before it writes the
 * next. A commit is a run of sectors, each stamped with its segment, its commit number,
 * its part and the commit's sector count (format.ts), so the rules, per segment:
 * - Segments must be numbered without gaps (a missing middle segment is lost data). A
 *   missing prefix is fine: retire() removes the oldest first, one durable step each.
 * - A sealed segment (a later segment with data names its exact end in its SEAL frame)
 *   must hold complete, valid commits exactly up to that end; anything else is corruption.
 * - In the segment(s) after the last seal, commits are read until the sector where the
 *   next one would start holds none (blank, stale, or an older commit's). A commit whose
 *   stamps say some of its sectors are not there was torn by a crash: it is dropped. A
 *   commit whose sectors are all there but whose frames fail their checksums, or one of
 *   whose stamps fails its check while the others are all there, was damaged after it was
 *   written: corruption, even if it is the newest (it may have been acknowledged).
 * - After the last commit, a complete commit of the same segment further on means the
 *   bytes before it had been synced: corruption. Sectors of the torn commit itself may
 *   lie there (a disk may reorder writes that were never synced); they are zeroed at once
 *   with the rest of the torn commit, reported, and overwritten by the next commit, whose
 *   number is above every number found in the file.
 * - A sector stamped with an older seq is a recycled file's stale byte: it ends the data.
 *   A valid stamp of a newer seq, or a checksummed frame that cannot have been written
 *   (reserved type, unsafe integer, a SEAL or COMMIT out of place), is corruption.
 * - A damaged stamp where the next commit would start, with no sector of a commit after
 *   it: if one flipped bit explains it, the stamp it was says whether it was a commit's
 *   (corruption) or a stale or blank sector (the end); if none does, a frame of this
 *   segment in its bytes makes it a commit's (corruption), else it is garbage after the
 *   data (the end). All of this relies on disks writing whole sectors.
 * Lengths are bounded before anything is read by them (format.ts), and each file is read
 * once, whole (it is at most a segment, or one oversized commit).
 *
 * Records are passed to onRecord as they are recovered, so if open() then fails, the
 * caller must discard what it was given. Payloads are views into the segment's frame
 * buffer: keeping one keeps that buffer alive.
 *
 * Imports node:buffer, node:path, src/base, ./format, ./fs, ./limits and ./segment.
 */
import { Buffer } from 'node:buffer'
import { join } from 'node:path'
import { fail, ok } from '../../base/index.js'
import type { Result } from '../../base/index.js'
import { DATA_START, FRAME_HEADER_BYTES, SECTOR_BYTES, SECTOR_PAYLOAD_BYTES, STAMP_BYTES, WalFrameType, decodeSegmentHeader, gatherFrames, readFrame, readStamp, repairStamp } from './format.js'
import type { FrameRead, WalRecord } from './format.js'
import type { WalFile, WalFs } from './fs.js'
import { walLimits } from './limits.js'
import { classifyName, segmentName, writeAll } from './segment.js'

export type WalOpenError = 'WAL_CORRUPT' | 'WAL_IO' | 'WAL_INCOMPATIBLE'

/** Bytes a crash tore off the end, dropped at open. */
export interface WalTornTail {
  readonly file: string
  readonly offset: number
  readonly bytes: number
}

export interface WalRecoveryReport {
  /** Live segments after open. */
  readonly segments: number
  /** Caller records replayed. */
  readonly records: number
  /** Disk bytes of the commits read (their sectors: stamps, frames and padding). */
  readonly bytes: number
  readonly firstSeq: number
  /** The active segment's seq. */
  readonly lastSeq: number
  readonly tornBytesDropped: number
  readonly tornTails: readonly WalTornTail[]
}

export interface RecoveredSegment {
  readonly seq: number
  readonly name: string
  readonly fileBytes: number
  /** Where its committed data ends (the next commit into it starts here). */
  readonly dataEnd: number
  /** The number its next commit takes: above every commit number in the file. */
  readonly nextCommit: number
}

export interface Recovered {
  /** Every <seq>.wal, ascending. */
  readonly segments: readonly RecoveredSegment[]
  /**
   * Which of them the writer resumes: the last with a valid SEAL (its tail was checked
   * and any torn commit zeroed; it may be empty if its first commit was torn), or the
   * first if none has one. Never a segment read in sealed mode, whose bytes past its
   * recorded end were not examined.
   */
  readonly activeIndex: number
  readonly freeNames: readonly string[]
  readonly records: number
  readonly bytes: number
  readonly tornTails: readonly WalTornTail[]
}

type Frame = Extract<FrameRead, { kind: 'frame' }>

type OpenFailure = { readonly ok: false; readonly error: { readonly code: WalOpenError; readonly message: string } }

/** One complete commit of a segment. */
export interface ScannedCommit {
  readonly commit: number
  /** File offsets of its first sector and past its last. */
  readonly start: number
  readonly end: number
  /** Its frames, SEAL and COMMIT included; payloadAt is an offset into `frameBuf`. */
  readonly frames: readonly Frame[]
  /** The buffer its frames were gathered into, and where its frames start in it. */
  readonly frameBuf: Buffer
  readonly frameStart: number
}

/** Why reading a segment stopped at `stopAt`. */
export type ScanStop =
  /** No commit starts there. */
  | { readonly kind: 'end' }
  /** A commit starts there, and some of its sectors are not there. */
  | { readonly kind: 'torn'; readonly extentEnd: number }
  | { readonly kind: 'corrupt'; readonly at: number; readonly reason: string }

export interface SegmentScan {
  readonly commits: readonly ScannedCommit[]
  /** Where the next commit goes: the end of the last complete one. */
  readonly stopAt: number
  readonly stop: ScanStop
  /** The highest commit number stamped anywhere in the bytes read (0 for none). */
  readonly maxCommit: number
  /** Past the last sector of this seq with a commit number above the last complete commit's (stopAt if none). */
  readonly strayEnd: number
}

interface Found {
  readonly seq: number
  readonly name: string
  readonly path: string
  readonly fileBytes: number
  /** The SEAL frame at its start, if it is valid: the previous segment's end. */
  readonly sealPrevEnd: number | null
}

const ZERO_CHUNK = Buffer.alloc(64 << 10)

export function recover(fs: WalFs, dir: string, onRecord: (rec: WalRecord, segmentSeq: number) => void): Result<Recovered, WalOpenError> {
  const listed = fs.list(dir)
  if (!listed.ok) return fail('WAL_IO', `cannot list WAL directory ${dir}: ${listed.error.message}`)
  const seqs: number[] = []
  const freeNames: string[] = []
  for (const name of listed.value) {
    const entry = classifyName(name)
    if (entry.kind === 'segment') seqs.push(entry.seq)
    else if (entry.kind === 'free') freeNames.push(name)
    else if (entry.kind === 'prep') {
      // An unfinished preparation: it never held a record.
      const r = fs.remove(join(dir, name))
      if (!r.ok) return fail('WAL_IO', `cannot remove ${join(dir, name)}: ${r.error.message}`)
    }
  }
  seqs.sort((a, b) => a - b)
  for (let k = 1; k < seqs.length; k++) {
    if (seqs[k] !== seqs[k - 1]! + 1) {
      return fail('WAL_CORRUPT', `WAL ${dir}: segment ${segmentName(seqs[k]!)} follows ${segmentName(seqs[k - 1]!)}; ${segmentName(seqs[k - 1]! + 1)} is missing`)
    }
  }

  const found: Found[] = []
  for (const seq of seqs) {
    const f = inspect(fs, dir, seq)
    if (!f.ok) return f
    found.push(f.value)
  }
  // The last segment with data: every one before it must be sealed by its successor.
  let lastWithData = -1
  for (let k = found.length - 1; k >= 0; k--) {
    if (found[k]!.sealPrevEnd !== null) {
      lastWithData = k
      break
    }
  }

  const segments: RecoveredSegment[] = []
  const tornTails: WalTornTail[] = []
  let records = 0
  let bytes = 0
  for (let k = 0; k < found.length; k++) {
    const seg = found[k]!
    const emit = (c: ScannedCommit): void => {
      bytes += c.end - c.start
      for (const f of c.frames) {
        if (f.type === WalFrameType.Seal || f.type === WalFrameType.Commit) continue
        records++
        onRecord({ group: f.group, type: f.type, index: f.index, term: f.term, payload: c.frameBuf.subarray(f.payloadAt, f.payloadAt + f.bytes - FRAME_HEADER_BYTES) }, seg.seq)
      }
    }
    let dataEnd: number
    let nextCommit: number
    if (k < lastWithData) {
      const next = found[k + 1]!
      if (next.sealPrevEnd === null) {
        return corrupt(next.path, DATA_START, `has no valid SEAL frame, though a later segment (${found[lastWithData]!.name}) holds data`)
      }
      const end = next.sealPrevEnd
      if (end < DATA_START || end % SECTOR_BYTES !== 0) return corrupt(seg.path, 0, `is sealed by ${next.name} at offset ${end}, which is not where a commit may end`)
      if (end > seg.fileBytes) return corrupt(seg.path, seg.fileBytes, `is ${seg.fileBytes} bytes, shorter than its recorded end ${end} (from ${next.name})`)
      const r = sealed(fs, seg, end, emit)
      if (!r.ok) return r
      dataEnd = end
      nextCommit = r.value + 1
    } else {
      const r = unsealed(fs, seg, emit)
      if (!r.ok) return r
      dataEnd = r.value.dataEnd
      nextCommit = r.value.nextCommit
      if (r.value.torn !== null) tornTails.push(r.value.torn)
    }
    segments.push({ seq: seg.seq, name: seg.name, fileBytes: seg.fileBytes, dataEnd, nextCommit })
  }
  return ok({ segments, activeIndex: Math.max(lastWithData, 0), freeNames, records, bytes, tornTails })
}

/** Opens a segment, checks its header, and peeks at its first commit's first frame (the SEAL, if it has data). */
function inspect(fs: WalFs, dir: string, seq: number): Result<Found, WalOpenError> {
  const name = segmentName(seq)
  const path = join(dir, name)
  const h = fs.open(path)
  if (!h.ok) return fail('WAL_IO', `cannot open ${path}: ${h.error.message}`)
  try {
    const size = fs.size(h.value)
    if (!size.ok) return fail('WAL_IO', `cannot stat ${path}: ${size.error.message}`)
    const peek = Buffer.alloc(Math.min(size.value, DATA_START + SECTOR_BYTES))
    const r = readFully(fs, h.value, peek, 0, path)
    if (!r.ok) return r
    const header = decodeSegmentHeader(peek)
    if (header.kind === 'version') return fail('WAL_INCOMPATIBLE', `WAL segment ${path}: ${header.message}`)
    if (header.kind !== 'ok') return corrupt(path, 0, header.message)
    if (header.seq !== seq) return corrupt(path, 8, `has seq ${header.seq} in its header`)
    let sealPrevEnd: number | null = null
    if (peek.length === DATA_START + SECTOR_BYTES) {
      const st = readStamp(peek, DATA_START)
      if (st.kind === 'stamp' && st.seq === seq && st.part === 0) {
        const first = readFrame(peek, DATA_START + STAMP_BYTES, peek.length, seq)
        if (first.kind === 'frame' && first.type === WalFrameType.Seal) sealPrevEnd = first.term
      }
    }
    return ok({ seq, name, path, fileBytes: size.value, sealPrevEnd })
  } finally {
    fs.close(h.value)
  }
}

/** A sealed segment: complete, valid commits exactly up to `end`. Returns the last commit's number. */
function sealed(fs: WalFs, seg: Found, end: number, emit: (c: ScannedCommit) => void): Result<number, WalOpenError> {
  const buf = readFile(fs, seg, end)
  if (!buf.ok) return buf
  const s = scanSegment(buf.value, seg.seq, end)
  if (s.stop.kind === 'corrupt') return corrupt(seg.path, s.stop.at, s.stop.reason)
  if (s.stopAt !== end) {
    const what = s.stop.kind === 'torn' ? 'a commit missing some of its sectors' : 'no commit'
    return corrupt(seg.path, s.stopAt, `holds ${what} before its recorded end ${end}`)
  }
  for (const c of s.commits) emit(c)
  return ok(s.commits.length > 0 ? s.commits[s.commits.length - 1]!.commit : 0)
}

/** The last segment(s): reads to the first failure, then tells a torn commit from damage. */
function unsealed(
  fs: WalFs,
  seg: Found,
  emit: (c: ScannedCommit) => void,
): Result<{ readonly dataEnd: number; readonly nextCommit: number; readonly torn: WalTornTail | null }, WalOpenError> {
  const read = readFile(fs, seg, seg.fileBytes)
  if (!read.ok) return read
  const s = scanSegment(read.value, seg.seq, read.value.length)
  if (s.stop.kind === 'corrupt') return corrupt(seg.path, s.stop.at, s.stop.reason)
  for (const c of s.commits) emit(c)
  const base = s.stopAt
  const nextCommit = s.maxCommit + 1
  const tornEnd = Math.max(s.strayEnd, s.stop.kind === 'torn' ? s.stop.extentEnd : base)
  if (tornEnd <= base) return ok({ dataEnd: base, nextCommit, torn: null })
  // Zero the torn commit now: its leftovers must not be read as data by a later recovery.
  const h = fs.open(seg.path)
  if (!h.ok) return fail('WAL_IO', `cannot open ${seg.path}: ${h.error.message}`)
  try {
    const zeros: Uint8Array[] = []
    for (let left = tornEnd - base; left > 0; left -= ZERO_CHUNK.length) zeros.push(ZERO_CHUNK.subarray(0, Math.min(left, ZERO_CHUNK.length)))
    const w = writeAll(fs, h.value, zeros, base)
    const sync = w.ok ? fs.datasync(h.value) : w
    if (!sync.ok) return fail('WAL_IO', `cannot truncate the torn tail of ${seg.path}: ${sync.error.message}`)
  } finally {
    fs.close(h.value)
  }
  return ok({ dataEnd: base, nextCommit, torn: { file: seg.path, offset: base, bytes: tornEnd - base } })
}

/**
 * Reads the commits of segment `seq` from the bytes `buf` holds of it, up to `limit` (the
 * file's end, or a sealed segment's recorded end), and says why it stopped (see the
 * header for the rules). Pure: the simulator reads segments with it too.
 */
export function scanSegment(buf: Buffer, seq: number, limit: number): SegmentScan {
  const end = limit - (limit % SECTOR_BYTES)
  const frameBuf = Buffer.allocUnsafe(Math.max(0, (end - DATA_START) / SECTOR_BYTES) * SECTOR_PAYLOAD_BYTES)
  const commits: ScannedCommit[] = []
  let pos = DATA_START
  let last = 0
  let gathered = 0
  const finish = (stop: ScanStop): SegmentScan => {
    if (stop.kind === 'corrupt') return { commits, stopAt: pos, stop, maxCommit: 0, strayEnd: pos }
    // What lies beyond: leftovers of the torn commit, or a complete later commit (damage).
    let maxCommit = last
    let strayEnd = pos
    for (let at = pos; at < end; at += SECTOR_BYTES) {
      const st = readStamp(buf, at)
      if (st.kind !== 'stamp') continue
      if (st.seq > seq) return { commits, stopAt: pos, stop: { kind: 'corrupt', at, reason: `holds a sector stamped with seq ${st.seq}, newer than its segment's` }, maxCommit, strayEnd }
      if (st.seq !== seq) continue
      maxCommit = Math.max(maxCommit, st.commit)
      if (st.commit <= last) continue
      strayEnd = at + SECTOR_BYTES
      if (st.part === 0 && at > pos && complete(buf, at, end, st) === st.sectors) {
        const what = stop.kind === 'torn' ? 'a commit missing some of its sectors' : 'no commit'
        return { commits, stopAt: pos, stop: { kind: 'corrupt', at: pos, reason: `holds ${what}, yet a complete commit of this segment (commit ${st.commit}) follows at offset ${at}` }, maxCommit, strayEnd }
      }
    }
    return { commits, stopAt: pos, stop, maxCommit, strayEnd }
  }
  for (;;) {
    if (pos >= end) return finish({ kind: 'end' })
    const first = readStamp(buf, pos)
    let commit: number
    let sectors: number
    if (first.kind === 'stamp') {
      if (first.seq > seq) return finish({ kind: 'corrupt', at: pos, reason: `holds a sector stamped with seq ${first.seq}, newer than its segment's` })
      if (first.seq !== seq || first.commit <= last || first.part !== 0) return finish({ kind: 'end' })
      commit = first.commit
      sectors = first.sectors
    } else if (first.kind === 'damaged') {
      const second = pos + SECTOR_BYTES < end ? readStamp(buf, pos + SECTOR_BYTES) : null
      if (second !== null && second.kind === 'stamp' && second.seq === seq && second.commit > last && second.part === 1) {
        commit = second.commit
        sectors = second.sectors
      } else {
        // One flipped bit explains most damage: then the stamp says what the sector was.
        const was = repairStamp(buf, pos)
        if (was !== null) {
          if (was.kind === 'stamp' && was.seq === seq && was.commit > last && was.part === 0) {
            return finish({ kind: 'corrupt', at: pos, reason: `holds the first sector of commit ${was.commit} with a flipped bit in its stamp: damaged after it was written` })
          }
          return finish({ kind: 'end' }) // a stale or blank sector, damaged
        }
        const f = readFrame(buf, pos + STAMP_BYTES, pos + SECTOR_BYTES, seq)
        if (f.kind === 'frame') return finish({ kind: 'corrupt', at: pos, reason: 'holds a sector whose stamp fails its check, though it holds a frame of this segment: damaged after it was written' })
        return finish({ kind: 'end' })
      }
    } else {
      return finish({ kind: 'end' })
    }
    if (sectors < 1 || sectors * SECTOR_BYTES > walLimits.commitBytesMax) {
      return finish({ kind: 'corrupt', at: pos, reason: `holds a commit stamped with ${sectors} sectors, beyond the commit size bound` })
    }
    const extentEnd = pos + sectors * SECTOR_BYTES
    let missing = false
    let damagedAt = -1
    for (let k = 0; k < sectors; k++) {
      const at = pos + k * SECTOR_BYTES
      const st = at + SECTOR_BYTES <= end ? readStamp(buf, at) : null
      if (st !== null && st.kind === 'stamp' && st.seq === seq && st.commit === commit && st.part === k && st.sectors === sectors) continue
      if (st !== null && st.kind === 'damaged') {
        if (damagedAt < 0) damagedAt = at
      } else {
        missing = true
        break
      }
    }
    if (missing) return finish({ kind: 'torn', extentEnd: Math.min(extentEnd, end) })
    if (damagedAt >= 0) {
      return finish({ kind: 'corrupt', at: damagedAt, reason: `holds a sector of commit ${commit} whose stamp fails its check, while every other sector of it was written: damaged after it was written` })
    }
    const frameStart = gathered
    gatherFrames(buf, pos, sectors, frameBuf, frameStart)
    const frameLimit = frameStart + sectors * SECTOR_PAYLOAD_BYTES
    const r = framesOf(frameBuf, frameStart, frameLimit, seq, pos === DATA_START)
    if (typeof r === 'string') return finish({ kind: 'corrupt', at: pos, reason: `holds commit ${commit}, all ${sectors} of its sectors written, with ${r}: damaged after it was written` })
    commits.push({ commit, start: pos, end: extentEnd, frames: r, frameBuf, frameStart })
    gathered = frameLimit
    last = commit
    pos = extentEnd
  }
}

/** How many sectors of the commit whose first sector (stamped `st`) is at `at` are there in order. */
function complete(buf: Buffer, at: number, end: number, st: Extract<ReturnType<typeof readStamp>, { kind: 'stamp' }>): number {
  let n = 0
  for (let k = 0; k < st.sectors && at + (k + 1) * SECTOR_BYTES <= end; k++) {
    const s = readStamp(buf, at + k * SECTOR_BYTES)
    if (s.kind !== 'stamp' || s.seq !== st.seq || s.commit !== st.commit || s.part !== k || s.sectors !== st.sectors) break
    n++
  }
  return n
}

/** The frames of one commit, gathered into `b` from `from` to `limit`: SEAL first where due, COMMIT last. A string says what is wrong. */
function framesOf(b: Buffer, from: number, limit: number, seq: number, first: boolean): Frame[] | string {
  const frames: Frame[] = []
  let bytes = 0
  for (let pos = from; ; ) {
    const f = readFrame(b, pos, limit, seq)
    if (f.kind === 'end') return 'frames that end before their COMMIT frame'
    if (f.kind === 'bad') return `a bad frame (${f.reason}) at frame byte ${pos - from}`
    if (f.kind === 'stale') return `a frame stamped with the older seq ${f.seq}`
    if (f.kind === 'alien') return f.reason
    if (f.type === WalFrameType.Seal) {
      if (!first || pos !== from) return 'a SEAL frame out of place'
      if (f.index !== seq - 1) return `a SEAL frame naming segment ${f.index} as its predecessor`
    } else if (first && pos === from) {
      return 'no SEAL frame at the start of the segment'
    }
    frames.push(f)
    if (f.type === WalFrameType.Commit) {
      if (f.index !== frames.length - 1 || f.term !== bytes) return `a COMMIT frame for ${f.index} frames of ${f.term} bytes, after ${frames.length - 1} frames of ${bytes} bytes`
      const end = pos + f.bytes
      if (limit - end >= SECTOR_PAYLOAD_BYTES) return 'more sectors than its frames need'
      for (let k = end; k < limit; k++) if (b[k] !== 0) return `a non-zero byte in its padding at frame byte ${k - from}`
      return frames
    }
    bytes += f.bytes
    pos += f.bytes
  }
}

function readFile(fs: WalFs, seg: Found, bytes: number): Result<Buffer, WalOpenError> {
  const h = fs.open(seg.path)
  if (!h.ok) return fail('WAL_IO', `cannot open ${seg.path}: ${h.error.message}`)
  try {
    const buf = Buffer.allocUnsafe(bytes)
    const r = readFully(fs, h.value, buf, 0, seg.path)
    return r.ok ? ok(buf) : r
  } finally {
    fs.close(h.value)
  }
}

function readFully(fs: WalFs, file: WalFile, into: Buffer, position: number, path: string): Result<void, WalOpenError> {
  for (let at = 0; at < into.length; ) {
    const r = fs.read(file, into.subarray(at), position + at)
    if (!r.ok) return fail('WAL_IO', `cannot read ${path}: ${r.error.message}`)
    if (r.value === 0) return fail('WAL_IO', `${path} ended at ${position + at} bytes while being read`)
    at += r.value
  }
  return ok(undefined)
}

function corrupt(path: string, offset: number, what: string): OpenFailure {
  return fail('WAL_CORRUPT', `WAL segment ${path} at byte offset ${offset}: ${what}`)
}
