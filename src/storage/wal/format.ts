/**
 * The WAL's on-disk format: the segment header, record frames, and the two frames the
 * WAL writes for itself. Pure codec: no I/O.
 *
 * A segment file, `<seq as 10 digits>.wal` (integers big-endian):
 *
 *   0 magic u32 = 0x726d7177 ('rmqw') | 4 version u16 = 1 | 6 headerBytes u16 = 32
 *   8 seq u32 | 12 reserved, 16 zero bytes | 28 crc32c u32 of bytes 0..27
 *   32 frames, one commit after another, then a terminator: a zero u32 where the next
 *      frame's length would be (written with every commit, overwritten by the next)
 *
 * A frame:
 *
 *   0 length u32 = bytes after this field (29 + payload) | 4 crc32c u32 of bytes 8..end
 *   8 segSeq u32 | 12 group u32 | 16 type u8 | 17 index u64 | 25 term u64 | 33 payload
 *
 * Types 1..199 are the caller's, opaque here. The WAL's own:
 *   200 SEAL, the first frame of a segment's first commit: index = the previous segment's
 *       seq (0 for none), term = the byte offset where the previous segment's data ends.
 *       A segment is never rewritten once the writer has moved on, so this is how
 *       recovery knows a sealed segment's exact end and refuses one that is shorter.
 *   201 COMMIT, the last frame of every commit: index = frames before it in the commit,
 *       term = their bytes. A commit counts only once its COMMIT frame is valid: commits
 *       are all or nothing, and recovery can tell the one commit a crash may have torn
 *       (the last) from commits that were acknowledged.
 *   0 and 202..255 are reserved; a checksummed frame of such a type is corruption.
 *
 * Why each field: segSeq makes stale frames of a recycled file (stamped with the seq it
 * had before) read as the end of the data rather than as records; the terminator means
 * a clean end always reads as a zero length, never as stale bytes, so a torn tail is
 * reported only when something was in fact torn; u64 index and term must be safe
 * integers (a frame that decodes otherwise is corruption, not a silently rounded value).
 *
 * Imports @node-rs/crc32, node:buffer, src/base and ./limits.
 */
import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import { assert } from '../../base/index.js'
import { walLimits } from './limits.js'

export const SEGMENT_MAGIC = 0x726d7177
export const SEGMENT_VERSION = 1
export const SEGMENT_HEADER_BYTES = 32
/** Where a segment's first frame starts. */
export const DATA_START = SEGMENT_HEADER_BYTES
export const FRAME_HEADER_BYTES = 33
/** The bytes a frame's length field counts besides the payload. */
const LENGTH_BASE = FRAME_HEADER_BYTES - 4
export const TERMINATOR_BYTES = 4
export const FRAME_BYTES_MAX = FRAME_HEADER_BYTES + walLimits.recordPayloadBytesMax

export const WalFrameType = {
  /** The first frame of every segment: where the previous segment's data ends. */
  Seal: 200,
  /** The last frame of every commit. */
  Commit: 201,
} as const

export const CALLER_TYPE_MIN = 1
export const CALLER_TYPE_MAX = 199

export interface WalRecord {
  /** u32 */
  readonly group: number
  /** u8, the caller's: 1..199 */
  readonly type: number
  /** u64 as a safe integer */
  readonly index: number
  /** u64 as a safe integer */
  readonly term: number
  readonly payload: Uint8Array
}

/** The segment's own header: 32 bytes followed by a terminator, so a fresh or recycled file reads as empty. */
export function encodeSegmentHeader(seq: number): Buffer {
  assert(Number.isInteger(seq) && seq >= 1 && seq <= walLimits.segmentSeqMax, () => `segment seq ${seq} out of range`)
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES + TERMINATOR_BYTES)
  b.writeUInt32BE(SEGMENT_MAGIC, 0)
  b.writeUInt16BE(SEGMENT_VERSION, 4)
  b.writeUInt16BE(SEGMENT_HEADER_BYTES, 6)
  b.writeUInt32BE(seq, 8)
  b.writeUInt32BE(crc32c(b.subarray(0, 28)), 28)
  return b
}

export type HeaderCheck =
  | { readonly kind: 'ok'; readonly seq: number }
  | { readonly kind: 'foreign' | 'version' | 'damaged'; readonly message: string }

export function decodeSegmentHeader(b: Buffer): HeaderCheck {
  if (b.length < SEGMENT_HEADER_BYTES) return { kind: 'damaged', message: `shorter (${b.length} bytes) than a segment header` }
  const magic = b.readUInt32BE(0)
  if (magic !== SEGMENT_MAGIC) return { kind: 'foreign', message: `magic 0x${magic.toString(16)} is not a raftmq WAL segment's` }
  const version = b.readUInt16BE(4)
  if (version !== SEGMENT_VERSION) return { kind: 'version', message: `format version ${version}; this build reads version ${SEGMENT_VERSION}` }
  if (b.readUInt32BE(28) !== crc32c(b.subarray(0, 28)) || b.readUInt16BE(6) !== SEGMENT_HEADER_BYTES) {
    return { kind: 'damaged', message: 'segment header fails its checksum' }
  }
  return { kind: 'ok', seq: b.readUInt32BE(8) }
}

/** What sits at one position of a segment. */
export type FrameRead =
  /** A valid frame of the segment's seq. */
  | {
      readonly kind: 'frame'
      readonly bytes: number
      readonly group: number
      readonly type: number
      readonly index: number
      readonly term: number
      readonly payloadAt: number
    }
  /** A zero length: the terminator, or zeros never written. */
  | { readonly kind: 'end' }
  /** A valid frame stamped with an older seq: bytes of the file's previous life. */
  | { readonly kind: 'stale'; readonly seq: number }
  /** Fails its checks: torn or damaged. `extentBytes` is how far it claims to reach. */
  | { readonly kind: 'bad'; readonly reason: string; readonly extentBytes: number }
  /** Checksummed but impossible (a newer seq, a reserved type, an unsafe u64): never a tear. */
  | { readonly kind: 'alien'; readonly reason: string }

/** Reads the frame at `at` of a segment whose seq is `seq` and whose readable bytes end at `limit`. */
export function readFrame(b: Buffer, at: number, limit: number, seq: number): FrameRead {
  const room = limit - at
  if (room < 4) {
    for (let k = at; k < limit; k++) if (b[k] !== 0) return { kind: 'bad', reason: 'a truncated length field', extentBytes: room }
    return { kind: 'end' }
  }
  const length = b.readUInt32BE(at)
  if (length === 0) return { kind: 'end' }
  const headerRoom = Math.min(room, FRAME_HEADER_BYTES)
  if (length < LENGTH_BASE) return { kind: 'bad', reason: `length ${length} below a frame header's`, extentBytes: headerRoom }
  if (length + 4 > FRAME_BYTES_MAX) return { kind: 'bad', reason: `length ${length} beyond the record size bound`, extentBytes: headerRoom }
  if (length + 4 > room) return { kind: 'bad', reason: `length ${length} runs past the end of the data (${room} bytes left)`, extentBytes: headerRoom }
  const end = at + 4 + length
  if (crc32c(b.subarray(at + 8, end)) !== b.readUInt32BE(at + 4)) return { kind: 'bad', reason: 'a checksum mismatch', extentBytes: 4 + length }
  const frameSeq = b.readUInt32BE(at + 8)
  if (frameSeq < seq) return { kind: 'stale', seq: frameSeq }
  if (frameSeq > seq) return { kind: 'alien', reason: `a frame stamped with seq ${frameSeq}, newer than its segment's` }
  const type = b[at + 16]!
  if (type < CALLER_TYPE_MIN || (type > CALLER_TYPE_MAX && type !== WalFrameType.Seal && type !== WalFrameType.Commit)) {
    return { kind: 'alien', reason: `a frame of reserved type ${type}` }
  }
  const index = readU64(b, at + 17)
  const term = readU64(b, at + 25)
  if (index < 0 || term < 0) return { kind: 'alien', reason: 'an index or term beyond the safe-integer range' }
  return { kind: 'frame', bytes: 4 + length, group: b.readUInt32BE(at + 12), type, index, term, payloadAt: at + FRAME_HEADER_BYTES }
}

/** A u64 as a safe integer, or -1 if it is not one. */
function readU64(b: Buffer, at: number): number {
  const hi = b.readUInt32BE(at)
  if (hi > 0x1f_ffff) return -1
  return hi * 0x1_0000_0000 + b.readUInt32BE(at + 4)
}

function writeU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x1_0000_0000), at)
  b.writeUInt32BE(v >>> 0, at + 4)
}

/** A commit's frames: the bytes the WAL writes at one position with one writev. */
export interface EncodedCommit {
  /** In order; small payloads are copied into the shared buffer, large ones referenced. */
  readonly iovecs: Uint8Array[]
  /** Frame bytes, SEAL and COMMIT included, the terminator not. */
  readonly frameBytes: number
}

export interface Seal {
  readonly prevSeq: number
  readonly prevEnd: number
}

/**
 * A reusable buffer for the headers and small payloads of one commit. It grows to the
 * largest commit seen (bounded by walLimits.commitBytesMax) and is overwritten by the
 * next commit, which is safe because writes are synchronous.
 */
export class CommitBuffer {
  #buf: Buffer = Buffer.allocUnsafe(64 << 10)

  /** Encodes SEAL (if any), the records and COMMIT, stamped with `seq`, ending with a terminator. */
  encode(seq: number, records: readonly WalRecord[], seal: Seal | null): EncodedCommit {
    const copyMax = walLimits.copyPayloadBytesMax
    let inline = FRAME_HEADER_BYTES * (records.length + 2) + TERMINATOR_BYTES
    for (const r of records) if (r.payload.length < copyMax) inline += r.payload.length
    if (this.#buf.length < inline) this.#buf = Buffer.allocUnsafe(Math.max(inline, Math.min(this.#buf.length * 2, walLimits.commitBytesMax)))
    const buf = this.#buf
    const iovecs: Uint8Array[] = []
    let pos = 0
    let runStart = 0
    let frames = 0
    let frameBytes = 0
    const frame = (group: number, type: number, index: number, term: number, payload: Uint8Array | null): void => {
      const payloadBytes = payload === null ? 0 : payload.length
      const at = pos
      buf.writeUInt32BE(LENGTH_BASE + payloadBytes, at)
      buf.writeUInt32BE(seq, at + 8)
      buf.writeUInt32BE(group, at + 12)
      buf[at + 16] = type
      writeU64(buf, at + 17, index)
      writeU64(buf, at + 25, term)
      pos += FRAME_HEADER_BYTES
      let crc: number
      if (payload === null || payloadBytes === 0) {
        crc = crc32c(buf.subarray(at + 8, pos))
      } else if (payloadBytes < copyMax) {
        buf.set(payload, pos)
        pos += payloadBytes
        crc = crc32c(buf.subarray(at + 8, pos))
      } else {
        crc = crc32c(payload, crc32c(buf.subarray(at + 8, pos)))
        iovecs.push(buf.subarray(runStart, pos), payload)
        runStart = pos
      }
      buf.writeUInt32BE(crc, at + 4)
      frames++
      frameBytes += FRAME_HEADER_BYTES + payloadBytes
    }
    if (seal !== null) frame(0, WalFrameType.Seal, seal.prevSeq, seal.prevEnd, null)
    for (const r of records) frame(r.group, r.type, r.index, r.term, r.payload)
    frame(0, WalFrameType.Commit, frames, frameBytes, null)
    buf.writeUInt32BE(0, pos)
    pos += TERMINATOR_BYTES
    iovecs.push(buf.subarray(runStart, pos))
    return { iovecs, frameBytes }
  }
}

/** The bytes a record takes on disk. */
export function frameBytesOf(payloadBytes: number): number {
  return FRAME_HEADER_BYTES + payloadBytes
}

/** Commit overhead besides the records' frames: COMMIT, optionally SEAL, and the terminator. */
export function commitOverheadBytes(withSeal: boolean): number {
  return FRAME_HEADER_BYTES * (withSeal ? 2 : 1) + TERMINATOR_BYTES
}
