/**
 * Recovery: reads a WAL directory back, hands every committed record to the caller
 * (oldest first), and decides for each byte that fails its checks whether a crash tore
 * it (truncate, report) or the disk lost or damaged data (refuse, naming file and offset).
 *
 * Only one commit can ever be torn: the writer syncs each commit before it writes the
 * next. So the rules, per segment:
 * - Segments must be numbered without gaps (a missing middle segment is lost data). A
 *   missing prefix is fine: retire() removes the oldest first, one durable step each.
 * - A sealed segment (a later segment with data names its exact end in its SEAL frame)
 *   must hold valid frames, closed by COMMIT frames, exactly up to that end; anything
 *   else there (a bad frame, zeros, a file shorter than the end) is corruption.
 * - In the segment(s) after the last seal, frames are read commit by commit until one
 *   fails. What follows the last valid COMMIT is the torn commit, unless a complete later
 *   commit of the same seq follows it: a COMMIT frame whose commit starts after that
 *   point means the damaged bytes had been synced, so that is corruption. (A COMMIT
 *   frame whose commit starts at that point is the torn commit's own, landed before its
 *   other sectors: a disk may reorder writes that were never synced.) The torn region is
 *   zeroed at once, so no later recovery can mistake its leftovers for data, reported,
 *   and overwritten by the next commit.
 * - A frame stamped with an older seq is a recycled file's stale byte: it ends the data.
 * - A frame that passes its checksum but cannot have been written (newer seq, reserved
 *   type, unsafe integer, a SEAL or COMMIT out of place) is corruption, never a tear.
 * Lengths are bounded before anything is read by them (format.ts), and each file is read
 * once, whole (it is at most a segment, or one oversized commit).
 *
 * Records are passed to onRecord as they are recovered, so if open() then fails, the
 * caller must discard what it was given. Payloads are views into the segment's read
 * buffer: keeping one keeps that buffer alive.
 *
 * Known limit: the search for a later COMMIT looks at raw bytes, so a payload that
 * embeds a valid COMMIT frame of the very same seq, inside a torn commit, would read as
 * corruption (a refused start, never lost data).
 *
 * Imports node:buffer, node:path, src/base, ./format, ./fs and ./segment.
 */
import { Buffer } from 'node:buffer'
import { join } from 'node:path'
import { fail, ok } from '../../base/index.js'
import type { Result } from '../../base/index.js'
import { DATA_START, FRAME_HEADER_BYTES, WalFrameType, decodeSegmentHeader, readFrame } from './format.js'
import type { FrameRead, WalRecord } from './format.js'
import type { WalFile, WalFs } from './fs.js'
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
  /** Bytes of committed frames read (WAL framing included). */
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

interface Scanned {
  /** Where reading stopped, and what was there. */
  readonly stopAt: number
  readonly stop: Exclude<FrameRead, { kind: 'frame' }> | { readonly kind: 'misplaced'; readonly reason: string }
  readonly lastCommitEnd: number
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
    const emit = (pending: readonly Frame[], buf: Buffer): void => {
      for (const f of pending) {
        bytes += f.bytes
        if (f.type === WalFrameType.Seal || f.type === WalFrameType.Commit) continue
        records++
        onRecord({ group: f.group, type: f.type, index: f.index, term: f.term, payload: buf.subarray(f.payloadAt, f.payloadAt + f.bytes - FRAME_HEADER_BYTES) }, seg.seq)
      }
    }
    let dataEnd: number
    if (k < lastWithData) {
      const next = found[k + 1]!
      if (next.sealPrevEnd === null) {
        return corrupt(next.path, DATA_START, `has no valid SEAL frame, though a later segment (${found[lastWithData]!.name}) holds data`)
      }
      const end = next.sealPrevEnd
      if (end < DATA_START) return corrupt(seg.path, 0, `is sealed by ${next.name} at offset ${end}, inside its header`)
      if (end > seg.fileBytes) return corrupt(seg.path, seg.fileBytes, `is ${seg.fileBytes} bytes, shorter than its recorded end ${end} (from ${next.name})`)
      const r = sealed(fs, seg, end, emit)
      if (!r.ok) return r
      dataEnd = end
    } else {
      const r = unsealed(fs, seg, emit)
      if (!r.ok) return r
      dataEnd = r.value.dataEnd
      if (r.value.torn !== null) tornTails.push(r.value.torn)
    }
    segments.push({ seq: seg.seq, name: seg.name, fileBytes: seg.fileBytes, dataEnd })
  }
  return ok({ segments, activeIndex: Math.max(lastWithData, 0), freeNames, records, bytes, tornTails })
}

/** Opens a segment, checks its header, and peeks at its first frame (the SEAL, if it has data). */
function inspect(fs: WalFs, dir: string, seq: number): Result<Found, WalOpenError> {
  const name = segmentName(seq)
  const path = join(dir, name)
  const h = fs.open(path)
  if (!h.ok) return fail('WAL_IO', `cannot open ${path}: ${h.error.message}`)
  try {
    const size = fs.size(h.value)
    if (!size.ok) return fail('WAL_IO', `cannot stat ${path}: ${size.error.message}`)
    const peek = Buffer.alloc(Math.min(size.value, DATA_START + FRAME_HEADER_BYTES))
    const r = readFully(fs, h.value, peek, 0, path)
    if (!r.ok) return r
    const header = decodeSegmentHeader(peek)
    if (header.kind === 'version') return fail('WAL_INCOMPATIBLE', `WAL segment ${path}: ${header.message}`)
    if (header.kind !== 'ok') return corrupt(path, 0, header.message)
    if (header.seq !== seq) return corrupt(path, 8, `has seq ${header.seq} in its header`)
    const first = readFrame(peek, DATA_START, peek.length, seq)
    const sealPrevEnd = first.kind === 'frame' && first.type === WalFrameType.Seal ? first.term : null
    return ok({ seq, name, path, fileBytes: size.value, sealPrevEnd })
  } finally {
    fs.close(h.value)
  }
}

/** A sealed segment: valid frames, closed by COMMIT frames, exactly up to `end`. */
function sealed(fs: WalFs, seg: Found, end: number, emit: (pending: readonly Frame[], buf: Buffer) => void): Result<void, WalOpenError> {
  const buf = readFile(fs, seg, end)
  if (!buf.ok) return buf
  const s = scan(buf.value, end, seg.seq, emit)
  if (s.stop.kind === 'alien' || s.stop.kind === 'misplaced') return corrupt(seg.path, s.stopAt, s.stop.reason)
  if (s.stopAt !== end) {
    const what = s.stop.kind === 'bad' ? `a bad frame (${s.stop.reason})` : s.stop.kind === 'stale' ? `a stale frame of seq ${s.stop.seq}` : 'a zero length'
    return corrupt(seg.path, s.stopAt, `holds ${what} before its recorded end ${end}`)
  }
  if (s.lastCommitEnd !== end) return corrupt(seg.path, s.lastCommitEnd, `has frames up to its recorded end ${end} that no COMMIT frame closes`)
  return ok(undefined)
}

/** The last segment(s): reads to the first failure, then tells a torn commit from damage. */
function unsealed(
  fs: WalFs,
  seg: Found,
  emit: (pending: readonly Frame[], buf: Buffer) => void,
): Result<{ readonly dataEnd: number; readonly torn: WalTornTail | null }, WalOpenError> {
  const read = readFile(fs, seg, seg.fileBytes)
  if (!read.ok) return read
  const buf = read.value
  const s = scan(buf, buf.length, seg.seq, emit)
  if (s.stop.kind === 'alien' || s.stop.kind === 'misplaced') return corrupt(seg.path, s.stopAt, s.stop.reason)
  const base = s.lastCommitEnd
  let tornEnd = s.stop.kind === 'bad' ? s.stopAt + s.stop.extentBytes : s.stopAt
  // Any COMMIT frame of this seq further on? Found by its length field (29: no payload).
  for (let q = buf.indexOf(29, s.stopAt + 4); q !== -1; q = buf.indexOf(29, q + 1)) {
    const p = q - 3
    if (buf.readUInt32BE(p) !== 29 || p + FRAME_HEADER_BYTES > buf.length || buf.readUInt32BE(p + 8) !== seg.seq || buf[p + 16] !== WalFrameType.Commit) continue
    const f = readFrame(buf, p, buf.length, seg.seq)
    if (f.kind !== 'frame' || f.type !== WalFrameType.Commit) continue
    if (p - f.term === base) {
      tornEnd = Math.max(tornEnd, p + f.bytes) // the torn commit's own COMMIT frame
      continue
    }
    const what = s.stop.kind === 'bad' ? `a bad frame (${s.stop.reason})` : s.stop.kind === 'stale' ? `a stale frame of seq ${s.stop.seq}` : 'a zero length'
    return corrupt(seg.path, s.stopAt, `holds ${what}, yet a complete commit of this segment follows at offset ${p - f.term}`)
  }
  if (tornEnd <= base) return ok({ dataEnd: base, torn: null })
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
  return ok({ dataEnd: base, torn: { file: seg.path, offset: base, bytes: tornEnd - base } })
}

/** Reads frames commit by commit from the segment's start until one fails; hands out each complete commit. */
function scan(buf: Buffer, limit: number, seq: number, emit: (pending: readonly Frame[], buf: Buffer) => void): Scanned {
  let pos = DATA_START
  let lastCommitEnd = DATA_START
  let pending: Frame[] = []
  let pendingBytes = 0
  for (;;) {
    const f = readFrame(buf, pos, limit, seq)
    if (f.kind !== 'frame') return { stopAt: pos, stop: f, lastCommitEnd }
    const misplaced = (reason: string): Scanned => ({ stopAt: pos, stop: { kind: 'misplaced', reason }, lastCommitEnd })
    if (f.type === WalFrameType.Seal) {
      if (pos !== DATA_START) return misplaced('holds a SEAL frame after its first frame')
      if (f.index !== seq - 1) return misplaced(`holds a SEAL frame naming segment ${f.index} as its predecessor`)
    } else if (pos === DATA_START) {
      return misplaced('does not start with a SEAL frame')
    }
    if (f.type === WalFrameType.Commit) {
      if (f.index !== pending.length || f.term !== pendingBytes) {
        return misplaced(`holds a COMMIT frame for ${f.index} frames of ${f.term} bytes, after ${pending.length} frames of ${pendingBytes} bytes`)
      }
      pending.push(f)
      emit(pending, buf)
      pending = []
      pendingBytes = 0
      lastCommitEnd = pos + f.bytes
    } else {
      pending.push(f)
      pendingBytes += f.bytes
    }
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
