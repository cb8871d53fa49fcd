/**
 * The size an LZ4 frame decompresses to, found by walking its structure without
 * decompressing it. Private to src/protocol: compression.ts runs this before handing a
 * frame to lz4-napi, whose decoder has no output limit and is lenient (it returns what it
 * has for a frame missing its end mark, and ignores bytes after the frame), so the walk
 * both bounds the allocation and makes the frame grammar strict.
 *
 * Frame (lz4 frame format 1.6.x, the one Kafka's magic-2 batches use):
 *   magic u32le 0x184D2204 | FLG u8 | BD u8 | [contentSize u64le] | [dictId u32le] | HC u8
 *   then blocks: size u32le (high bit: stored uncompressed; 0: end mark) | data | [checksum u32]
 *   then [contentChecksum u32]. FLG: version 01 (bits 7-6), block independence (5),
 *   block checksum (4), content size (3), content checksum (2), reserved (1), dictId (0).
 *   BD bits 6-4: block maximum size, 4 → 64 KiB … 7 → 4 MiB.
 * A compressed block is a run of sequences: token (literal length hi nibble, match length
 * lo nibble, 15 meaning "more bytes follow, each adding up to 255"), literals, a u16le
 * match offset, and the match length extension (+4); the last sequence has literals only.
 *
 * Exactly one frame is accepted; dictionaries are not (Kafka never uses them). The header
 * checksum and block checksums are left to the decoder.
 *
 * Imports base.
 */
import { fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'

const LZ4_FRAME_MAGIC = 0x184d2204
const FLG_VERSION_MASK = 0xc0
const FLG_VERSION_1 = 0x40
const FLG_BLOCK_INDEPENDENT = 0x20
const FLG_BLOCK_CHECKSUM = 0x10
const FLG_CONTENT_SIZE = 0x08
const FLG_CONTENT_CHECKSUM = 0x04
const FLG_RESERVED = 0x02
const FLG_DICT_ID = 0x01
const BLOCK_UNCOMPRESSED = 0x80000000

export type Lz4FrameError = 'CORRUPT_MESSAGE' | 'MESSAGE_TOO_LARGE'

function u32le(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0
}

/** Bytes `frame` decompresses to, or why it cannot be accepted (more than `maxBytes`, or malformed). */
export function lz4FrameContentBytes(frame: Uint8Array, maxBytes: number): Result<number, Lz4FrameError> {
  const corrupt = (why: string) => fail('CORRUPT_MESSAGE' as const, `lz4 frame: ${why}`)
  if (frame.length < 7 || u32le(frame, 0) !== LZ4_FRAME_MAGIC) return corrupt('bad magic')
  const flg = frame[4]!
  const bd = frame[5]!
  if ((flg & FLG_VERSION_MASK) !== FLG_VERSION_1 || (flg & (FLG_RESERVED | FLG_DICT_ID)) !== 0) return corrupt('unsupported FLG')
  const sizeCode = (bd >> 4) & 7
  if ((bd & 0x8f) !== 0 || sizeCode < 4) return corrupt('bad block descriptor')
  const blockBytesMax = 1 << (8 + 2 * sizeCode)
  let pos = 6
  const declaredPos = pos
  if ((flg & FLG_CONTENT_SIZE) !== 0) pos += 8
  pos += 1 // header checksum
  if (pos > frame.length) return corrupt('truncated header')

  const independent = (flg & FLG_BLOCK_INDEPENDENT) !== 0
  const trailerBytes = (flg & FLG_BLOCK_CHECKSUM) !== 0 ? 4 : 0
  let total = 0
  for (;;) {
    if (pos + 4 > frame.length) return corrupt('truncated before the end mark')
    const word = u32le(frame, pos)
    pos += 4
    if (word === 0) break
    const size = word & 0x7fffffff
    if (size > blockBytesMax || pos + size + trailerBytes > frame.length) return corrupt('block past the end')
    const out = word >= BLOCK_UNCOMPRESSED ? size : blockContentBytes(frame, pos, pos + size, blockBytesMax, independent ? 0 : total)
    if (out < 0) return corrupt('malformed block')
    total += out
    if (total > maxBytes) return fail('MESSAGE_TOO_LARGE', `lz4 frame decompresses to more than ${maxBytes} bytes`)
    pos += size + trailerBytes
  }
  if ((flg & FLG_CONTENT_CHECKSUM) !== 0) pos += 4
  if (pos !== frame.length) return corrupt(pos > frame.length ? 'truncated content checksum' : 'bytes after the frame')
  if ((flg & FLG_CONTENT_SIZE) !== 0) {
    const declared = u32le(frame, declaredPos + 4) * 2 ** 32 + u32le(frame, declaredPos)
    if (declared !== total) return corrupt(`declares ${declared} bytes but holds ${total}`)
  }
  return ok(total)
}

/**
 * Bytes the compressed block `b[pos, end)` expands to, or -1 if it is malformed or expands
 * past `blockBytesMax`. `before` is how much earlier output a match may reach back into
 * (0 for independent blocks). Each step consumes at least one byte, so this is O(end - pos).
 */
function blockContentBytes(b: Uint8Array, pos: number, end: number, blockBytesMax: number, before: number): number {
  let out = 0
  for (;;) {
    if (pos >= end) return -1
    const token = b[pos++]!
    let literals = token >>> 4
    if (literals === 15) {
      let more: number
      do {
        if (pos >= end) return -1
        more = b[pos++]!
        literals += more
      } while (more === 255)
    }
    pos += literals
    out += literals
    if (pos > end || out > blockBytesMax) return -1
    if (pos === end) return out // the last sequence: literals only
    if (pos + 2 > end) return -1
    const offset = b[pos]! | (b[pos + 1]! << 8)
    pos += 2
    if (offset === 0 || offset > before + out) return -1
    let match = (token & 15) + 4
    if ((token & 15) === 15) {
      let more: number
      do {
        if (pos >= end) return -1
        more = b[pos++]!
        match += more
      } while (more === 255)
    }
    out += match
    if (out > blockBytesMax) return -1
  }
}
