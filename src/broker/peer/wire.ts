/**
 * The node-to-node wire format: frames, the transport's own messages on channel 0, and an
 * incremental frame decoder. Pure functions over bytes; no sockets (link.ts does I/O).
 *
 *   stream   = *frame
 *   frame    = length channel payload
 *   length   = u32 big-endian: the byte count of channel + payload (so at least 1)
 *   channel  = u8: 0 is the transport's own (below), 1..255 belong to callers
 *   payload  = length - 1 bytes; opaque on channels 1..255 (Raft messages packed elsewhere)
 *
 *   control  = type body                       (the payload of a channel-0 frame)
 *   type     = u8: 1 HELLO, 2 HELLO_OK, 3 HELLO_REFUSED, 4 PING
 *   HELLO         = "RMQP" versionMin:u16 versionMax:u16 from:u32 to:u32 clusterIdBytes:u8 clusterId
 *   HELLO_OK      = version:u16
 *   HELLO_REFUSED = codeBytes:u8 code messageBytes:u16 message   (code ASCII, message UTF-8)
 *   PING          = (empty)
 *
 * The dialing node's first frame is HELLO; the accepting node answers HELLO_OK with the
 * version both speak, or HELLO_REFUSED and closes. Nothing else may cross before that.
 * Integers are big-endian; strings carry their UTF-8 byte count first.
 *
 * Versioning: the magic and the version pair are HELLO's first 8 bytes in every version,
 * so an accepter that shares no version with the dialer can still say so
 * (UNSUPPORTED_VERSION) without understanding the rest. Later versions may only append
 * fields to HELLO, which is why trailing bytes are tolerated exactly when the dialer
 * offers a version newer than ours.
 *
 * `frameBytesMax` bounds the payload, so the decoder refuses a length prefix above
 * frameBytesMax + 1 the moment it has read the prefix, before buffering anything of it.
 *
 * Imports base and node:buffer.
 */
import { Buffer } from 'node:buffer'
import { LENGTH_PREFIX_BYTES, LengthPrefixedDecoder, assert, fail, ok } from '../../base/index.js'
import type { Result } from '../../base/index.js'

export const PEER_VERSION_MIN = 1
export const PEER_VERSION_MAX = 1

/** The length prefix and the channel byte. */
export const FRAME_HEADER_BYTES = LENGTH_PREFIX_BYTES + 1

export const CONTROL_CHANNEL = 0
export const CHANNEL_MAX = 255

/** The longest cluster id a HELLO carries, in characters (its UTF-8 form then fits the u8 count). */
export const CLUSTER_ID_CHARS_MAX = 64
/** A refusal's message is cut to this many bytes: it is for a log line, not a document. */
const REFUSAL_MESSAGE_BYTES_MAX = 1024
/** Node ids travel as u32. */
const NODE_ID_MAX = 0xffff_ffff

export const ControlType = { HELLO: 1, HELLO_OK: 2, HELLO_REFUSED: 3, PING: 4 } as const
export type ControlType = (typeof ControlType)[keyof typeof ControlType]

export const REFUSAL_CODES = ['WRONG_CLUSTER', 'UNKNOWN_NODE', 'WRONG_NODE', 'UNSUPPORTED_VERSION', 'BAD_HANDSHAKE'] as const
export type RefusalCode = (typeof REFUSAL_CODES)[number]

const MAGIC = Buffer.from('RMQP', 'latin1')
const HELLO_HEAD_BYTES = 1 + MAGIC.length + 2 + 2
const HELLO_V1_BYTES = HELLO_HEAD_BYTES + 4 + 4 + 1

const utf8 = new TextDecoder('utf-8', { fatal: true })

export interface Hello {
  readonly versionMin: number
  readonly versionMax: number
  readonly clusterId: string
  /** The dialing node's id. */
  readonly from: number
  /** The node the dialer believes it reached. */
  readonly to: number
}

export interface Refusal {
  readonly code: RefusalCode
  readonly message: string
}

// ---------------------------------------------------------------------------------------
// Frames

/** Writes one frame (header and payload) at `target[offset]`; returns the offset after it. */
export function writeFrame(target: Uint8Array, offset: number, channel: number, payload: Uint8Array): number {
  assert(Number.isInteger(channel) && channel >= 0 && channel <= CHANNEL_MAX, () => `peer frame channel ${channel}`)
  assert(offset >= 0 && offset + FRAME_HEADER_BYTES + payload.length <= target.length, 'peer frame does not fit its target')
  const length = 1 + payload.length
  target[offset] = length >>> 24
  target[offset + 1] = (length >>> 16) & 0xff
  target[offset + 2] = (length >>> 8) & 0xff
  target[offset + 3] = length & 0xff
  target[offset + 4] = channel
  target.set(payload, offset + FRAME_HEADER_BYTES)
  return offset + FRAME_HEADER_BYTES + payload.length
}

/** One frame in a new exact-size buffer (control messages, tests). */
export function encodeFrame(channel: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length)
  writeFrame(out, 0, channel, payload)
  return out
}

// ---------------------------------------------------------------------------------------
// Control messages (channel 0)

export const PING_PAYLOAD: Uint8Array = Uint8Array.of(ControlType.PING)

export function encodeHello(hello: Hello): Buffer {
  assert(hello.clusterId.length <= CLUSTER_ID_CHARS_MAX, () => `cluster id longer than ${CLUSTER_ID_CHARS_MAX} characters`)
  assert(isNodeId(hello.from) && isNodeId(hello.to), () => `node ids ${hello.from}, ${hello.to}`)
  const cluster = Buffer.from(hello.clusterId, 'utf8')
  const out = Buffer.allocUnsafe(HELLO_V1_BYTES + cluster.length)
  out[0] = ControlType.HELLO
  MAGIC.copy(out, 1)
  out.writeUInt16BE(hello.versionMin, 5)
  out.writeUInt16BE(hello.versionMax, 7)
  out.writeUInt32BE(hello.from, 9)
  out.writeUInt32BE(hello.to, 13)
  out[17] = cluster.length
  cluster.copy(out, HELLO_V1_BYTES)
  return out
}

export function encodeHelloOk(version: number): Buffer {
  const out = Buffer.allocUnsafe(3)
  out[0] = ControlType.HELLO_OK
  out.writeUInt16BE(version, 1)
  return out
}

export function encodeHelloRefused(refusal: Refusal): Buffer {
  const code = Buffer.from(refusal.code, 'latin1')
  let message = Buffer.from(refusal.message, 'utf8')
  if (message.length > REFUSAL_MESSAGE_BYTES_MAX) message = Buffer.from(utf8Prefix(message, REFUSAL_MESSAGE_BYTES_MAX))
  const out = Buffer.allocUnsafe(1 + 1 + code.length + 2 + message.length)
  out[0] = ControlType.HELLO_REFUSED
  out[1] = code.length
  code.copy(out, 2)
  out.writeUInt16BE(message.length, 2 + code.length)
  message.copy(out, 4 + code.length)
  return out
}

/** The type byte of a channel-0 payload, or undefined when it names no known message. */
export function controlType(payload: Uint8Array): ControlType | undefined {
  const t = payload[0]
  return t !== undefined && t >= ControlType.HELLO && t <= ControlType.PING ? (t as ControlType) : undefined
}

/**
 * Reads a HELLO payload (type byte included). UNSUPPORTED_VERSION when its version range
 * does not meet ours (decided from the stable first 8 bytes alone); BAD_HANDSHAKE for
 * anything else that is not a well-formed HELLO.
 */
export function decodeHello(payload: Uint8Array): Result<Hello, 'BAD_HANDSHAKE' | 'UNSUPPORTED_VERSION'> {
  const b = asBuffer(payload)
  if (b.length < HELLO_HEAD_BYTES || b[0] !== ControlType.HELLO || !b.subarray(1, 5).equals(MAGIC)) {
    return fail('BAD_HANDSHAKE', 'the first frame is not a HELLO (no RMQP magic)')
  }
  const versionMin = b.readUInt16BE(5)
  const versionMax = b.readUInt16BE(7)
  if (versionMin > versionMax) return fail('BAD_HANDSHAKE', `HELLO offers versions ${versionMin}..${versionMax}`)
  if (versionMax < PEER_VERSION_MIN || versionMin > PEER_VERSION_MAX) {
    return fail('UNSUPPORTED_VERSION', `HELLO offers versions ${versionMin}..${versionMax}; this node speaks ${PEER_VERSION_MIN}..${PEER_VERSION_MAX}`)
  }
  if (b.length < HELLO_V1_BYTES) return fail('BAD_HANDSHAKE', `HELLO of ${b.length} bytes is truncated`)
  const from = b.readUInt32BE(9)
  const to = b.readUInt32BE(13)
  const clusterBytes = b[17]!
  const end = HELLO_V1_BYTES + clusterBytes
  if (b.length < end) return fail('BAD_HANDSHAKE', 'HELLO cluster id is truncated')
  if (b.length > end && versionMax <= PEER_VERSION_MAX) return fail('BAD_HANDSHAKE', `HELLO has ${b.length - end} trailing bytes`)
  const clusterId = decodeUtf8(b.subarray(HELLO_V1_BYTES, end))
  if (clusterId === undefined || clusterId.length > CLUSTER_ID_CHARS_MAX) return fail('BAD_HANDSHAKE', 'HELLO cluster id is not UTF-8 of at most 64 characters')
  return ok({ versionMin, versionMax, clusterId, from, to })
}

export function decodeHelloOk(payload: Uint8Array): Result<number, 'MALFORMED'> {
  if (payload.length !== 3 || payload[0] !== ControlType.HELLO_OK) return fail('MALFORMED', `HELLO_OK of ${payload.length} bytes`)
  return ok(asBuffer(payload).readUInt16BE(1))
}

export function decodeHelloRefused(payload: Uint8Array): Result<Refusal, 'MALFORMED'> {
  const b = asBuffer(payload)
  if (b.length < 2 || b[0] !== ControlType.HELLO_REFUSED) return fail('MALFORMED', 'HELLO_REFUSED is truncated')
  const codeEnd = 2 + b[1]!
  if (b.length < codeEnd + 2) return fail('MALFORMED', 'HELLO_REFUSED code is truncated')
  const code = b.toString('latin1', 2, codeEnd)
  if (!(REFUSAL_CODES as readonly string[]).includes(code)) return fail('MALFORMED', `HELLO_REFUSED with unknown code ${JSON.stringify(code.slice(0, 32))}`)
  const messageEnd = codeEnd + 2 + b.readUInt16BE(codeEnd)
  if (b.length !== messageEnd) return fail('MALFORMED', 'HELLO_REFUSED message length does not match')
  const message = decodeUtf8(b.subarray(codeEnd + 2, messageEnd))
  if (message === undefined) return fail('MALFORMED', 'HELLO_REFUSED message is not UTF-8')
  return ok({ code: code as RefusalCode, message })
}

export function isNodeId(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id <= NODE_ID_MAX
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** The longest prefix of `bytes` of at most `max` bytes that does not cut a UTF-8 sequence. */
function utf8Prefix(bytes: Uint8Array, max: number): Uint8Array {
  let end = max
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end)
}

// ---------------------------------------------------------------------------------------
// Decoding a stream

export type DecodeErrorCode = 'FRAME_TOO_LARGE' | 'EMPTY_FRAME'

/** Where a PeerFrameDecoder reports; calls are synchronous, from inside push(). */
export interface PeerFrameSink {
  /**
   * One frame. `payload` is a view of the pushed chunk when the frame lay inside one chunk
   * (keeping it keeps the chunk alive: copy what you keep long), else a fresh buffer.
   */
  frame(channel: number, payload: Uint8Array): void
  /** The stream broke (its next frame cannot be found): the decoder has stopped; close the connection. */
  error(code: DecodeErrorCode, message: string): void
}

/**
 * Cuts frames out of a byte stream however TCP splits or joins them. A frame inside one
 * chunk reaches the sink as a view (no copy); one that spans chunks is copied once, when
 * complete. The payload limit may be changed between pushes or from inside the sink (the
 * link keeps it small until the handshake is done, so a stranger cannot make it buffer
 * 64 MiB); it applies to every length prefix read after the change.
 */
export class PeerFrameDecoder {
  /** Its limit is the payload's plus the channel byte. */
  readonly #inner: LengthPrefixedDecoder
  readonly #sink: PeerFrameSink

  constructor(sink: PeerFrameSink, frameBytesMax: number) {
    this.#sink = sink
    this.#inner = new LengthPrefixedDecoder(
      {
        frame: (frame) => {
          if (frame.length === 0) this.#fail('EMPTY_FRAME', 'a frame of length 0 has no channel byte')
          else this.#sink.frame(frame[0]!, frame.subarray(1))
        },
        tooLarge: (length, limit) => this.#sink.error('FRAME_TOO_LARGE', `a frame of ${length - 1} payload bytes is over the limit of ${limit - 1}`),
      },
      checkedLimit(frameBytesMax) + 1,
    )
  }

  get frameBytesMax(): number {
    return this.#inner.bodyBytesMax - 1
  }

  set frameBytesMax(value: number) {
    this.#inner.bodyBytesMax = checkedLimit(value) + 1
  }

  get stopped(): boolean {
    return this.#inner.stopped
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.#inner.bufferedBytes
  }

  /** The next bytes of the stream (LengthPrefixedDecoder.push says what it may keep); false once stopped. */
  push(chunk: Uint8Array): boolean {
    return this.#inner.push(chunk)
  }

  stop(): void {
    this.#inner.stop()
  }

  #fail(code: DecodeErrorCode, message: string): void {
    this.stop()
    this.#sink.error(code, message)
  }
}

function checkedLimit(frameBytesMax: number): number {
  // the prefix counts the channel byte too, and must stay a u32
  assert(Number.isInteger(frameBytesMax) && frameBytesMax >= 0 && frameBytesMax < 0xffff_ffff, () => `peer frameBytesMax ${frameBytesMax}`)
  return frameBytesMax
}
