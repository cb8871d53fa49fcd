/**
 * Frames: how client messages are cut out of a TCP byte stream, in both directions.
 *
 *   stream = *frame
 *   frame  = length body
 *   length = u32 big-endian: the byte count of body (the 4 length bytes not included)
 *   body   = length bytes, one msgpack message (codec.ts); the framer never looks inside
 *
 * A receiver refuses a length above its frameBytesMax (limits.protocol, announced in the
 * hello response) with FRAME_TOO_LARGE and must then close the connection: it will not
 * read a body that large, and without reading it cannot find the next frame, so the
 * stream can no longer be trusted.
 *
 * Zero-length frames are legal framing and are handed on like any other: the framer is
 * content-agnostic and the stream stays in step. They are not legal messages (msgpack has
 * no zero-byte value), so the codec rejects them as INVALID_REQUEST one layer up.
 *
 * FrameDecoder is a pure streaming parser in the nats.js style: bytes in through push(),
 * frames out to a sink, no socket, so it is tested by feeding it byte strings. It copies
 * only a frame that spans chunks (once, when complete); a frame inside one chunk reaches
 * the sink as a view of that chunk. Senders coalesce many frames into one socket write
 * (§9: ~5.4M frames/s at ~64 KB writes, against one write per frame): encodeFrames() or
 * writeFrameHeader() into a buffer of their own.
 *
 * Imports base, errors.ts and node:buffer.
 */
import { Buffer } from 'node:buffer'
import { assert, limits } from '../base/index.js'
import { wireError } from './errors.js'
import type { WireError } from './errors.js'

export const FRAME_HEADER_BYTES = 4

/** The largest length the u32 prefix can express: a hard ceiling over any configured limit. */
export const FRAME_BYTES_WIRE_MAX = 0xffff_ffff

/** Writes the 4-byte length prefix of a `bodyBytes`-long frame at `target[offset]`. */
export function writeFrameHeader(target: Uint8Array, offset: number, bodyBytes: number): void {
  assert(Number.isInteger(bodyBytes) && bodyBytes >= 0 && bodyBytes <= FRAME_BYTES_WIRE_MAX, () => `frame body of ${bodyBytes} bytes`)
  assert(offset >= 0 && offset + FRAME_HEADER_BYTES <= target.length, 'frame header does not fit its target')
  target[offset] = bodyBytes >>> 24
  target[offset + 1] = (bodyBytes >>> 16) & 0xff
  target[offset + 2] = (bodyBytes >>> 8) & 0xff
  target[offset + 3] = bodyBytes & 0xff
}

/**
 * One frame in a new exact-size buffer. The sender enforces its peer's frameBytesMax
 * (codec.encodeMessageFrame does); this checks only what the prefix can express.
 */
export function encodeFrame(body: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length)
  writeFrameHeader(out, 0, body.length)
  out.set(body, FRAME_HEADER_BYTES)
  return out
}

/** Many frames in one buffer, for one socket write: one allocation, one copy of each body. */
export function encodeFrames(bodies: readonly Uint8Array[]): Uint8Array {
  let total = 0
  for (const body of bodies) total += FRAME_HEADER_BYTES + body.length
  const out = Buffer.allocUnsafe(total)
  let at = 0
  for (const body of bodies) {
    writeFrameHeader(out, at, body.length)
    out.set(body, at + FRAME_HEADER_BYTES)
    at += FRAME_HEADER_BYTES + body.length
  }
  return out
}

/** Where a FrameDecoder reports. Calls are synchronous, from inside push(). */
export interface FrameSink {
  /**
   * A complete frame body. A view of the pushed chunk when the frame lay inside one
   * chunk (it keeps that chunk alive: copy what you keep long), else a fresh buffer.
   */
  frame(body: Uint8Array): void
  /** FRAME_TOO_LARGE: the decoder has stopped for good; close the connection. */
  error(error: WireError): void
}

export interface FrameDecoderOptions {
  /** The largest body accepted; defaults to limits.protocol.frameBytesMax. */
  readonly frameBytesMax?: number
}

export class FrameDecoder {
  readonly #sink: FrameSink
  readonly #frameBytesMax: number
  /** Length-prefix bytes seen so far when a prefix spans chunks (0..3), and their value. */
  #headerBytes = 0
  #header = 0
  /** Body length of the frame being assembled across chunks; -1 while reading a prefix. */
  #bodyBytes = -1
  /** The pieces of that frame, views of the chunks they came in, and their total length. */
  #parts: Uint8Array[] = []
  #partsBytes = 0
  #stopped = false
  #pushing = false

  constructor(sink: FrameSink, options: FrameDecoderOptions = {}) {
    const frameBytesMax = options.frameBytesMax ?? limits.protocol.frameBytesMax
    assert(
      Number.isInteger(frameBytesMax) && frameBytesMax >= 0 && frameBytesMax <= FRAME_BYTES_WIRE_MAX,
      () => `FrameDecoder: bad frameBytesMax ${frameBytesMax}`,
    )
    this.#sink = sink
    this.#frameBytesMax = frameBytesMax
  }

  /** True once the decoder failed or stop() was called: push() then ignores its input. */
  get stopped(): boolean {
    return this.#stopped
  }

  /** Bytes held for a frame not yet complete (a prefix in progress counts its bytes too). */
  get bufferedBytes(): number {
    return this.#partsBytes + this.#headerBytes
  }

  /**
   * Feeds the next bytes of the stream. The decoder may keep views of `chunk` until the
   * frame they belong to completes, so the caller must not reuse or modify it (a fresh
   * socket 'data' Buffer qualifies; a recycled read buffer does not). Returns false once
   * the decoder has stopped. Not reentrant: the sink must not push from its callbacks.
   */
  push(chunk: Uint8Array): boolean {
    if (this.#stopped) return false
    assert(!this.#pushing, 'FrameDecoder.push is not reentrant')
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
        if (this.#headerBytes === 0 && end - at >= FRAME_HEADER_BYTES) {
          // the common case: a whole prefix inside the chunk
          length = chunk[at]! * 0x100_0000 + ((chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!)
          at += FRAME_HEADER_BYTES
        } else {
          while (this.#headerBytes < FRAME_HEADER_BYTES && at < end) {
            this.#header = this.#header * 0x100 + chunk[at++]!
            this.#headerBytes++
          }
          if (this.#headerBytes < FRAME_HEADER_BYTES) return
          length = this.#header
          this.#header = 0
          this.#headerBytes = 0
        }
        if (length > this.#frameBytesMax) {
          this.stop()
          this.#sink.error(wireError('FRAME_TOO_LARGE', { bytes: length, limit: this.#frameBytesMax }))
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

  /** The frame spanned chunks: one copy into an exact-size buffer, unless a single piece holds it all. */
  #emitAssembled(): void {
    const parts = this.#parts
    let body: Uint8Array
    if (parts.length === 1) {
      // the prefix spanned chunks but the body did not
      body = parts[0]!
    } else {
      const out = Buffer.allocUnsafe(this.#bodyBytes)
      let at = 0
      for (const part of parts) {
        out.set(part, at)
        at += part.length
      }
      body = out
    }
    this.#parts = []
    this.#partsBytes = 0
    this.#bodyBytes = -1
    this.#sink.frame(body)
  }
}
