/**
 * The key layout and value codecs of one group replica's LevelDB.
 *
 * Keys are binary: a one-byte space prefix, then (for ordered spaces) a big-endian u64,
 * so LevelDB's bytewise order is numeric order and a range of indexes is a key range
 * (scans serve reads, truncation and compaction).
 *
 * | key                         | value                                                  |
 * | --------------------------- | ------------------------------------------------------ |
 * | 0x00                        | format: u32 version                                    |
 * | 0x01 + u64 index            | Raft entry: u32 crc, u64 term, u8 type, data (raw)     |
 * | 0x02                        | hard state: u64 term, u32 vote, u64 commit             |
 * | 0x03                        | snapshot metadata: u64 index, u64 term, u32 n, n x u32 voters |
 * | 0x04                        | applied state: u64 applied index, blob (the state machine's) |
 * | 0x05 + u64 firstIndex       | term run: u64 term of entries firstIndex.. (next run - 1) |
 * | 0x10 + suffix               | the state machine's own keys (opaque here)             |
 *
 * Entry values carry the data raw after a 13-byte header, so a produce entry's record
 * batch is copied once into the write batch and never re-encoded (no msgpack around it).
 * The CRC (CRC-32, IEEE, over term, type and data) is there because LevelDB does not
 * verify block checksums on reads by default: it turns bit rot or a torn file into a
 * detected error instead of wrong bytes served to a consumer. The 9 header bytes are
 * summed in JS (a table, no native call) and chained into one node:zlib crc32 call over
 * the entry's own data: each native call costs ~0.2 us, which 1000 small entries per
 * Ready feel, while zlib runs ~5 GB/s (a 116 KB entry pays ~25 us against a ~1.5 ms sync).
 *
 * Term runs: the Raft core asks term(i) synchronously for any retained index; the log
 * may be far larger than memory, so terms are kept as runs (one per leader term, few)
 * and persisted beside the entries in the same batch. The first run always starts at
 * the log floor (firstIndex - 1), whose term survives compaction.
 *
 * Imports node:buffer, node:zlib, src/base and src/raft types. Every integer written is a
 * non-negative safe integer (asserted), so u64 fields never lose precision; decoders
 * return null (or -1) for bytes this store cannot have written.
 */
import { Buffer } from 'node:buffer'
import { crc32 } from 'node:zlib'
import { assert } from '../base/index.js'
import type { ConfState, Entry, EntryType, HardState, SnapshotMetadata } from '../raft/index.js'

export const FORMAT_VERSION = 1

export const KeySpace = {
  Format: 0x00,
  Entry: 0x01,
  HardState: 0x02,
  SnapshotMeta: 0x03,
  Applied: 0x04,
  TermRun: 0x05,
  StateMachine: 0x10,
} as const
export type KeySpace = (typeof KeySpace)[keyof typeof KeySpace]

export const FORMAT_KEY: Uint8Array = Uint8Array.of(KeySpace.Format)
export const HARD_STATE_KEY: Uint8Array = Uint8Array.of(KeySpace.HardState)
export const SNAPSHOT_META_KEY: Uint8Array = Uint8Array.of(KeySpace.SnapshotMeta)
export const APPLIED_KEY: Uint8Array = Uint8Array.of(KeySpace.Applied)

/** Bytes of an ordered key: prefix + u64. */
export const INDEX_KEY_BYTES = 9
/** Bytes before an entry's data: u32 crc, u64 term, u8 type. */
export const ENTRY_HEADER_BYTES = 13

const TWO_32 = 0x1_0000_0000

/** Big-endian u64. Per entry on the hot path: plain byte stores, no closure for the check. */
function writeU64(b: Uint8Array, n: number, at: number): void {
  if (!(Number.isSafeInteger(n) && n >= 0)) assert(false, `u64 field: ${n} is not a non-negative safe integer`)
  const hi = Math.floor(n / TWO_32)
  const lo = n >>> 0
  b[at] = hi >>> 24
  b[at + 1] = hi >>> 16
  b[at + 2] = hi >>> 8
  b[at + 3] = hi
  b[at + 4] = lo >>> 24
  b[at + 5] = lo >>> 16
  b[at + 6] = lo >>> 8
  b[at + 7] = lo
}

/** The u64 at `at`, or -1 above 2^53 - 1 (never written by this store: the bytes are not ours). */
function readU64(b: Uint8Array, at: number): number {
  const v = view(b)
  const hi = v.readUInt32BE(at)
  return hi < 0x20_0000 ? hi * TWO_32 + v.readUInt32BE(at + 4) : -1
}

function writeU32(b: Buffer, n: number, at: number): void {
  assert(Number.isInteger(n) && n >= 0 && n < TWO_32, () => `u32 field: ${n} out of range`)
  b.writeUInt32BE(n, at)
}

/** A Buffer over the same memory (LevelDB hands back Buffers already; this is for plain Uint8Arrays). */
function view(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

// ---- ordered keys ------------------------------------------------------------------

/** Writes `prefix + u64 n` into `target` at 0 (a reusable scratch: LevelDB copies keys). */
export function writeIndexKey(target: Buffer, prefix: KeySpace, n: number): Buffer {
  target[0] = prefix
  writeU64(target, n, 1)
  return target
}

export function indexKey(prefix: KeySpace, n: number): Buffer {
  return writeIndexKey(Buffer.allocUnsafe(INDEX_KEY_BYTES), prefix, n)
}

export function entryKey(index: number): Buffer {
  return indexKey(KeySpace.Entry, index)
}

export function termRunKey(firstIndex: number): Buffer {
  return indexKey(KeySpace.TermRun, firstIndex)
}

/** The u64 of an ordered key of space `prefix`, or -1 if `key` is not one. */
export function decodeIndexKey(key: Uint8Array, prefix: KeySpace): number {
  return key.length === INDEX_KEY_BYTES && key[0] === prefix ? readU64(key, 1) : -1
}

/** The first key after every key of `space` (an exclusive upper bound for range reads). */
export function spaceEnd(space: KeySpace): Uint8Array {
  return Uint8Array.of(space + 1)
}

// ---- entries -----------------------------------------------------------------------

const CRC_TABLE = new Int32Array(256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  CRC_TABLE[n] = c
}

/** CRC-32 (IEEE, as zlib) of b[from, to), for a few bytes where a native call would cost more. */
export function crc32Small(b: Uint8Array, from: number, to: number): number {
  let c = -1
  for (let k = from; k < to; k++) c = CRC_TABLE[(c ^ b[k]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

/** CRC-32 of the value's term, type and data: the header in JS, chained into zlib for the data. */
function entryCrc(header: Uint8Array, data: Uint8Array): number {
  return crc32(data, crc32Small(header, 4, ENTRY_HEADER_BYTES))
}

/** Bytes of the value that encodes `e`. */
export function entryValueBytes(e: Entry): number {
  return ENTRY_HEADER_BYTES + e.data.length
}

/** Encodes `e` into `target` (at least entryValueBytes(e) long) and returns the used view. */
export function writeEntryValue(target: Buffer, e: Entry): Buffer {
  const data = e.data
  writeU64(target, e.term, 4)
  target[12] = e.type
  target.set(data, ENTRY_HEADER_BYTES)
  const crc = entryCrc(target, data)
  target[0] = crc >>> 24
  target[1] = crc >>> 16
  target[2] = crc >>> 8
  target[3] = crc
  return target.subarray(0, ENTRY_HEADER_BYTES + data.length)
}

export function encodeEntryValue(e: Entry): Buffer {
  return writeEntryValue(Buffer.allocUnsafe(entryValueBytes(e)), e)
}

/**
 * Decodes the value stored for entry `index`, or returns null when it is not an entry
 * this store wrote intact (short, unknown type, CRC mismatch). `data` is a view into
 * `value`, not a copy: the record bytes are handed on as read.
 */
export function decodeEntryValue(index: number, value: Uint8Array): Entry | null {
  if (value.length < ENTRY_HEADER_BYTES) return null
  const b = view(value)
  const data = b.subarray(ENTRY_HEADER_BYTES)
  if (b.readUInt32BE(0) !== entryCrc(b, data)) return null
  const term = readU64(b, 4)
  const type = b[12]!
  if (term < 0 || (type !== 0 && type !== 1)) return null
  return { term, index, type: type as EntryType, data }
}

// ---- single-key records --------------------------------------------------------------

export function encodeFormat(version: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  writeU32(b, version, 0)
  return b
}

export function decodeFormat(value: Uint8Array): number | null {
  return value.length === 4 ? view(value).readUInt32BE(0) : null
}

export function encodeHardState(hs: HardState): Buffer {
  const b = Buffer.allocUnsafe(20)
  writeU64(b, hs.term, 0)
  writeU32(b, hs.vote, 8)
  writeU64(b, hs.commit, 12)
  return b
}

export function decodeHardState(value: Uint8Array): HardState | null {
  if (value.length !== 20) return null
  const term = readU64(value, 0)
  const commit = readU64(value, 12)
  return term < 0 || commit < 0 ? null : { term, vote: view(value).readUInt32BE(8), commit }
}

export function encodeSnapshotMeta(m: SnapshotMetadata): Buffer {
  const voters = m.conf.voters
  const b = Buffer.allocUnsafe(20 + 4 * voters.length)
  writeU64(b, m.index, 0)
  writeU64(b, m.term, 8)
  writeU32(b, voters.length, 16)
  for (let k = 0; k < voters.length; k++) writeU32(b, voters[k]!, 20 + 4 * k)
  return b
}

export function decodeSnapshotMeta(value: Uint8Array): SnapshotMetadata | null {
  if (value.length < 20) return null
  const b = view(value)
  const n = b.readUInt32BE(16)
  if (value.length !== 20 + 4 * n) return null
  const voters: number[] = []
  for (let k = 0; k < n; k++) voters.push(b.readUInt32BE(20 + 4 * k))
  const conf: ConfState = { voters }
  const index = readU64(b, 0)
  const term = readU64(b, 8)
  return index < 0 || term < 0 ? null : { index, term, conf }
}

/** What the state machine saved: everything up to `index` is reflected in `blob`. */
export interface AppliedState {
  readonly index: number
  readonly blob: Uint8Array
}

export function encodeApplied(a: AppliedState): Buffer {
  const b = Buffer.allocUnsafe(8 + a.blob.length)
  writeU64(b, a.index, 0)
  b.set(a.blob, 8)
  return b
}

export function decodeApplied(value: Uint8Array): AppliedState | null {
  const index = value.length < 8 ? -1 : readU64(value, 0)
  return index < 0 ? null : { index, blob: value.subarray(8) }
}

export function encodeTerm(term: number): Buffer {
  const b = Buffer.allocUnsafe(8)
  writeU64(b, term, 0)
  return b
}

export function decodeTerm(value: Uint8Array): number | null {
  const term = value.length === 8 ? readU64(value, 0) : -1
  return term < 0 ? null : term
}

// ---- the state machine's space -----------------------------------------------------------

/** A key in the state machine's own space (it owns the layout of `suffix`). */
export function stateMachineKey(suffix: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(1 + suffix.length)
  b[0] = KeySpace.StateMachine
  b.set(suffix, 1)
  return b
}
