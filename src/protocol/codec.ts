/**
 * The message codec: how a frame body (frame.ts) becomes a value and back.
 *
 *   body = one msgpack value (https://github.com/msgpack/msgpack/blob/master/spec.md),
 *          in practice a map: a request or response envelope (api.ts)
 *
 * Wire conventions, fixed once here by the msgpackr configuration:
 * - maps decode to plain objects (never Maps or records; `useRecords: false` on both
 *   sides, so no record extension is written and no shared structures exist to go stale);
 * - properties whose value is `undefined` are not written (`skipValues`), so an absent
 *   optional field and an undefined one look the same on the wire: absent;
 * - integers beyond 32 bits decode as JS numbers (`int64AsType: 'number'`); the
 *   validators reject anything that is not a safe integer, so precision loss on a
 *   garbage u64 cannot slip through;
 * - bin fields decode as views into the body (no copy): a produce batch reaches the
 *   broker's router without its records being copied. The view keeps the whole body
 *   (and the socket chunk under it) alive: copy what you keep or transfer (DESIGN §9);
 * - the structured-clone and typed-array extensions are off, so decoding builds no
 *   cycles and no exotic objects from our own traffic; garbage may still decode to odd
 *   values (Date, Set, bigint, undefined), which the validators reject.
 *
 * decodeMessage never throws: msgpackr's exceptions on garbage (truncation, trailing
 * bytes, unknown extensions, deep nesting) become INVALID_REQUEST values. encodeMessage
 * throws only on values no protocol type contains (functions, symbols): a bug.
 *
 * Imports base, errors.ts, frame.ts, msgpackr and node:buffer.
 */
import { Buffer } from 'node:buffer'
import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr'
import type { Options } from 'msgpackr'
import { fail, limits, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { formatMessage } from './errors.js'
import { FRAME_HEADER_BYTES, writeFrameHeader } from './frame.js'

/** `skipValues` is documented in msgpackr's README but missing from its Options type. */
interface PackOptions extends Options {
  readonly skipValues: readonly unknown[]
}

const packOptions: PackOptions = {
  useRecords: false,
  // fixmap headers for small objects: smaller frames for the many small envelopes
  variableMapSize: true,
  skipValues: [undefined],
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
}

const packr = new Packr(packOptions)

const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: 'number',
  structuredClone: false,
  moreTypes: false,
  copyBuffers: false,
})

/** How much of a decoder's complaint about garbage goes into our message. */
const REASON_CHARS_MAX = 160

/**
 * Packs `value` into a new exact-size buffer the caller owns: safe to keep, queue or
 * transfer. (msgpackr's own result is a view into a shared slab; see DESIGN §9.)
 */
export function encodeMessage(value: unknown): Uint8Array {
  const view = packr.pack(value)
  const out = Buffer.allocUnsafeSlow(view.length)
  out.set(view)
  return out
}

/**
 * Packs `value` as a complete frame (prefix and body) with no copy: the body is packed
 * after 4 reserved bytes and the prefix written into them. The result is a view into
 * msgpackr's slab, which later packs do not overwrite, so it may be queued for a socket
 * write; copy it before transferring its ArrayBuffer. A body over `frameBytesMax` (the
 * peer's limit: the server's is announced in the hello response) is FRAME_TOO_LARGE.
 */
export function encodeMessageFrame(
  value: unknown,
  frameBytesMax: number = limits.protocol.frameBytesMax,
): Result<Uint8Array, 'FRAME_TOO_LARGE'> {
  const frame = packr.pack(value, RESERVE_START_SPACE | FRAME_HEADER_BYTES)
  const bodyBytes = frame.length - FRAME_HEADER_BYTES
  if (bodyBytes > frameBytesMax) {
    return fail('FRAME_TOO_LARGE', formatMessage('FRAME_TOO_LARGE', { bytes: bodyBytes, limit: frameBytesMax }))
  }
  writeFrameHeader(frame, 0, bodyBytes)
  return ok(frame)
}

/** Unpacks one message. Never throws: anything but exactly one msgpack value is INVALID_REQUEST. */
export function decodeMessage(bytes: Uint8Array): Result<unknown, 'INVALID_REQUEST'> {
  if (bytes.length === 0) return fail('INVALID_REQUEST', formatMessage('INVALID_REQUEST', { reason: 'an empty message' }))
  try {
    return ok(unpackr.unpack(bytes))
  } catch (e) {
    const reason = e instanceof Error ? `${e.name}: ${e.message}` : 'a non-Error exception'
    return fail('INVALID_REQUEST', formatMessage('INVALID_REQUEST', { reason: `not a msgpack message (${reason.slice(0, REASON_CHARS_MAX)})` }))
  }
}
