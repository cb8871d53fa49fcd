/**
 * The key layout and value codecs of one group's partition store (group-store.ts): the
 * LevelDB database into which a group applies what its Raft log committed.
 *
 * Keys are binary: a one-byte space prefix, then (for ordered spaces) a big-endian u64,
 * so LevelDB's bytewise order is numeric order and a range of offsets or indexes is a key
 * range (scans serve fetches, retention and truncation).
 *
 * | key                   | value                                                            |
 * | --------------------- | ---------------------------------------------------------------- |
 * | 0x00                  | format: u32 version                                              |
 * | 0x01 + u64 offset     | a stored RecordBatch, its baseOffset field set to the key        |
 * | 0x02                  | hard state: u32 crc, u64 term, u32 vote, u64 commit              |
 * | 0x03                  | applied state: u32 crc, u64 index, u64 term, u32 n, n x u32 voters, blob |
 * | 0x04 + u64 index      | a Raft entry not yet covered by the applied state: u32 crc, u64 term, u8 type, data |
 * | 0x05                  | a received snapshot not yet installed: as 0x03 (src/replica/snapshot-receiver.ts) |
 *
 * Why our own CRC (CRC-32C) on every value but the record batches: LevelDB does not verify
 * block checksums on reads by default, and on recovery it skips a damaged log record
 * silently, so a flipped bit would otherwise become a wrong value or a store that looks
 * older. A record batch needs none: its own CRC-32C covers everything but its baseOffset
 * (bytes 0-7), and the reader checks that field against the key.
 *
 * Imports node:buffer, @node-rs/crc32, src/base and src/raft types. Every integer written is
 * a non-negative safe integer (asserted); decoders return null for bytes this store cannot
 * have written.
 */
import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import { assert } from '../base/index.js'
import type { ConfState, Entry, EntryType, HardState } from '../raft/index.js'

/** 2: the partition store of the WAL design (records by offset); 1 was the Raft-log-as-record-store layout. */
export const FORMAT_VERSION = 2

export const KeySpace = {
  Format: 0x00,
  Record: 0x01,
  HardState: 0x02,
  Applied: 0x03,
  Entry: 0x04,
  PendingSnapshot: 0x05,
} as const
export type KeySpace = (typeof KeySpace)[keyof typeof KeySpace]

export const FORMAT_KEY: Uint8Array = Uint8Array.of(KeySpace.Format)
export const HARD_STATE_KEY: Uint8Array = Uint8Array.of(KeySpace.HardState)
export const APPLIED_KEY: Uint8Array = Uint8Array.of(KeySpace.Applied)
/**
 * A leader's snapshot this replica received whole (its records are stored by then), as an
 * AppliedState, kept apart from the applied state until the WAL records that the Raft
 * core installed it: recovery then makes it the applied state (recovery.ts); a marker the
 * WAL never vouched for is dropped at open, and the store is as before the transfer.
 */
export const PENDING_SNAPSHOT_KEY: Uint8Array = Uint8Array.of(KeySpace.PendingSnapshot)

/** Bytes of an ordered key: prefix + u64. */
export const INDEX_KEY_BYTES = 9

const TWO_32 = 0x1_0000_0000

export function writeU64(b: Uint8Array, n: number, at: number): void {
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
export function readU64(b: Uint8Array, at: number): number {
  const v = view(b)
  const hi = v.readUInt32BE(at)
  return hi < 0x20_0000 ? hi * TWO_32 + v.readUInt32BE(at + 4) : -1
}

/** A Buffer over the same memory (LevelDB hands back Buffers already; this is for plain Uint8Arrays). */
export function view(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

// ---- ordered keys ------------------------------------------------------------------

export function indexKey(prefix: KeySpace, n: number): Buffer {
  const b = Buffer.allocUnsafe(INDEX_KEY_BYTES)
  b[0] = prefix
  writeU64(b, n, 1)
  return b
}

export function recordKey(offset: number): Buffer {
  return indexKey(KeySpace.Record, offset)
}

export function entryKey(index: number): Buffer {
  return indexKey(KeySpace.Entry, index)
}

/** The u64 of an ordered key of space `prefix`, or -1 if `key` is not one. */
export function decodeIndexKey(key: Uint8Array, prefix: KeySpace): number {
  return key.length === INDEX_KEY_BYTES && key[0] === prefix ? readU64(key, 1) : -1
}

/** The first key after every key of `space` (an exclusive upper bound for range reads). */
export function spaceEnd(space: KeySpace): Uint8Array {
  return Uint8Array.of(space + 1)
}

// ---- checksummed values ------------------------------------------------------------------

/** `body` behind a u32 CRC-32C of it. */
function sealed(bodyBytes: number, fill: (b: Buffer) => void): Buffer {
  const b = Buffer.allocUnsafe(4 + bodyBytes)
  fill(b)
  b.writeUInt32BE(crc32c(b.subarray(4)), 0)
  return b
}

/** The body of a sealed value, or null when its CRC does not match. */
function unsealed(value: Uint8Array): Buffer | null {
  if (value.length < 4) return null
  const b = view(value)
  return b.readUInt32BE(0) === crc32c(b.subarray(4)) ? b : null
}

export function encodeFormat(version: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(version, 0)
  return b
}

export function decodeFormat(value: Uint8Array): number | null {
  return value.length === 4 ? view(value).readUInt32BE(0) : null
}

export function encodeHardState(hs: HardState): Buffer {
  return sealed(20, (b) => {
    writeU64(b, hs.term, 4)
    b.writeUInt32BE(hs.vote, 12)
    writeU64(b, hs.commit, 16)
  })
}

export function decodeHardState(value: Uint8Array): HardState | null {
  const b = unsealed(value)
  if (b === null || b.length !== 24) return null
  const term = readU64(b, 4)
  const commit = readU64(b, 16)
  return term < 0 || commit < 0 ? null : { term, vote: b.readUInt32BE(12), commit }
}

/** What the state machine saved: everything up to `index` (of term `term`) is reflected in `blob`. */
export interface AppliedState {
  readonly index: number
  readonly term: number
  /** The configuration as of `index`. */
  readonly conf: ConfState
  readonly blob: Uint8Array
}

export function encodeApplied(a: AppliedState): Buffer {
  const voters = a.conf.voters
  return sealed(20 + 4 * voters.length + a.blob.length, (b) => {
    writeU64(b, a.index, 4)
    writeU64(b, a.term, 12)
    b.writeUInt32BE(voters.length, 20)
    for (let k = 0; k < voters.length; k++) b.writeUInt32BE(voters[k]!, 24 + 4 * k)
    b.set(a.blob, 24 + 4 * voters.length)
  })
}

export function decodeApplied(value: Uint8Array): AppliedState | null {
  const b = unsealed(value)
  if (b === null || b.length < 24) return null
  const n = b.readUInt32BE(20)
  if (b.length < 24 + 4 * n) return null
  const voters: number[] = []
  for (let k = 0; k < n; k++) voters.push(b.readUInt32BE(24 + 4 * k))
  const index = readU64(b, 4)
  const term = readU64(b, 12)
  if (index < 0 || term < 0) return null
  return { index, term, conf: { voters }, blob: b.subarray(24 + 4 * n) }
}

/** Bytes before an entry's data: u32 crc, u64 term, u8 type. */
const ENTRY_HEADER_BYTES = 13

export function encodeEntryValue(e: Entry): Buffer {
  return sealed(9 + e.data.length, (b) => {
    writeU64(b, e.term, 4)
    b[12] = e.type
    b.set(e.data, ENTRY_HEADER_BYTES)
  })
}

/** The entry stored at `index`, or null when the value is not one this store wrote intact. */
export function decodeEntryValue(index: number, value: Uint8Array): Entry | null {
  const b = unsealed(value)
  if (b === null || b.length < ENTRY_HEADER_BYTES) return null
  const term = readU64(b, 4)
  const type = b[12]!
  if (term < 0 || (type !== 0 && type !== 1)) return null
  return { term, index, type: type as EntryType, data: b.subarray(ENTRY_HEADER_BYTES) }
}
