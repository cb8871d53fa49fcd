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
 * frames out to a sink, no socket, so it is tested by feeding it byte strings. It is the
 * length-prefixed decoder the peer transport uses too (src/base/length-prefixed.ts): it
 * copies only a frame that spans chunks (once, when complete); a frame inside one chunk
 * reaches the sink as a view of that chunk. Senders coalesce many frames into one socket write
 * (§9: ~5.4M frames/s at ~64 KB writes, against one write per frame): encodeFrames() or
 * writeFrameHeader() into a buffer of their own.
 *
 * Imports base, errors.ts and node:buffer.
 */
import { Buffer } from 'node:buffer'
import { LENGTH_PREFIX_BYTES, LENGTH_PREFIX_MAX, LengthPrefixedDecoder, assert, limits } from '../base/index.js'
import { wireError } from './errors.js'
import type { WireError } from './errors.js'

export const FRAME_HEADER_BYTES = LENGTH_PREFIX_BYTES

/** The largest length the u32 prefix can express: a hard ceiling over any configured limit. */
export const FRAME_BYTES_WIRE_MAX = LENGTH_PREFIX_MAX

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

/** The client protocol's frames over the one length-prefixed decoder (src/base/length-prefixed.ts). */
export class FrameDecoder {
  readonly #inner: LengthPrefixedDecoder

  constructor(sink: FrameSink, options: FrameDecoderOptions = {}) {
    this.#inner = new LengthPrefixedDecoder(
      { frame: (body) => sink.frame(body), tooLarge: (bytes, limit) => sink.error(wireError('FRAME_TOO_LARGE', { bytes, limit })) },
      options.frameBytesMax ?? limits.protocol.frameBytesMax,
    )
  }

  /** True once the decoder failed or stop() was called: push() then ignores its input. */
  get stopped(): boolean {
    return this.#inner.stopped
  }

  /** Bytes held for a frame not yet complete (a prefix in progress counts its bytes too). */
  get bufferedBytes(): number {
    return this.#inner.bufferedBytes
  }

  /** Feeds the next bytes of the stream (LengthPrefixedDecoder.push says what it may keep); false once stopped. */
  push(chunk: Uint8Array): boolean {
    return this.#inner.push(chunk)
  }

  /** Stops the decoder (the connection is closing): frames still inside pushed chunks are dropped. */
  stop(): void {
    this.#inner.stop()
  }
}
