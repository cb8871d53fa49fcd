import { crc32c } from '@node-rs/crc32'
import { describe, expect, it } from 'vitest'
import { Prng, limits } from '../../src/base/index.js'
import type { Compression } from '../../src/protocol/compression.js'
import {
  BATCH_HEADER_BYTES,
  checkBatch,
  decodeRecordBatch,
  encodeRecordBatch,
  readBatchHeader,
  recordSizes,
  reframe,
  setBaseOffset,
  verifyBatchCrc,
  withBaseOffset,
} from '../../src/protocol/record-batch.js'
import type { DecodedRecord, RecordInput } from '../../src/protocol/record-batch.js'
import { T0, concat, forge, rawRecord, restamp } from './forge.js'

const codecs: readonly Compression[] = ['none', 'gzip', 'lz4', 'zstd']
const te = new TextEncoder()
const bytes = (s: string): Uint8Array => te.encode(s)

/** What a RecordInput should decode to, as plain comparable values. */
function expected(r: RecordInput, offset: number): DecodedRecord {
  const b = (v: Uint8Array | string | null | undefined): Uint8Array | null => (v == null ? null : typeof v === 'string' ? bytes(v) : new Uint8Array(v))
  return {
    offset,
    timestamp: r.timestamp!,
    key: b(r.key),
    value: b(r.value),
    headers: (r.headers ?? []).map((h) => ({ key: h.key, value: b(h.value) })),
  }
}

const hex = (v: Uint8Array | null): string | null => (v === null ? null : Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex'))
const hexed = (r: DecodedRecord) => ({ ...r, key: hex(r.key), value: hex(r.value), headers: r.headers.map((h) => ({ key: h.key, value: hex(h.value) })) })

function decodeOk(batch: Uint8Array): DecodedRecord[] {
  const d = decodeRecordBatch(batch)
  if (!d.ok) throw new Error(`${d.error.code}: ${d.error.message}`)
  return d.value.records
}

// A valid record: timestampDelta 0, offsetDelta i, key null, value "v", no headers.
const goodRecord = (i: number): Uint8Array => rawRecord([0, i, -1, 1, bytes('v'), 0])

describe('record-batch - round trips', () => {
  const sample: RecordInput[] = [
    { key: 'k1', value: 'hello', timestamp: T0 },
    { key: null, value: null, timestamp: T0 + 5 },
    { key: new Uint8Array([0, 1, 2, 255]), value: new Uint8Array(0), timestamp: T0 - 7, headers: [{ key: 'trace', value: 'abc' }] },
    { value: '', timestamp: T0 + 1, headers: [{ key: 'n', value: null }, { key: 'n', value: new Uint8Array([9]) }, { key: '', value: '' }] },
    { key: 'ключ 🔑', value: '日本語のテキスト ✓ 🎉', timestamp: T0 + 2, headers: [{ key: 'ヘッダ', value: 'wert ü' }] },
  ]

  for (const compression of codecs) {
    it(`${compression}: keys, values, nulls, empties, headers, unicode and timestamps survive`, () => {
      const batch = encodeRecordBatch(sample, { compression })
      expect(decodeOk(batch)).toEqual(sample.map((r, i) => expected(r, i)))
      const h = readBatchHeader(batch)
      expect(h.ok && h.value.compression).toBe(compression)
    })

    it(`${compression}: 10,000 random records`, () => {
      const prng = new Prng(0xc0ffee)
      const records: RecordInput[] = Array.from({ length: 10_000 }, (_, i) => ({
        key: prng.chance(0.2) ? null : `key-${prng.int(1000)}`,
        value: prng.chance(0.1) ? null : Uint8Array.from({ length: prng.int(200) }, () => prng.int(256)),
        timestamp: T0 + i * 3 - prng.int(1000),
        headers: prng.chance(0.3) ? [{ key: `h${prng.int(10)}`, value: prng.chance(0.5) ? null : 'hv' }] : [],
      }))
      const batch = encodeRecordBatch(records, { compression })
      expect(checkBatch(batch).ok).toBe(true)
      // compared as hex: deep equality over 10,000 typed arrays is slow
      expect(decodeOk(batch).map(hexed)).toEqual(records.map((r, i) => hexed(expected(r, i))))
    })
  }

  it('uses the first record timestamp as baseTimestamp and the largest as maxTimestamp; deltas may be negative', () => {
    const batch = encodeRecordBatch([
      { value: 'a', timestamp: T0 },
      { value: 'b', timestamp: T0 - 100_000 },
      { value: 'c', timestamp: T0 + 5 },
    ])
    const h = readBatchHeader(batch)
    expect(h.ok).toBe(true)
    if (!h.ok) return
    expect([h.value.baseTimestamp, h.value.maxTimestamp]).toEqual([T0, T0 + 5])
    expect(decodeOk(batch).map((r) => r.timestamp)).toEqual([T0, T0 - 100_000, T0 + 5])
  })

  it('writes the defaults: baseOffset 0, epoch -1, no producer, CreateTime, the clock for missing timestamps', () => {
    const before = Date.now()
    const batch = encodeRecordBatch([{ value: 'a' }, { value: 'b' }])
    const after = Date.now()
    const h = readBatchHeader(batch)
    expect(h.ok).toBe(true)
    if (!h.ok) return
    expect(h.value).toMatchObject({
      baseOffset: 0, partitionLeaderEpoch: -1, magic: 2, attributes: 0, compression: 'none', lastOffsetDelta: 1,
      producerId: -1, producerEpoch: -1, baseSequence: -1, recordCount: 2, transactional: false, control: false,
      batchLength: batch.length - 12,
    })
    expect(h.value.baseTimestamp).toBeGreaterThanOrEqual(before)
    expect(h.value.baseTimestamp).toBeLessThanOrEqual(after)
    expect(decodeOk(batch).map((r) => r.timestamp)).toEqual([h.value.baseTimestamp, h.value.baseTimestamp])
  })

  it('carries producer fields and an explicit baseTimestamp', () => {
    const opts = { compression: 'zstd' as const, producerId: 2 ** 40 + 3, producerEpoch: 32767, baseSequence: 2 ** 31 - 1, baseTimestamp: T0 - 10 }
    const h = readBatchHeader(encodeRecordBatch([{ value: 'v', timestamp: T0 }], opts))
    expect(h.ok && h.value).toMatchObject({ producerId: 2 ** 40 + 3, producerEpoch: 32767, baseSequence: 2 ** 31 - 1, baseTimestamp: T0 - 10, maxTimestamp: T0, attributes: 4 })
  })

  it('is exact-size and its views decode from a batch at a non-zero byteOffset', () => {
    const batch = encodeRecordBatch([{ key: 'k', value: 'v', timestamp: T0 }])
    const arena = new Uint8Array(batch.length + 13)
    arena.set(batch, 7)
    const view = arena.subarray(7, 7 + batch.length)
    expect(checkBatch(view).ok).toBe(true)
    expect(decodeOk(view)).toEqual([expected({ key: 'k', value: 'v', timestamp: T0 }, 0)])
    expect(batch.byteLength).toBe(batch.buffer.byteLength)
  })

  it('refuses bad arguments as bugs: no records, snappy, a bad epoch', () => {
    expect(() => encodeRecordBatch([])).toThrow(/0 records/)
    expect(() => encodeRecordBatch([{ value: 'v' }], { compression: 'snappy' })).toThrow(/snappy/)
    expect(() => encodeRecordBatch([{ value: 'v' }], { producerEpoch: 40000 })).toThrow(/producerEpoch/)
    expect(() => encodeRecordBatch([{ value: 'v', timestamp: 1.5 }])).toThrow(/safe integer/)
  })
})

describe('record-batch - CRC-32C', () => {
  it('is Castagnoli: the check value of "123456789" is e3069283', () => {
    expect(crc32c(bytes('123456789')).toString(16)).toBe('e3069283')
  })

  it('covers attributes to the end, and nothing before', () => {
    const batch = encodeRecordBatch([{ value: 'v', timestamp: T0 }])
    const dv = new DataView(batch.buffer, batch.byteOffset)
    expect(dv.getUint32(17)).toBe(crc32c(batch.subarray(21)))
    expect(verifyBatchCrc(batch)).toBe(true)
    dv.setInt32(12, 77) // partitionLeaderEpoch
    expect(verifyBatchCrc(batch)).toBe(true)
    expect(verifyBatchCrc(batch.subarray(0, 60))).toBe(false)
  })
})

describe('record-batch - baseOffset', () => {
  it('setBaseOffset writes in place and leaves the CRC valid', () => {
    const batch = encodeRecordBatch([{ value: 'a', timestamp: T0 }, { value: 'b', timestamp: T0 }], { compression: 'gzip' })
    const crc = batch.slice(17, 21)
    for (const offset of [1, 12_345, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER - 1]) {
      setBaseOffset(batch, offset)
      expect(batch.slice(17, 21)).toEqual(crc)
      const c = checkBatch(batch)
      expect(c.ok && c.value.baseOffset).toBe(offset)
      expect(decodeOk(batch).map((r) => r.offset)).toEqual([offset, offset + 1])
    }
    expect(() => setBaseOffset(batch, -1)).toThrow()
  })

  it('withBaseOffset copies', () => {
    const batch = encodeRecordBatch([{ value: 'a', timestamp: T0 }])
    const moved = withBaseOffset(batch, 42)
    expect(moved).not.toBe(batch)
    expect(readBatchHeader(batch).ok && (readBatchHeader(batch) as { value: { baseOffset: number } }).value.baseOffset).toBe(0)
    expect(decodeOk(moved)[0]!.offset).toBe(42)
    expect(moved.subarray(8)).toEqual(batch.subarray(8))
  })
})

describe('record-batch - header validation', () => {
  const batch = encodeRecordBatch([{ value: 'a', timestamp: T0 }, { value: 'b', timestamp: T0 }])
  const code = (b: Uint8Array) => {
    const r = readBatchHeader(b)
    return r.ok ? 'ok' : r.error.code
  }
  const patched = (f: (dv: DataView) => void, stamp = true): Uint8Array => {
    const b = batch.slice()
    f(new DataView(b.buffer))
    if (stamp) restamp(b)
    return b
  }

  it('reads a well-formed header', () => {
    expect(code(batch)).toBe('ok')
  })

  it('rejects short, truncated and multi-batch input', () => {
    expect(code(batch.subarray(0, 60))).toBe('CORRUPT_MESSAGE')
    expect(code(batch.subarray(0, batch.length - 1))).toBe('CORRUPT_MESSAGE')
    expect(code(concat(batch, batch))).toBe('INVALID_RECORD')
    expect(code(concat(batch, new Uint8Array(1)))).toBe('INVALID_RECORD')
    expect(code(patched((dv) => dv.setInt32(8, -5)))).toBe('CORRUPT_MESSAGE')
    expect(code(patched((dv) => dv.setInt32(8, 40)))).toBe('CORRUPT_MESSAGE')
  })

  it('rejects magic other than 2, unknown codecs and unsafe int64 fields', () => {
    expect(code(patched((dv) => dv.setInt8(16, 1)))).toBe('INVALID_RECORD')
    for (const c of [5, 6, 7]) expect(code(patched((dv) => dv.setInt16(21, c)))).toBe('INVALID_RECORD')
    expect(code(patched((dv) => dv.setBigInt64(0, 2n ** 60n)))).toBe('INVALID_RECORD')
    expect(code(patched((dv) => dv.setBigInt64(43, -(2n ** 53n))))).toBe('INVALID_RECORD')
    expect(code(patched((dv) => dv.setBigInt64(43, -(2n ** 53n) + 1n)))).toBe('ok')
  })

  it('rejects record counts of 0, too many, and a lastOffsetDelta that does not match', () => {
    expect(code(patched((dv) => (dv.setInt32(57, 0), dv.setInt32(23, -1))))).toBe('INVALID_RECORD')
    const many = limits.produce.batchRecordsMax + 1
    expect(code(patched((dv) => (dv.setInt32(57, many), dv.setInt32(23, many - 1))))).toBe('INVALID_RECORD')
    expect(code(patched((dv) => dv.setInt32(23, 5)))).toBe('INVALID_RECORD')
  })

  it('reports snappy, transactional and control batches without rejecting them', () => {
    const h = readBatchHeader(patched((dv) => dv.setInt16(21, 2 | 0x10 | 0x20)))
    expect(h.ok && h.value).toMatchObject({ compression: 'snappy', transactional: true, control: true })
  })

  it('does not check the CRC; checkBatch does, and the size limit', () => {
    const broken = patched((dv) => dv.setUint32(17, 0), false)
    expect(code(broken)).toBe('ok')
    const c = checkBatch(broken)
    expect(!c.ok && c.error.code).toBe('CORRUPT_MESSAGE')
    const big = checkBatch(batch, { batchBytesMax: batch.length - 1 })
    expect(!big.ok && big.error.code).toBe('BATCH_TOO_LARGE')
    expect(checkBatch(batch, { batchBytesMax: batch.length }).ok).toBe(true)
  })

  it('checkBatch checks the CRC before the fields it covers: damage reads as CORRUPT_MESSAGE', () => {
    const damaged = patched((dv) => dv.setInt32(57, 9), false)
    const c = checkBatch(damaged)
    expect(!c.ok && c.error.code).toBe('CORRUPT_MESSAGE')
    expect(code(damaged)).toBe('INVALID_RECORD')
  })
})

describe('record-batch - malformed records', () => {
  const code = (b: Uint8Array) => {
    const r = decodeRecordBatch(b)
    return r.ok ? 'ok' : r.error.code
  }

  it('accepts the forged baseline', () => {
    expect(code(forge(concat(goodRecord(0), goodRecord(1)), 2))).toBe('ok')
  })

  it('rejects record count mismatches', () => {
    expect(code(forge(concat(goodRecord(0), goodRecord(1)), 3))).toBe('CORRUPT_MESSAGE')
    expect(code(forge(concat(goodRecord(0), goodRecord(1)), 1))).toBe('CORRUPT_MESSAGE')
  })

  it('rejects truncated and overlong varints', () => {
    // a record length of 0x80 with nothing after it
    expect(code(forge(concat(goodRecord(0), Uint8Array.of(0x80)), 2))).toBe('CORRUPT_MESSAGE')
    // timestampDelta varlong of 11 bytes
    const overlong = new Uint8Array(11).fill(0x80)
    overlong[10] = 0
    expect(code(forge(rawRecord([overlong, 0, -1, -1, 0]), 1))).toBe('CORRUPT_MESSAGE')
    // offsetDelta varint of 6 bytes
    expect(code(forge(rawRecord([0, Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0), -1, -1, 0]), 1))).toBe('CORRUPT_MESSAGE')
    // a 5-byte varint past 32 bits
    expect(code(forge(rawRecord([0, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f), -1, -1, 0]), 1))).toBe('CORRUPT_MESSAGE')
  })

  it('accepts non-minimal varints, as Kafka does', () => {
    expect(code(forge(rawRecord([0, Uint8Array.of(0x80, 0x00), -1, -1, 0]), 1))).toBe('ok')
  })

  it('rejects negative lengths other than -1, lengths past the record, and header keys that are null', () => {
    expect(code(forge(rawRecord([0, 0, -2, -1, 0]), 1))).toBe('CORRUPT_MESSAGE')
    expect(code(forge(rawRecord([0, 0, -1, -3, 0]), 1))).toBe('CORRUPT_MESSAGE')
    expect(code(forge(rawRecord([0, 0, -1, 50, bytes('short'), 0]), 1))).toBe('CORRUPT_MESSAGE')
    expect(code(forge(rawRecord([0, 0, -1, -1, -1]), 1))).toBe('CORRUPT_MESSAGE')
    expect(code(forge(rawRecord([0, 0, -1, -1, 1, -1, -1]), 1))).toBe('CORRUPT_MESSAGE')
    expect(code(forge(rawRecord([0, 0, -1, -1, 1, 1, bytes('h'), -1]), 1))).toBe('ok')
    expect(code(forge(rawRecord([0, 0, -1, -1, 1, 1, bytes('h'), -2]), 1))).toBe('CORRUPT_MESSAGE')
  })

  it('rejects a record whose fields do not fill its declared length, or overflow it', () => {
    expect(code(forge(rawRecord([0, 0, -1, -1, 0, bytes('xx')]), 1))).toBe('CORRUPT_MESSAGE')
    expect(code(forge(rawRecord([0, 0, -1, 1, bytes('v'), 0], -1), 1))).toBe('CORRUPT_MESSAGE')
    expect(code(forge(rawRecord([0, 0, -1, 1, bytes('v'), 0], +1), 1))).toBe('CORRUPT_MESSAGE')
  })

  it('rejects a huge header count without looping over it', () => {
    expect(code(forge(rawRecord([0, 0, -1, -1, 2 ** 31 - 1]), 1))).toBe('CORRUPT_MESSAGE')
  })

  it('rejects offsetDeltas that are not dense as INVALID_RECORD', () => {
    expect(code(forge(concat(goodRecord(0), goodRecord(2)), 2))).toBe('INVALID_RECORD')
  })

  it('reads LogAppendTime batches with maxTimestamp as every record timestamp', () => {
    const b = forge(concat(goodRecord(0), goodRecord(1)), 2, (_, dv) => (dv.setInt16(21, 0x08), dv.setBigInt64(35, BigInt(T0 + 99))))
    const d = decodeRecordBatch(b)
    expect(d.ok && d.value.records.map((r) => r.timestamp)).toEqual([T0 + 99, T0 + 99])
  })

  it('answers UNSUPPORTED_COMPRESSION for snappy records', () => {
    const b = forge(goodRecord(0), 1, (_, dv) => dv.setInt16(21, 2))
    expect(code(b)).toBe('UNSUPPORTED_COMPRESSION')
  })

  it('answers CORRUPT_MESSAGE for records that do not decompress', () => {
    for (const codec of [1, 3, 4]) expect(code(forge(goodRecord(0), 1, (_, dv) => dv.setInt16(21, codec)))).toBe('CORRUPT_MESSAGE')
  })
})

describe('record-batch - corruption', () => {
  const small = encodeRecordBatch(
    [
      { key: 'k', value: 'value one', timestamp: T0, headers: [{ key: 'h', value: 'x' }] },
      { key: null, value: 'two', timestamp: T0 + 1 },
    ],
    { producerId: 7, producerEpoch: 1, baseSequence: 10 },
  )

  for (const compression of ['none', 'gzip'] as const) {
    it(`${compression}: every bit flip and byte inversion from magic on is caught by checkBatch`, () => {
      const batch = compression === 'none' ? small : encodeRecordBatch([{ key: 'k', value: 'value one', timestamp: T0 }], { compression })
      let flips = 0
      for (let i = 0; i < batch.length; i++) {
        for (const mask of [1, 2, 4, 8, 16, 32, 64, 128, 0xff]) {
          const b = batch.slice()
          b[i]! ^= mask
          const c = checkBatch(b)
          if (i >= 16 || (i >= 8 && i < 12)) {
            expect(c.ok, `byte ${i} ^ ${mask}`).toBe(false)
            flips++
          } else if (i >= 12) {
            expect(c.ok, `partitionLeaderEpoch byte ${i}`).toBe(true) // outside the CRC by design
          } else {
            // baseOffset: outside the CRC; accepted unless it leaves the safe-integer range
            expect(c.ok || c.error.code === 'INVALID_RECORD').toBe(true)
          }
        }
      }
      expect(flips).toBeGreaterThan(9 * (batch.length - 20))
    })
  }

  it('rejects every truncation with CORRUPT_MESSAGE, through every entry point', () => {
    for (let n = 0; n < small.length; n++) {
      const b = small.subarray(0, n)
      for (const r of [readBatchHeader(b), checkBatch(b), decodeRecordBatch(b), recordSizes(b)]) {
        expect(!r.ok && r.error.code, `length ${n}`).toBe('CORRUPT_MESSAGE')
      }
    }
  })

  it('fuzz: 5,000 seeded mutations never throw, and what decodes is consistent', () => {
    const prng = new Prng(20240601)
    const bases = codecs.map((compression) =>
      encodeRecordBatch(
        Array.from({ length: 6 }, (_, i) => ({ key: i % 2 ? null : `k${i}`, value: 'v'.repeat(i * 7), timestamp: T0 + i, headers: [{ key: 'h', value: i % 3 ? null : 'hv' }] })),
        { compression },
      ),
    )
    const allowed = ['CORRUPT_MESSAGE', 'INVALID_RECORD', 'UNSUPPORTED_COMPRESSION', 'BATCH_TOO_LARGE']
    const outcomes = new Map<string, number>()
    for (let iter = 0; iter < 5_000; iter++) {
      const b = mutate(prng, prng.pick(bases))
      // mostly keep the framing and CRC consistent, so the record parser and decompressors see the damage
      if (prng.chance(0.8) && b.length >= BATCH_HEADER_BYTES) {
        if (prng.chance(0.9)) new DataView(b.buffer, b.byteOffset).setInt32(8, b.length - 12)
        restamp(b)
      }
      const d = decodeRecordBatch(b)
      const key = d.ok ? 'ok' : d.error.code
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
      if (d.ok) expect(d.value.records.length).toBe(d.value.header.recordCount)
      else expect(allowed).toContain(d.error.code)
      const s = recordSizes(b)
      expect(s.ok).toBe(d.ok)
      const h = readBatchHeader(b)
      if (d.ok) expect(h.ok).toBe(true)
      checkBatch(b)
    }
    // the fuzzer reaches both the parser's acceptance and its rejections
    expect(outcomes.get('CORRUPT_MESSAGE')).toBeGreaterThan(500)
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(0)
  })
})

function mutate(prng: Prng, src: Uint8Array): Uint8Array {
  let b: Uint8Array = src.slice()
  const edits = prng.range(1, 4)
  for (let e = 0; e < edits; e++) {
    // bias edits towards the records section, where the parser lives
    const at = b.length > BATCH_HEADER_BYTES && prng.chance(0.8) ? prng.range(BATCH_HEADER_BYTES, b.length - 1) : prng.int(Math.max(b.length, 1))
    switch (prng.int(6)) {
      case 0:
        b[at] = prng.int(256)
        break
      case 1:
        b[at]! ^= 1 << prng.int(8)
        break
      case 2:
        b[at] = prng.pick([0x00, 0x7f, 0x80, 0xff, 0x01, 0xfe])
        break
      case 3:
        b = concat(b.subarray(0, at), Uint8Array.of(prng.int(256)), b.subarray(at))
        break
      case 4:
        b = concat(b.subarray(0, at), b.subarray(at + 1))
        break
      case 5:
        b = b.slice(0, prng.int(b.length + 1))
        break
    }
  }
  return b
}

describe('record-batch - recordSizes and reframe', () => {
  const records: RecordInput[] = [
    { key: 'a', value: 'x'.repeat(10), timestamp: T0 },
    { key: null, value: 'y'.repeat(2000), timestamp: T0 + 4, headers: [{ key: 'h1', value: 'v1' }] },
    { key: 'c', value: null, timestamp: T0 - 2 },
    { key: 'd', value: 'z'.repeat(300), timestamp: T0 + 9, headers: [{ key: 'h2', value: null }] },
    { key: 'e', value: 'w', timestamp: T0 + 1 },
  ]

  it('recordSizes gives each record length field: payload plus a few bytes of framing', () => {
    for (const compression of codecs) {
      const s = recordSizes(encodeRecordBatch(records, { compression }))
      expect(s.ok).toBe(true)
      if (!s.ok) continue
      const payloads = [11, 2004, 1, 302, 2]
      s.value.forEach((size, i) => {
        expect(size).toBeGreaterThan(payloads[i]!)
        expect(size).toBeLessThan(payloads[i]! + 12)
      })
      // the record's length field plus its own varint add up to the records section
      expect(s.value).toEqual(recordSizes(encodeRecordBatch(records)).ok && (recordSizes(encodeRecordBatch(records)) as { value: number[] }).value)
    }
    const one = recordSizes(encodeRecordBatch([{ value: null, timestamp: T0 }]))
    expect(one.ok && one.value).toEqual([6]) // attributes, timestampDelta, offsetDelta, key -1, value -1, 0 headers
  })

  for (const compression of codecs) {
    it(`${compression}: reframe keeps the chosen records, the producer fields and a valid CRC`, () => {
      const opts = { compression, producerId: 99, producerEpoch: 3, baseSequence: 40 }
      const batch = encodeRecordBatch(records, opts)
      const r = reframe(batch, [0, 2, 4])
      expect(r.ok).toBe(true)
      if (!r.ok) return
      const c = checkBatch(r.value)
      expect(c.ok).toBe(true)
      if (!c.ok) return
      expect(c.value).toMatchObject({ compression, producerId: 99, producerEpoch: 3, baseSequence: 40, recordCount: 3, baseTimestamp: T0, maxTimestamp: T0 + 1 })
      expect(decodeOk(r.value)).toEqual([0, 2, 4].map((k, i) => expected(records[k]!, i)))
    })
  }

  it('reframe keeps baseOffset, partitionLeaderEpoch and the transactional bit; refuses control batches', () => {
    const batch = withBaseOffset(encodeRecordBatch(records), 500)
    const dv = new DataView(batch.buffer)
    dv.setInt32(12, 6)
    dv.setInt16(21, 0x10)
    restamp(batch)
    const r = reframe(batch, [1])
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(readBatchHeader(r.value).ok && (readBatchHeader(r.value) as { value: object }).value).toMatchObject({ baseOffset: 500, partitionLeaderEpoch: 6, transactional: true })
    dv.setInt16(21, 0x20)
    restamp(batch)
    const control = reframe(batch, [1])
    expect(!control.ok && control.error.code).toBe('INVALID_RECORD')
  })

  it('reframe passes on the source batch error, and treats bad positions as bugs', () => {
    const batch = encodeRecordBatch(records)
    const broken = batch.slice()
    broken[70]! ^= 1
    const r = reframe(broken, [0])
    expect(!r.ok && r.error.code).toBe('CORRUPT_MESSAGE')
    expect(() => reframe(batch, [])).toThrow()
    expect(() => reframe(batch, [2, 1])).toThrow()
    expect(() => reframe(batch, [5])).toThrow()
  })
})
