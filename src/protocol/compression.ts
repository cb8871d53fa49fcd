/**
 * Whole-batch compression for RecordBatch v2: the codecs of the attributes' low three bits
 * (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), compressed and decompressed synchronously.
 * Callers that must not stall (the broker's main thread, a group actor) run these in the
 * codec pool; DESIGN.md §9 has the throughputs.
 *
 * - gzip: node:zlib, level 6 (zlib's default, the level §9 measured). Concatenated
 *   members are accepted, as Java's GZIPInputStream accepts them.
 * - lz4: the LZ4 *frame* format through lz4-napi (independent blocks, as Kafka's
 *   KafkaLZ4BlockInputStream requires).
 * - zstd: zstd-napi at level 1, the level §9 measured (Node 20's zlib has no zstd).
 * - snappy: not supported (no maintained synchronous package, and Kafka's xerial framing);
 *   decompress answers UNSUPPORTED_COMPRESSION, and compress treats the request as a bug:
 *   producers validate their compression option when they are built.
 *
 * decompress never throws on bad input and never holds more than `maxBytes` of output:
 * gzip stops at zlib's `maxOutputLength`; an lz4 frame's size is computed by walking its
 * blocks first (lz4-frame.ts); zstd frames that declare their content size are checked
 * before anything is allocated, and the rest are streamed into chunks that stop one byte
 * past the limit. (A chunked result is joined at the end, so the transient peak is about
 * twice the output, as with zlib's own sync API.)
 *
 * Imports base, node:zlib, lz4-napi, zstd-napi and ./lz4-frame.
 */
import { constants as bufferConstants } from 'node:buffer'
import { gunzipSync, gzipSync } from 'node:zlib'
import { compressFrameSync, decompressFrameSync } from 'lz4-napi'
import zstd from 'zstd-napi/binding.js'
import type { DCtx } from 'zstd-napi/binding.js'
import { assert, fail, ok, unreachable } from '../base/index.js'
import type { Result } from '../base/index.js'
import { lz4FrameContentBytes } from './lz4-frame.js'

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'

/** The attributes codec number of each compression. */
export const compressionCodecs = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const satisfies Record<Compression, number>

const byCodec: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd']

/** The compression of an attributes codec number, or null for 5..7 (no such codec). */
export function compressionOfCodec(codec: number): Compression | null {
  return byCodec[codec] ?? null
}

export type DecompressError = 'CORRUPT_MESSAGE' | 'UNSUPPORTED_COMPRESSION' | 'MESSAGE_TOO_LARGE'

const ZSTD_LEVEL = 1
/** Output chunk of the zstd streaming path (zstd's recommended ZSTD_DStreamOutSize is 128 KiB). */
const ZSTD_CHUNK_BYTES = 128 << 10
/** Smallest zstd window a streamed frame may ask for: 8 MiB covers every level up to 19. */
const ZSTD_WINDOW_LOG_MIN = 23
/** zstd's own default ceiling (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 128 MiB). */
const ZSTD_WINDOW_LOG_MAX = 27

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** `bytes` compressed with `codec`. Asking for snappy is a bug (see the header). */
export function compress(codec: Compression, bytes: Uint8Array): Uint8Array {
  switch (codec) {
    case 'none':
      return bytes
    case 'gzip':
      return gzipSync(bytes)
    case 'lz4':
      return compressFrameSync(asBuffer(bytes))
    case 'zstd':
      return zstdCompress(bytes)
    case 'snappy':
      return unreachable('snappy compression is not supported; reject it where the producer is configured')
  }
}

/** `bytes` decompressed with `codec`, holding at most `maxBytes` of output. */
export function decompress(codec: Compression, bytes: Uint8Array, maxBytes: number): Result<Uint8Array, DecompressError> {
  assert(Number.isSafeInteger(maxBytes) && maxBytes >= 0, () => `decompress: bad maxBytes ${maxBytes}`)
  switch (codec) {
    case 'none':
      return bytes.length <= maxBytes ? ok(bytes) : tooLarge(maxBytes)
    case 'gzip':
      return gunzipBounded(bytes, maxBytes)
    case 'lz4':
      return lz4Bounded(bytes, maxBytes)
    case 'zstd':
      return zstdBounded(bytes, maxBytes)
    case 'snappy':
      return fail('UNSUPPORTED_COMPRESSION', 'snappy compression is not supported')
  }
}

function tooLarge(maxBytes: number) {
  return fail('MESSAGE_TOO_LARGE' as const, `decompresses to more than ${maxBytes} bytes`)
}

function corrupt(codec: Compression, cause: unknown) {
  const why = cause instanceof Error ? cause.message : String(cause)
  return fail('CORRUPT_MESSAGE' as const, `${codec}: ${why}`)
}

function gunzipBounded(bytes: Uint8Array, maxBytes: number): Result<Uint8Array, DecompressError> {
  // zlib wants 1 <= maxOutputLength <= kMaxLength; 0 is handled by the length check after
  const maxOutputLength = Math.min(Math.max(maxBytes, 1), bufferConstants.MAX_LENGTH)
  let out: Buffer
  try {
    out = gunzipSync(bytes, { maxOutputLength })
  } catch (e) {
    if (e instanceof Error && (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return tooLarge(maxBytes)
    return corrupt('gzip', e)
  }
  return out.length <= maxBytes ? ok(out) : tooLarge(maxBytes)
}

function lz4Bounded(bytes: Uint8Array, maxBytes: number): Result<Uint8Array, DecompressError> {
  const size = lz4FrameContentBytes(bytes, maxBytes)
  if (!size.ok) return size
  let out: Buffer
  try {
    out = decompressFrameSync(asBuffer(bytes))
  } catch (e) {
    return corrupt('lz4', e)
  }
  if (out.length !== size.value) return corrupt('lz4', `decoded ${out.length} bytes, the frame walk found ${size.value}`)
  return ok(out)
}

function zstdCompress(bytes: Uint8Array): Uint8Array {
  const dst = Buffer.allocUnsafe(zstd.compressBound(bytes.length))
  const n = zstd.compress(dst, bytes, ZSTD_LEVEL)
  // one copy to an exact-size array: the bound is larger, and the batch would keep it alive
  const out = new Uint8Array(n)
  out.set(dst.subarray(0, n))
  return out
}

let zstdContext: DCtx | undefined

function zstdBounded(bytes: Uint8Array, maxBytes: number): Result<Uint8Array, DecompressError> {
  if (bytes.length === 0) return corrupt('zstd', 'empty input')
  const declared = zstdDeclaredBytes(bytes)
  if (declared === 'corrupt') return corrupt('zstd', 'malformed frame header')
  if (declared !== null && declared > maxBytes) return tooLarge(maxBytes)
  const dctx = (zstdContext ??= new zstd.DCtx())
  try {
    dctx.reset(zstd.ResetDirective.sessionAndParameters)
    if (declared !== null) {
      // every frame states its size: one exact allocation, and zstd fails if a frame lies
      const out = Buffer.allocUnsafe(declared)
      const n = dctx.decompress(out, bytes)
      return n === declared ? ok(out) : corrupt('zstd', `decoded ${n} bytes, frames declare ${declared}`)
    }
    return zstdStream(dctx, bytes, maxBytes)
  } catch (e) {
    return corrupt('zstd', e)
  }
}

/** The summed content sizes of the frames in `bytes`; null if a frame omits its size. */
function zstdDeclaredBytes(bytes: Uint8Array): number | null | 'corrupt' {
  let total = 0
  let rest = bytes
  try {
    while (rest.length > 0) {
      const size = zstd.getFrameContentSize(rest)
      if (size === null) return null
      const frameBytes = zstd.findFrameCompressedSize(rest)
      if (!(frameBytes > 0 && frameBytes <= rest.length)) return 'corrupt'
      total += size
      rest = rest.subarray(frameBytes)
    }
  } catch {
    return 'corrupt'
  }
  return total
}

/**
 * Streams frames without declared sizes (Kafka's Java and librdkafka producers write them
 * so) into chunks, stopping one byte past `maxBytes`. The window a frame may demand is
 * capped near maxBytes so the decoder's own buffer is bounded too.
 */
function zstdStream(dctx: DCtx, bytes: Uint8Array, maxBytes: number): Result<Uint8Array, DecompressError> {
  const windowLog = Math.min(ZSTD_WINDOW_LOG_MAX, Math.max(ZSTD_WINDOW_LOG_MIN, Math.ceil(Math.log2(maxBytes + 1))))
  dctx.setParameter(zstd.DParameter.windowLogMax, windowLog)
  const chunks: Uint8Array[] = []
  let total = 0
  let rest = bytes
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(ZSTD_CHUNK_BYTES, maxBytes - total + 1))
    const [pending, produced, consumed] = dctx.decompressStream(chunk, rest)
    rest = rest.subarray(consumed)
    total += produced
    if (total > maxBytes) return tooLarge(maxBytes)
    if (produced > 0) chunks.push(chunk.subarray(0, produced))
    if (rest.length === 0 && pending === 0) break
    if (produced === 0 && consumed === 0) return corrupt('zstd', 'truncated frame')
  }
  return ok(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total))
}
