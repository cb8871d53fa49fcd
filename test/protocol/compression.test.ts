import { crc32c } from '@node-rs/crc32'
import { gzipSync } from 'node:zlib'
import { compressFrameSync } from 'lz4-napi'
import { compress as zstdCompress } from 'zstd-napi'
import { describe, expect, it } from 'vitest'
import { Prng, limits } from '../../src/base/index.js'
import { compress, compressionCodecs, compressionOfCodec, decompress } from '../../src/protocol/compression.js'
import type { Compression } from '../../src/protocol/compression.js'
import { lz4FrameContentBytes } from '../../src/protocol/lz4-frame.js'
import { BATCH_HEADER_BYTES, checkBatch, decodeRecordBatch, encodeRecordBatch } from '../../src/protocol/record-batch.js'

const codecs = ['gzip', 'lz4', 'zstd'] as const
const prng = new Prng(77)
const random = (n: number) => Uint8Array.from({ length: n }, () => prng.int(256))
const samples: Uint8Array[] = [
  new Uint8Array(0),
  Uint8Array.of(42),
  random(1000),
  new TextEncoder().encode('a fairly compressible line of text\n'.repeat(30_000)), // ~1 MB: many lz4 blocks
  random(300_000),
]

const code = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error!.code)

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts)
}

describe('compression - codecs', () => {
  it('numbers the codecs as the attributes do', () => {
    expect(compressionCodecs).toEqual({ none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 })
    for (const [name, n] of Object.entries(compressionCodecs)) expect(compressionOfCodec(n)).toBe(name)
    for (const n of [5, 6, 7, -1, 1.5]) expect(compressionOfCodec(n)).toBe(null)
  })

  for (const codec of ['none', ...codecs] as const) {
    it(`${codec}: round trips, and maxBytes is exact`, () => {
      for (const s of samples) {
        const packed = compress(codec, s)
        const back = decompress(codec, packed, s.length)
        expect(back.ok && Buffer.from(back.value).equals(Buffer.from(s))).toBe(true)
        if (s.length > 0) expect(code(decompress(codec, packed, s.length - 1))).toBe('MESSAGE_TOO_LARGE')
      }
    })
  }

  it('lz4 writes frames with independent blocks and no content checksum, as Kafka reads them', () => {
    const f = compress('lz4', samples[3]!)
    expect(Buffer.from(f.subarray(0, 4)).readUInt32LE(0)).toBe(0x184d2204)
    expect(f[4]! & 0xe0).toBe(0x60) // version 01, block independence
  })

  it('zstd frames without a declared content size take the streaming path, bounded the same way', () => {
    for (const s of samples.slice(1)) {
      const packed = zstdCompress(s, { contentSizeFlag: false })
      const back = decompress('zstd', packed, s.length)
      expect(back.ok && Buffer.from(back.value).equals(Buffer.from(s))).toBe(true)
      expect(code(decompress('zstd', packed, s.length - 1))).toBe('MESSAGE_TOO_LARGE')
    }
  })

  it('snappy is unsupported: decompress says so, compress is a bug', () => {
    expect(code(decompress('snappy', Uint8Array.of(1, 2, 3), 100))).toBe('UNSUPPORTED_COMPRESSION')
    expect(() => compress('snappy', Uint8Array.of(1))).toThrow(/snappy/)
  })
})

describe('compression - corrupt input', () => {
  for (const codec of codecs) {
    it(`${codec}: garbage, empty input and every truncation are CORRUPT_MESSAGE, never a throw`, () => {
      expect(code(decompress(codec, new Uint8Array(0), 1000))).toBe('CORRUPT_MESSAGE')
      for (let i = 0; i < 50; i++) expect(code(decompress(codec, random(1 + prng.int(200)), 1 << 20))).toBe('CORRUPT_MESSAGE')
      const packed = compress(codec, samples[2]!)
      for (let n = 0; n < packed.length; n++) expect(code(decompress(codec, packed.subarray(0, n), 1 << 20)), `length ${n}`).toBe('CORRUPT_MESSAGE')
    })

    it(`${codec}: bytes after the compressed data are CORRUPT_MESSAGE`, () => {
      const packed = compress(codec, samples[2]!)
      expect(code(decompress(codec, concat([packed, Uint8Array.of(1, 2, 3)]), 1 << 20))).toBe('CORRUPT_MESSAGE')
    })
  }

  it('zstd streaming: a truncated frame without a content size is CORRUPT_MESSAGE', () => {
    const packed = zstdCompress(samples[3]!, { contentSizeFlag: false })
    for (const n of [5, 20, packed.length >> 1, packed.length - 1]) expect(code(decompress('zstd', packed.subarray(0, n), 4 << 20))).toBe('CORRUPT_MESSAGE')
  })

  it('fuzz: 3,000 mutated compressed inputs never throw', () => {
    const fuzz = new Prng(99)
    const sources = codecs.flatMap((c) => [samples[2]!, samples[3]!.subarray(0, 20_000)].map((s) => [c, compress(c, s)] as const))
    for (let i = 0; i < 3_000; i++) {
      const [codec, packed] = fuzz.pick(sources)
      const b = packed.slice()
      for (let e = fuzz.range(1, 3); e > 0; e--) b[fuzz.int(b.length)] = fuzz.int(256)
      const r = decompress(codec, b, 1 << 20)
      expect(['ok', 'CORRUPT_MESSAGE', 'MESSAGE_TOO_LARGE']).toContain(code(r))
    }
  })

  it('gzip accepts concatenated members, as Java does', () => {
    const r = decompress('gzip', concat([gzipSync('ab'), gzipSync('cd')]), 10)
    expect(r.ok && Buffer.from(r.value).toString()).toBe('abcd')
  })
})

describe('compression - lz4 frame walk', () => {
  const frame = compressFrameSync(Buffer.from(samples[3]!))
  const u32 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(n >>> 0)
    return b
  }

  it('finds the exact content size without decompressing', () => {
    const r = lz4FrameContentBytes(frame, 1 << 30)
    expect(r.ok && r.value).toBe(samples[3]!.length)
  })

  it('is strict where lz4-napi is lenient: a missing end mark, a second frame', () => {
    expect(code(lz4FrameContentBytes(frame.subarray(0, frame.length - 4), 1 << 30))).toBe('CORRUPT_MESSAGE')
    expect(code(lz4FrameContentBytes(concat([frame, frame]), 1 << 30))).toBe('CORRUPT_MESSAGE')
  })

  it('counts stored blocks, checks a declared content size, and rejects dictionaries', () => {
    // FLG: version 01, independent, content size; BD: 64 KiB blocks; HC is not checked by the walk
    const stored = (declared: number, flg = 0x68) =>
      concat([u32(0x184d2204), Uint8Array.of(flg, 0x40), u32(declared), u32(0), Uint8Array.of(0), u32(0x80000003), Uint8Array.of(1, 2, 3), u32(0)])
    expect(lz4FrameContentBytes(stored(3), 100)).toEqual({ ok: true, value: 3 })
    expect(code(lz4FrameContentBytes(stored(4), 100))).toBe('CORRUPT_MESSAGE')
    expect(code(lz4FrameContentBytes(stored(3), 2))).toBe('MESSAGE_TOO_LARGE')
    expect(code(lz4FrameContentBytes(stored(3, 0x69), 100))).toBe('CORRUPT_MESSAGE')
  })

  it('rejects a block that expands past the block maximum, or reaches before its start', () => {
    const header = concat([u32(0x184d2204), Uint8Array.of(0x60, 0x40, 0x00)])
    // token: 1 literal, match of 15+255*300+4 > 64 KiB, offset 1
    const huge = concat([Uint8Array.of(0x1f, 0x41, 0x01, 0x00), new Uint8Array(300).fill(255), Uint8Array.of(0, 0x00)])
    expect(code(lz4FrameContentBytes(concat([header, u32(huge.length), huge, u32(0)]), 1 << 30))).toBe('CORRUPT_MESSAGE')
    // a match at offset 2 after 1 literal
    const early = Uint8Array.of(0x10, 0x41, 0x02, 0x00, 0x00)
    expect(code(lz4FrameContentBytes(concat([header, u32(early.length), early, u32(0)]), 1 << 30))).toBe('CORRUPT_MESSAGE')
    const fine = Uint8Array.of(0x10, 0x41, 0x01, 0x00, 0x00)
    expect(lz4FrameContentBytes(concat([header, u32(fine.length), fine, u32(0)]), 1 << 30)).toEqual({ ok: true, value: 5 })
  })
})

/** A record batch whose records section is `packed` (compressed with `codec`), CRC fresh. */
function batchOf(codec: Compression, packed: Uint8Array, count = 1): Uint8Array {
  const out = new Uint8Array(BATCH_HEADER_BYTES + packed.length)
  out.set(encodeRecordBatch([{ value: 'x', timestamp: 1 }]).subarray(0, BATCH_HEADER_BYTES))
  out.set(packed, BATCH_HEADER_BYTES)
  const dv = new DataView(out.buffer)
  dv.setInt32(8, out.length - 12)
  dv.setInt16(21, compressionCodecs[codec])
  dv.setInt32(23, count - 1)
  dv.setInt32(57, count)
  dv.setUint32(17, crc32c(out.subarray(21)))
  return out
}

describe('compression - zip bombs', () => {
  const limit = limits.produce.batchDecompressedBytesMax
  const mib = 1 << 20

  /** Rejects `batch` as BATCH_TOO_LARGE, and checks memory grew far less than the bomb's size. */
  function expectDefused(batch: Uint8Array, inflatedBytes: number): void {
    expect(checkBatch(batch).ok).toBe(true) // small, well-formed: the broker's hot path accepts it
    const before = process.memoryUsage().arrayBuffers
    const r = decodeRecordBatch(batch)
    const grown = process.memoryUsage().arrayBuffers - before
    expect(code(r)).toBe('BATCH_TOO_LARGE')
    expect(grown).toBeLessThan(Math.min(inflatedBytes, 4 * limit))
  }

  it('gzip: 1 MiB of concatenated members inflating to 1 GiB stops at the limit', () => {
    const member = gzipSync(Buffer.alloc(mib))
    const bomb = concat(new Array<Uint8Array>(1024).fill(member))
    expect(bomb.length).toBeLessThan(2 * mib)
    expectDefused(batchOf('gzip', bomb), 1024 * mib)
    expect(code(decompress('gzip', bomb, mib))).toBe('MESSAGE_TOO_LARGE')
  })

  it('lz4: a frame of 4 MiB blocks adding up to 1 GiB is refused before decompressing', () => {
    const frame = compressFrameSync(Buffer.alloc(4 * mib))
    const headerBytes = 7 // magic, FLG, BD, HC: no content size
    expect(frame[4]! & 0x08).toBe(0)
    const blocks = frame.subarray(headerBytes, frame.length - 4)
    const bomb = concat([frame.subarray(0, headerBytes), ...new Array<Uint8Array>(256).fill(blocks), frame.subarray(frame.length - 4)])
    expect(lz4FrameContentBytes(bomb, 2 ** 40)).toEqual({ ok: true, value: 1024 * mib })
    expectDefused(batchOf('lz4', bomb), 1024 * mib)
  })

  it('zstd: frames declaring 1 GiB are refused before allocating; undeclared ones stop streaming at the limit', () => {
    const declared = zstdCompress(Buffer.alloc(4 * mib))
    expectDefused(batchOf('zstd', concat(new Array<Uint8Array>(256).fill(declared))), 1024 * mib)
    const undeclared = zstdCompress(Buffer.alloc(4 * mib), { contentSizeFlag: false })
    expectDefused(batchOf('zstd', concat(new Array<Uint8Array>(256).fill(undeclared))), 1024 * mib)
  })

  it('decodeRecordBatch takes a tighter maxBytes', () => {
    const batch = encodeRecordBatch([{ value: 'v'.repeat(10_000), timestamp: 1 }], { compression: 'gzip' })
    expect(decodeRecordBatch(batch).ok).toBe(true)
    expect(code(decodeRecordBatch(batch, { maxBytes: 5_000 }))).toBe('BATCH_TOO_LARGE')
    const plain = encodeRecordBatch([{ value: 'v'.repeat(10_000), timestamp: 1 }])
    expect(code(decodeRecordBatch(plain, { maxBytes: 5_000 }))).toBe('BATCH_TOO_LARGE')
  })
})
