/**
 * The WAL's on-disk format: the segment header, sectors and their stamps, record frames,
 * and the two frames the WAL writes for itself. Pure codec: no I/O.
 *
 * A segment file, `<seq as 10 digits>.wal` (integers big-endian), is a run of 512-byte
 * sectors. Sector 0 holds the header:
 *
 *   0 magic u32 = 0x726d7177 ('rmqw') | 4 version u16 = 2 | 6 headerBytes u16 = 32
 *   8 seq u32 | 12 reserved, 16 zero bytes | 28 crc32c u32 of bytes 0..27 | 32 zeros
 *
 * Every later sector belongs to one commit, and every commit starts on a sector of its
 * own. A sector is a 20-byte stamp and 492 bytes of the commit's frames:
 *
 *   0 seq u32 | 4 commit u32 | 8 part u32 | 12 sectors u32 | 16 check u32 | 20 frames
 *
 * seq is the segment's; commit numbers the segment's commits (1, 2, ...; a number is
 * never reused, and gaps are allowed); part is the sector's place in its commit of
 * `sectors` sectors; check mixes those four with the sector's own position in the file.
 * A commit's frames run on from sector to sector; the last sector is zero-padded.
 *
 * Why sectors: a disk writes a 512-byte sector whole or not at all (the atomic write unit
 * every SATA and NVMe device guarantees on power loss), but an unsynced write of several
 * sectors may land in part, in any order. The stamps tell which sectors of a commit
 * landed, so recovery can tell the two things a failing newest commit can be: some of
 * its sectors missing (torn by a crash before its sync: never acknowledged, dropped) or
 * every sector there with bytes that fail their checksum (damaged after the sync: an
 * acknowledged commit, refused as corruption). Version 1 had no stamps and could not.
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
 *       term = their bytes.
 *   0 and 202..255 are reserved; a checksummed frame of such a type is corruption.
 *
 * Why each field: the stamps' seq makes stale sectors of a recycled file (stamped with
 * the seq it had before) read as the end of the data rather than as commits; the check
 * makes a damaged stamp read as damage, never as a sector that was not written; u64 index
 * and term must be safe integers (a frame that decodes otherwise is corruption, not a
 * silently rounded value).
 *
 * Imports @node-rs/crc32, node:buffer, src/base and ./limits.
 */
import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import { assert } from '../../base/index.js'
import { walLimits } from './limits.js'

export const SEGMENT_MAGIC = 0x726d7177
export const SEGMENT_VERSION = 2
export const SEGMENT_HEADER_BYTES = 32
export const SECTOR_BYTES = 512
export const STAMP_BYTES = 20
/** Frame bytes one sector carries. */
export const SECTOR_PAYLOAD_BYTES = SECTOR_BYTES - STAMP_BYTES
/** Where a segment's first commit starts: sector 1. */
export const DATA_START = SECTOR_BYTES
export const FRAME_HEADER_BYTES = 33
/** The bytes a frame's length field counts besides the payload. */
const LENGTH_BASE = FRAME_HEADER_BYTES - 4
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

/** The segment's header sector: 32 bytes and zeros. */
export function encodeSegmentHeader(seq: number): Buffer {
  assert(Number.isInteger(seq) && seq >= 1 && seq <= walLimits.segmentSeqMax, () => `segment seq ${seq} out of range`)
  const b = Buffer.alloc(DATA_START)
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
  for (let k = SEGMENT_HEADER_BYTES; k < Math.min(b.length, DATA_START); k++) {
    if (b[k] !== 0) return { kind: 'damaged', message: `a non-zero byte at offset ${k} of the header sector` }
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

// ---- sectors ----------------------------------------------------------------------

/** What a sector's stamp says. */
export type StampRead =
  /** Twenty zero bytes: never written (a fresh file's zeros, or a zeroed torn tail). */
  | { readonly kind: 'blank' }
  /** Fails its check: damaged (a disk never writes part of a sector). */
  | { readonly kind: 'damaged' }
  | { readonly kind: 'stamp'; readonly seq: number; readonly commit: number; readonly part: number; readonly sectors: number }

/** The stamp of the sector at byte `at` (a multiple of SECTOR_BYTES) of a file read into `b`. */
export function readStamp(b: Buffer, at: number): StampRead {
  const seq = b.readUInt32BE(at)
  const commit = b.readUInt32BE(at + 4)
  const part = b.readUInt32BE(at + 8)
  const sectors = b.readUInt32BE(at + 12)
  const check = b.readUInt32BE(at + 16)
  if ((seq | commit | part | sectors | check) === 0) return { kind: 'blank' }
  if (check !== stampCheck(seq, commit, part, sectors, at / SECTOR_BYTES)) return { kind: 'damaged' }
  return { kind: 'stamp', seq, commit, part, sectors }
}

/**
 * What a damaged stamp was before one bit of it flipped, if one flip explains it: a
 * stamp, or blank. Null when no single flip does (the sector is garbage, or worse).
 */
export function repairStamp(b: Buffer, at: number): Exclude<StampRead, { kind: 'damaged' }> | null {
  const copy = Buffer.from(b.subarray(at, at + STAMP_BYTES))
  for (let bit = 0; bit < STAMP_BYTES * 8; bit++) {
    copy[bit >> 3]! ^= 1 << (bit & 7)
    const seq = copy.readUInt32BE(0)
    const commit = copy.readUInt32BE(4)
    const part = copy.readUInt32BE(8)
    const sectors = copy.readUInt32BE(12)
    const check = copy.readUInt32BE(16)
    if ((seq | commit | part | sectors | check) === 0) return { kind: 'blank' }
    if (check === stampCheck(seq, commit, part, sectors, at / SECTOR_BYTES)) return { kind: 'stamp', seq, commit, part, sectors }
    copy[bit >> 3]! ^= 1 << (bit & 7)
  }
  return null
}

function writeStamp(b: Buffer, at: number, seq: number, commit: number, part: number, sectors: number, fileSector: number): void {
  b.writeUInt32BE(seq, at)
  b.writeUInt32BE(commit, at + 4)
  b.writeUInt32BE(part, at + 8)
  b.writeUInt32BE(sectors, at + 12)
  b.writeUInt32BE(stampCheck(seq, commit, part, sectors, fileSector), at + 16)
}

/**
 * A 32-bit mix (murmur3's finaliser over each word) of a stamp's fields and the sector's
 * place in the file: any flipped bit of the stamp, or a sector written at the wrong place,
 * fails it. Plain JS: a native CRC call per sector cost ~0.2 µs, 0.4 ms per MiB.
 */
function stampCheck(seq: number, commit: number, part: number, sectors: number, fileSector: number): number {
  let h = mixWord(0x726d7177, seq)
  h = mixWord(h, commit)
  h = mixWord(h, part)
  h = mixWord(h, sectors)
  h = mixWord(h, fileSector)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

function mixWord(h: number, w: number): number {
  let k = Math.imul(w, 0xcc9e2d51)
  k = (k << 15) | (k >>> 17)
  h ^= Math.imul(k, 0x1b873593)
  h = (h << 13) | (h >>> 19)
  return (Math.imul(h, 5) + 0xe6546b64) | 0
}

/** Sectors a commit of `frameBytes` frame bytes takes. */
export function sectorsFor(frameBytes: number): number {
  return Math.max(1, Math.ceil(frameBytes / SECTOR_PAYLOAD_BYTES))
}

/** Disk bytes a commit of `frameBytes` frame bytes takes. */
export function diskBytesFor(frameBytes: number): number {
  return sectorsFor(frameBytes) * SECTOR_BYTES
}

/** The file offset of frame byte `l` of the commit whose first sector is at file offset `start`. */
export function fileOffsetOf(start: number, l: number): number {
  return start + Math.floor(l / SECTOR_PAYLOAD_BYTES) * SECTOR_BYTES + STAMP_BYTES + (l % SECTOR_PAYLOAD_BYTES)
}

/** Copies the frame bytes of a commit's `sectors` sectors, from file offset `start` of `b`, to `into` at `at`. */
export function gatherFrames(b: Buffer, start: number, sectors: number, into: Buffer, at: number): void {
  for (let k = 0; k < sectors; k++) {
    const s = start + k * SECTOR_BYTES + STAMP_BYTES
    b.copy(into, at + k * SECTOR_PAYLOAD_BYTES, s, s + SECTOR_PAYLOAD_BYTES)
  }
}

// ---- commits ----------------------------------------------------------------------

/** A commit as the WAL writes it at one position with one write. */
export interface EncodedCommit {
  readonly iovecs: Uint8Array[]
  /** Frame bytes, SEAL and COMMIT included. */
  readonly frameBytes: number
  /** Its sectors' bytes: what the write covers. */
  readonly diskBytes: number
}

export interface Seal {
  readonly prevSeq: number
  readonly prevEnd: number
}

/** Where a commit goes: its segment, its number there and the file offset of its first sector. */
export interface CommitPlace {
  readonly seq: number
  readonly commit: number
  readonly at: number
}

/** Buffers larger than this are let go once a commit needs an eighth of them. */
const KEEP_BYTES = 4 << 20

/**
 * A reusable buffer for the sectors of one commit. It grows to the largest commit seen
 * (bounded by walLimits.commitBytesMax), shrinks back after a large one, and is
 * overwritten by the next commit, which is safe because writes are synchronous. Every
 * byte is copied into it once: a frame's header and a small payload go through a scratch
 * buffer so that one CRC call covers both.
 */
export class CommitBuffer {
  #buf: Buffer = Buffer.allocUnsafe(64 << 10)
  readonly #scratch: Buffer = Buffer.allocUnsafe(FRAME_HEADER_BYTES + walLimits.copyPayloadBytesMax)

  /** Encodes SEAL (if any), the records and COMMIT as the sectors of commit `place`. */
  encode(place: CommitPlace, records: readonly WalRecord[], seal: Seal | null): EncodedCommit {
    let frameBytes = FRAME_HEADER_BYTES * (records.length + (seal === null ? 1 : 2))
    for (const r of records) frameBytes += r.payload.length
    const sectors = sectorsFor(frameBytes)
    const diskBytes = sectors * SECTOR_BYTES
    assert(diskBytes <= walLimits.commitBytesMax, () => `a commit of ${diskBytes} bytes exceeds walLimits.commitBytesMax`)
    if (this.#buf.length < diskBytes || (this.#buf.length > KEEP_BYTES && diskBytes * 8 < this.#buf.length)) {
      this.#buf = Buffer.allocUnsafe(Math.max(diskBytes, 64 << 10))
    }
    const out = this.#buf
    const firstSector = place.at / SECTOR_BYTES
    for (let k = 0; k < sectors; k++) writeStamp(out, k * SECTOR_BYTES, place.seq, place.commit, k, sectors, firstSector + k)
    out.fill(0, fileOffsetOf(0, frameBytes - 1) + 1, diskBytes)

    let l = 0
    const put = (src: Uint8Array): void => {
      for (let from = 0; from < src.length; ) {
        const inSector = l % SECTOR_PAYLOAD_BYTES
        const n = Math.min(SECTOR_PAYLOAD_BYTES - inSector, src.length - from)
        out.set(from === 0 && n === src.length ? src : src.subarray(from, from + n), fileOffsetOf(0, l))
        from += n
        l += n
      }
    }
    const scratch = this.#scratch
    let frames = 0
    let before = 0
    const frame = (group: number, type: number, index: number, term: number, payload: Uint8Array | null): void => {
      const payloadBytes = payload === null ? 0 : payload.length
      scratch.writeUInt32BE(LENGTH_BASE + payloadBytes, 0)
      scratch.writeUInt32BE(place.seq, 8)
      scratch.writeUInt32BE(group, 12)
      scratch[16] = type
      writeU64(scratch, 17, index)
      writeU64(scratch, 25, term)
      if (payload === null || payloadBytes < walLimits.copyPayloadBytesMax) {
        if (payload !== null) scratch.set(payload, FRAME_HEADER_BYTES)
        const end = FRAME_HEADER_BYTES + payloadBytes
        scratch.writeUInt32BE(crc32c(scratch.subarray(8, end)), 4)
        put(scratch.subarray(0, end))
      } else {
        scratch.writeUInt32BE(crc32c(payload, crc32c(scratch.subarray(8, FRAME_HEADER_BYTES))), 4)
        put(scratch.subarray(0, FRAME_HEADER_BYTES))
        put(payload)
      }
      frames++
      before += FRAME_HEADER_BYTES + payloadBytes
    }
    if (seal !== null) frame(0, WalFrameType.Seal, seal.prevSeq, seal.prevEnd, null)
    for (const r of records) frame(r.group, r.type, r.index, r.term, r.payload)
    const commitAt = before
    frame(0, WalFrameType.Commit, frames, commitAt, null)
    assert(l === frameBytes, () => `CommitBuffer wrote ${l} frame bytes of ${frameBytes}`)
    return { iovecs: [out.subarray(0, diskBytes)], frameBytes, diskBytes }
  }
}

/** The frame bytes a record takes. */
export function frameBytesOf(payloadBytes: number): number {
  return FRAME_HEADER_BYTES + payloadBytes
}

/** The disk bytes of a commit of records with these payload sizes (its sectors). */
export function commitDiskBytes(payloadBytes: readonly number[], withSeal = false): number {
  let frames = commitOverheadBytes(withSeal)
  for (const p of payloadBytes) frames += frameBytesOf(p)
  return diskBytesFor(frames)
}

/** Commit overhead besides the records' frames: COMMIT, and SEAL if it has one. */
export function commitOverheadBytes(withSeal: boolean): number {
  return FRAME_HEADER_BYTES * (withSeal ? 2 : 1)
}
