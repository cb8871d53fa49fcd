/**
 * Kafka's zigzag varints (int32) and varlongs (int64) as JS numbers, plus the big-endian
 * fixed-width integers of the RecordBatch header. Private to src/protocol.
 *
 * Grammar (protobuf-style): little-endian groups of 7 bits, the high bit of each byte set
 * while more follow; signed values are zigzag-mapped first (0, -1, 1, -2 … → 0, 1, 2, 3 …).
 * A varint takes at most 5 bytes and a varlong at most 10, as in Kafka's ByteUtils.
 * Non-minimal encodings (0x80 0x00 for 0) are accepted, as Kafka accepts them.
 *
 * Reading never throws and never reads past `end`: a truncated, overlong or out-of-range
 * value sets `bad` and yields 0, and the caller checks `bad` before trusting anything it
 * read. Varlongs outside the safe-integer range (|n| >= 2^53) are `bad` too, because a JS
 * number cannot hold them exactly; no timestamp delta a client sends comes near that.
 *
 * Imports nothing.
 */

const TWO_POW_27 = 2 ** 27
const TWO_POW_32 = 2 ** 32
/** A varlong's bits above the 28 kept in `lo` must stay below this for |n| < 2^53. */
const VARLONG_HI_LIMIT = 2 ** 26

/** A cursor over `bytes[pos, end)`. Fields are public so parsers can save and narrow `end`. */
export class ByteReader {
  readonly bytes: Uint8Array
  pos: number
  end: number
  /** Set by the first failed read; every later read also yields 0. */
  bad = false

  constructor(bytes: Uint8Array, pos = 0, end = bytes.length) {
    this.bytes = bytes
    this.pos = pos
    this.end = end
  }

  /** An unsigned byte. */
  u8(): number {
    if (this.bad || this.pos >= this.end) return this.#fail()
    return this.bytes[this.pos++]!
  }

  /** Advances over `n` bytes, failing if fewer remain. */
  skip(n: number): void {
    if (this.bad || n < 0 || n > this.end - this.pos) this.#fail()
    else this.pos += n
  }

  /** A zigzag varint: an int32. More than 5 bytes, or a value past 32 bits, is bad. */
  varint(): number {
    if (this.bad) return 0
    let u = 0
    let scale = 1
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.end) return this.#fail()
      const b = this.bytes[this.pos++]!
      u += (b & 0x7f) * scale
      if (b < 0x80) {
        if (u >= TWO_POW_32) return this.#fail()
        return (u >>> 1) ^ -(u & 1)
      }
      scale *= 128
    }
    return this.#fail()
  }

  /** A zigzag varlong as a safe integer. More than 10 bytes, or |n| >= 2^53, is bad. */
  varlong(): number {
    if (this.bad) return 0
    let lo = 0 // bits 0..27 (the first four bytes)
    let hi = 0 // bits 28.. (exact: at most 42 bits before the range check)
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) return this.#fail()
      const b = this.bytes[this.pos++]!
      if (i === 4) scale = 1
      if (i < 4) lo += (b & 0x7f) * scale
      else hi += (b & 0x7f) * scale
      if (b < 0x80) {
        if (hi >= VARLONG_HI_LIMIT) return this.#fail()
        const half = hi * TWO_POW_27 + (lo >>> 1)
        const n = (lo & 1) === 1 ? -half - 1 : half
        return Number.isSafeInteger(n) ? n : this.#fail()
      }
      scale *= 128
    }
    return this.#fail()
  }

  /** Marks the input bad from outside, for values that parse but are out of range. */
  invalidate(): void {
    this.bad = true
  }

  #fail(): number {
    this.bad = true
    return 0
  }
}

/** Bytes a zigzag varint of the int32 `n` takes. */
export function varintBytes(n: number): number {
  let u = ((n << 1) ^ (n >> 31)) >>> 0
  let size = 1
  while (u >= 0x80) {
    u >>>= 7
    size++
  }
  return size
}

/** Writes the int32 `n` as a zigzag varint at `pos`; returns the position after it. */
export function writeVarint(bytes: Uint8Array, pos: number, n: number): number {
  let u = ((n << 1) ^ (n >> 31)) >>> 0
  while (u >= 0x80) {
    bytes[pos++] = (u & 0x7f) | 0x80
    u >>>= 7
  }
  bytes[pos++] = u
  return pos
}

/*
 * Varlongs of safe integers. The zigzag value u = 2q + s (s the sign bit, q = n or -n-1)
 * can reach 2^54, past exact float arithmetic, so it is never formed: the first byte takes
 * s and q's low 6 bits, and the rest of q (< 2^53, exact) follows 7 bits at a time.
 */

/** Bytes a zigzag varlong of the safe integer `n` takes. */
export function varlongBytes(n: number): number {
  let q = n >= 0 ? n : -n - 1
  if (q < 64) return 1
  q = Math.floor(q / 64)
  let size = 2
  while (q >= 128) {
    q = Math.floor(q / 128)
    size++
  }
  return size
}

/** Writes the safe integer `n` as a zigzag varlong at `pos`; returns the position after it. */
export function writeVarlong(bytes: Uint8Array, pos: number, n: number): number {
  const s = n >= 0 ? 0 : 1
  let q = n >= 0 ? n : -n - 1
  const first = ((q % 64) << 1) | s
  if (q < 64) {
    bytes[pos++] = first
    return pos
  }
  bytes[pos++] = first | 0x80
  q = Math.floor(q / 64)
  while (q >= 128) {
    bytes[pos++] = (q % 128) | 0x80
    q = Math.floor(q / 128)
  }
  bytes[pos++] = q
  return pos
}

// Big-endian fixed-width integers. Plain index arithmetic: no DataView to allocate.

export function readInt16(b: Uint8Array, p: number): number {
  return (((b[p]! << 8) | b[p + 1]!) << 16) >> 16
}

export function readInt32(b: Uint8Array, p: number): number {
  return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!
}

export function readUint32(b: Uint8Array, p: number): number {
  return readInt32(b, p) >>> 0
}

/** An int64; exact whenever the result is a safe integer (callers check with Number.isSafeInteger). */
export function readInt64(b: Uint8Array, p: number): number {
  return readInt32(b, p) * TWO_POW_32 + readUint32(b, p + 4)
}

export function writeInt16(b: Uint8Array, p: number, n: number): void {
  b[p] = n >> 8
  b[p + 1] = n
}

export function writeInt32(b: Uint8Array, p: number, n: number): void {
  b[p] = n >>> 24
  b[p + 1] = n >>> 16
  b[p + 2] = n >>> 8
  b[p + 3] = n
}

/** Writes the safe integer `n` as an int64 (two's complement for negatives). */
export function writeInt64(b: Uint8Array, p: number, n: number): void {
  const hi = Math.floor(n / TWO_POW_32)
  writeInt32(b, p, hi)
  writeInt32(b, p + 4, n - hi * TWO_POW_32)
}
