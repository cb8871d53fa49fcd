/**
 * Big-endian integer fields for the partition's binary formats (commands and snapshots).
 *
 * JavaScript numbers carry the 64-bit fields (offsets, Raft indexes, producer ids,
 * timestamps): an i64 is written as a signed high word and an unsigned low word, and read
 * back only when the value is a safe integer — anything else is reported as `null`, so a
 * decoder can reject it instead of silently rounding. Readers never go past the end of
 * their bytes: `ByteReader` asserts it, and its callers check `remaining` first, so a
 * short input is a coded failure of the caller, never an out-of-bounds read.
 *
 * Imports base only.
 */
import { assert } from '../base/index.js'

const TWO_32 = 0x1_0000_0000

export const INT16_MAX = 0x7fff
export const INT32_MAX = 0x7fff_ffff
export const UINT32_MAX = 0xffff_ffff

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

export function setInt64(view: DataView, pos: number, n: number): void {
  assert(Number.isSafeInteger(n), () => `i64 field: ${n} is not a safe integer`)
  // floor, not truncation, so that negatives split as two's complement: -1 = (-1, 0xffffffff)
  view.setInt32(pos, Math.floor(n / TWO_32), false)
  view.setUint32(pos + 4, n >>> 0, false)
}

/** The i64 at `pos`, or null when it lies outside the safe integers. */
export function getInt64(view: DataView, pos: number): number | null {
  // hi * 2^32 is exact for any int32 hi; adding lo can only round beyond 2^53, which is
  // itself unsafe, so the safety test on the sum is exact
  const n = view.getInt32(pos, false) * TWO_32 + view.getUint32(pos + 4, false)
  return Number.isSafeInteger(n) ? n : null
}

/** Writes fixed-size fields into a buffer sized in advance by the caller. */
export class ByteWriter {
  readonly bytes: Uint8Array
  #view: DataView
  #pos = 0

  constructor(size: number) {
    this.bytes = new Uint8Array(size)
    this.#view = viewOf(this.bytes)
  }

  get pos(): number {
    return this.#pos
  }

  u8(n: number): void {
    assert(Number.isInteger(n) && n >= 0 && n <= 0xff, () => `u8 field: ${n}`)
    this.#view.setUint8(this.#pos, n)
    this.#pos += 1
  }

  i16(n: number): void {
    assert(Number.isInteger(n) && n >= -0x8000 && n <= INT16_MAX, () => `i16 field: ${n}`)
    this.#view.setInt16(this.#pos, n, false)
    this.#pos += 2
  }

  i32(n: number): void {
    assert(Number.isInteger(n) && n >= -0x8000_0000 && n <= INT32_MAX, () => `i32 field: ${n}`)
    this.#view.setInt32(this.#pos, n, false)
    this.#pos += 4
  }

  u32(n: number): void {
    assert(Number.isInteger(n) && n >= 0 && n <= UINT32_MAX, () => `u32 field: ${n}`)
    this.#view.setUint32(this.#pos, n, false)
    this.#pos += 4
  }

  i64(n: number): void {
    setInt64(this.#view, this.#pos, n)
    this.#pos += 8
  }

  raw(b: Uint8Array): void {
    this.bytes.set(b, this.#pos)
    this.#pos += b.byteLength
  }

  /** The written bytes; asserts the caller's size computation was exact. */
  finish(): Uint8Array {
    assert(this.#pos === this.bytes.byteLength, () => `wrote ${this.#pos} of ${this.bytes.byteLength} bytes`)
    return this.bytes
  }
}

/** Reads fixed-size fields; the caller checks `remaining` before each group of reads. */
export class ByteReader {
  #view: DataView
  #pos = 0

  constructor(bytes: Uint8Array) {
    this.#view = viewOf(bytes)
  }

  get remaining(): number {
    return this.#view.byteLength - this.#pos
  }

  #take(n: number): number {
    assert(n <= this.remaining, () => `read of ${n} bytes with ${this.remaining} left: the caller skipped a length check`)
    const at = this.#pos
    this.#pos += n
    return at
  }

  u8(): number {
    return this.#view.getUint8(this.#take(1))
  }

  i16(): number {
    return this.#view.getInt16(this.#take(2), false)
  }

  i32(): number {
    return this.#view.getInt32(this.#take(4), false)
  }

  u32(): number {
    return this.#view.getUint32(this.#take(4), false)
  }

  /** Null when the value is not a safe integer. */
  i64(): number | null {
    return getInt64(this.#view, this.#take(8))
  }
}
