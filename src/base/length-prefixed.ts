/**
 * The one way raftmq cuts length-prefixed frames out of a byte stream, however TCP splits
 * or joins them: `u32 big-endian length, then that many body bytes`. The client protocol
 * (src/protocol/frame.ts) and the node-to-node transport (src/broker/peer/wire.ts) each
 * put their own meaning on the body and their own error on a length over the limit.
 *
 * A pure streaming parser: bytes in through push(), bodies out to a sink, no socket. A
 * body inside one chunk reaches the sink as a view of that chunk (no copy); one that spans
 * chunks is copied once, when complete. A length over `bodyBytesMax` stops the decoder
 * before anything of it is buffered: without reading that body the next frame cannot be
 * found. The limit may change between pushes or from inside the sink, and applies to
 * every length read after the change.
 *
 * Imports ./assert only.
 */
import { assert } from './assert.js'

export const LENGTH_PREFIX_BYTES = 4
/** The largest length the u32 prefix can express. */
export const LENGTH_PREFIX_MAX = 0xffff_ffff

/** Where a LengthPrefixedDecoder reports; calls are synchronous, from inside push(). */
export interface LengthPrefixedSink {
  /** A complete body: a view of the pushed chunk (keeping it keeps the chunk alive), or a fresh copy. */
  frame(body: Uint8Array): void
  /** A length over the limit: the decoder has stopped for good. */
  tooLarge(length: number, limit: number): void
}

function checkedLimit(bodyBytesMax: number): number {
  assert(Number.isInteger(bodyBytesMax) && bodyBytesMax >= 0 && bodyBytesMax <= LENGTH_PREFIX_MAX, () => `length-prefixed decoder: bad limit ${bodyBytesMax}`)
  return bodyBytesMax
}

export class LengthPrefixedDecoder {
  readonly #sink: LengthPrefixedSink
  #bodyBytesMax: number
  /** Prefix bytes seen so far when a prefix spans chunks (0..3), and their value. */
  #prefixBytes = 0
  #prefix = 0
  /** Length of the body being assembled across chunks; -1 while reading a prefix. */
  #bodyBytes = -1
  /** The pieces of that body, views of the chunks they came in, and their total length. */
  #parts: Uint8Array[] = []
  #partsBytes = 0
  #stopped = false
  #pushing = false

  constructor(sink: LengthPrefixedSink, bodyBytesMax: number) {
    this.#sink = sink
    this.#bodyBytesMax = checkedLimit(bodyBytesMax)
  }

  get bodyBytesMax(): number {
    return this.#bodyBytesMax
  }

  set bodyBytesMax(value: number) {
    this.#bodyBytesMax = checkedLimit(value)
  }

  /** True once a length was over the limit or stop() was called: push() then ignores its input. */
  get stopped(): boolean {
    return this.#stopped
  }

  /** Bytes held for a frame not yet complete (a prefix in progress counts its bytes too). */
  get bufferedBytes(): number {
    return this.#partsBytes + this.#prefixBytes
  }

  /**
   * The next bytes of the stream. The decoder may keep views of `chunk` until the frame
   * they belong to completes, so the caller must not reuse or modify it (a fresh socket
   * 'data' Buffer qualifies). Returns false once the decoder has stopped. Not reentrant:
   * the sink must not push from its callbacks.
   */
  push(chunk: Uint8Array): boolean {
    if (this.#stopped) return false
    assert(!this.#pushing, 'LengthPrefixedDecoder.push is not reentrant')
    this.#pushing = true
    try {
      this.#consume(chunk)
    } finally {
      this.#pushing = false
    }
    return !this.#stopped
  }

  /** Stops the decoder (the connection is closing): frames still inside pushed chunks are dropped. */
  stop(): void {
    this.#stopped = true
    this.#parts = []
    this.#partsBytes = 0
  }

  #consume(chunk: Uint8Array): void {
    const end = chunk.length
    let at = 0
    while (at < end && !this.#stopped) {
      if (this.#bodyBytes < 0) {
        let length: number
        if (this.#prefixBytes === 0 && end - at >= LENGTH_PREFIX_BYTES) {
          // the common case: a whole prefix inside the chunk
          length = chunk[at]! * 0x100_0000 + ((chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!)
          at += LENGTH_PREFIX_BYTES
        } else {
          while (this.#prefixBytes < LENGTH_PREFIX_BYTES && at < end) {
            this.#prefix = this.#prefix * 0x100 + chunk[at++]!
            this.#prefixBytes++
          }
          if (this.#prefixBytes < LENGTH_PREFIX_BYTES) return
          length = this.#prefix
          this.#prefix = 0
          this.#prefixBytes = 0
        }
        if (length > this.#bodyBytesMax) {
          this.stop()
          this.#sink.tooLarge(length, this.#bodyBytesMax)
          return
        }
        if (end - at >= length) {
          const body = chunk.subarray(at, at + length)
          at += length
          this.#sink.frame(body)
          continue
        }
        this.#bodyBytes = length
      }
      const take = Math.min(this.#bodyBytes - this.#partsBytes, end - at)
      if (take === 0) return // the prefix ended the chunk
      this.#parts.push(chunk.subarray(at, at + take))
      this.#partsBytes += take
      at += take
      if (this.#partsBytes === this.#bodyBytes) this.#emitAssembled()
    }
  }

  /** The body spanned chunks: one copy into an exact-size buffer, unless a single piece holds it all. */
  #emitAssembled(): void {
    const parts = this.#parts
    let body: Uint8Array
    if (parts.length === 1) {
      body = parts[0]! // only the prefix spanned chunks
    } else {
      body = new Uint8Array(this.#bodyBytes)
      let at = 0
      for (const part of parts) {
        body.set(part, at)
        at += part.length
      }
    }
    this.#parts = []
    this.#partsBytes = 0
    this.#bodyBytes = -1
    this.#sink.frame(body)
  }
}
