/**
 * decodeMessagesInto, the consumer's decoder: records straight into message objects,
 * skipping what lies below the asked offset and stopping at the asked count. It must
 * agree with decodeRecordBatch on everything it returns, and on what it rejects when
 * asked for a whole batch.
 */
import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import type { Compression } from '../../src/protocol/compression.js'
import {
  BATCH_HEADER_BYTES,
  NO_HEADERS,
  decodeMessagesInto,
  decodeRecordBatch,
  encodeRecordBatch,
  setBaseOffset,
} from '../../src/protocol/record-batch.js'
import type { DecodedRecord, RecordInput, RecordMessage } from '../../src/protocol/record-batch.js'
import { T0, concat, forge, rawRecord, restamp } from './forge.js'

const codecs: readonly Compression[] = ['none', 'gzip', 'lz4', 'zstd']
const te = new TextEncoder()

const hex = (v: Uint8Array | null): string | null => (v === null ? null : Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex'))

/** A message as comparable plain values; header order kept, as decodeRecordBatch gives it. */
const plainMessage = (m: RecordMessage) => ({
  offset: m.offset,
  timestamp: m.timestamp,
  key: hex(m.key),
  value: hex(m.value),
  headers: Object.entries(m.headers).map(([k, v]) => [k, hex(v)]),
})

/** What decodeRecordBatch's record becomes as a message: headers as an object, a repeated key keeping its last value. */
const plainRecord = (r: DecodedRecord) => {
  const headers = new Map<string, string | null>()
  for (const h of r.headers) headers.set(h.key, hex(h.value))
  return { offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: [...headers] }
}

function messagesOf(batch: Uint8Array, from = 0, max = Infinity): RecordMessage[] {
  const out: RecordMessage[] = []
  const r = decodeMessagesInto(batch, from, max, out)
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  expect(r.value).toBe(out.length)
  return out
}

function recordsOf(batch: Uint8Array): DecodedRecord[] {
  const d = decodeRecordBatch(batch)
  if (!d.ok) throw new Error(`${d.error.code}: ${d.error.message}`)
  return d.value.records
}

const codeOf = (batch: Uint8Array, from = 0, max = Infinity): string => {
  const r = decodeMessagesInto(batch, from, max, [])
  return r.ok ? 'ok' : r.error.code
}

/** timestampDelta 0, offsetDelta i, key null, value "v<i>", no headers. */
const goodRecord = (i: number): Uint8Array => rawRecord([0, i, -1, 2, te.encode(`v${i}`), 0])

/** An uncompressed batch whose records section is `records`, at `baseOffset`, with a fresh CRC. */
const forgeAt = (records: Uint8Array, count: number, baseOffset = 0): Uint8Array => forge(records, count, (b) => setBaseOffset(b, baseOffset))

const sample: RecordInput[] = [
  { key: 'k1', value: 'hello', timestamp: T0 },
  { key: null, value: null, timestamp: T0 + 5 },
  { key: new Uint8Array([0, 1, 2, 255]), value: new Uint8Array(0), timestamp: T0 - 7, headers: [{ key: 'trace', value: 'abc' }] },
  { value: '', timestamp: T0 + 1, headers: [{ key: 'n', value: null }, { key: 'n', value: new Uint8Array([9]) }, { key: '', value: '' }] },
  { key: 'ключ 🔑', value: '日本語のテキスト ✓ 🎉', timestamp: T0 + 2, headers: [{ key: 'ヘッダ', value: 'wert ü' }] },
  { key: 'last', value: 'x'.repeat(300), timestamp: T0 + 100_000 },
]

describe('decodeMessagesInto - whole batches', () => {
  for (const compression of codecs) {
    it(`${compression}: gives what decodeRecordBatch gives, as messages`, () => {
      const batch = encodeRecordBatch(sample, { compression })
      setBaseOffset(batch, 1_000)
      const messages = messagesOf(batch)
      expect(messages.map(plainMessage)).toEqual(recordsOf(batch).map(plainRecord))
      expect(messages.map((m) => m.offset)).toEqual([1_000, 1_001, 1_002, 1_003, 1_004, 1_005])
      expect(hex(messages[0]!.value)).toBe(Buffer.from('hello').toString('hex'))
    })
  }

  it('records without headers share one frozen empty object; records with headers get their own', () => {
    const messages = messagesOf(encodeRecordBatch(sample))
    expect(messages[0]!.headers).toBe(NO_HEADERS)
    expect(messages[1]!.headers).toBe(NO_HEADERS)
    expect(Object.isFrozen(NO_HEADERS)).toBe(true)
    expect(Object.keys(NO_HEADERS)).toEqual([])
    expect(messages[2]!.headers).not.toBe(NO_HEADERS)
    expect(hex(messages[2]!.headers['trace']!)).toBe(Buffer.from('abc').toString('hex'))
    // a repeated key keeps its last value; a null value and an empty key are kept
    expect(Object.keys(messages[3]!.headers)).toEqual(['n', ''])
    expect(messages[3]!.headers['n']).toEqual(new Uint8Array([9]))
    expect(messages[4]!.headers['ヘッダ']).toEqual(te.encode('wert ü'))
  })

  it('a header named __proto__ is a header, not a prototype', () => {
    const [m] = messagesOf(encodeRecordBatch([{ value: 'v', timestamp: T0, headers: [{ key: '__proto__', value: 'p' }, { key: 'a', value: null }] }]))
    expect(Object.getPrototypeOf(m!.headers)).toBe(Object.prototype)
    expect(Object.keys(m!.headers)).toEqual(['__proto__', 'a'])
    expect(Object.getOwnPropertyDescriptor(m!.headers, '__proto__')!.value).toEqual(te.encode('p'))
  })

  it('keys and values are plain Uint8Array views into an uncompressed batch, even when it is a Buffer', () => {
    const encoded = encodeRecordBatch(sample)
    const arena = Buffer.alloc(encoded.length + 20)
    arena.set(encoded, 11)
    const batch = arena.subarray(11, 11 + encoded.length)
    for (const m of messagesOf(batch)) {
      for (const v of [m.key, m.value]) {
        if (v === null) continue
        expect(Object.getPrototypeOf(v)).toBe(Uint8Array.prototype)
        expect(v.buffer).toBe(arena.buffer)
      }
    }
    const first = messagesOf(batch)[0]!
    arena[first.value!.byteOffset - arena.byteOffset] = 'j'.charCodeAt(0) // not a copy: the batch shows through
    expect(Buffer.from(first.value!).toString()).toBe('jello')
  })

  it('appends after what `out` already holds and answers how many it added', () => {
    const out: RecordMessage[] = []
    const a = encodeRecordBatch([{ value: 'a', timestamp: T0 }, { value: 'b', timestamp: T0 }])
    const b = encodeRecordBatch([{ value: 'c', timestamp: T0 }])
    setBaseOffset(b, 2)
    expect(decodeMessagesInto(a, 0, Infinity, out)).toEqual({ ok: true, value: 2 })
    expect(decodeMessagesInto(b, 0, Infinity, out)).toEqual({ ok: true, value: 1 })
    expect(out.map((m) => [m.offset, Buffer.from(m.value!).toString()])).toEqual([[0, 'a'], [1, 'b'], [2, 'c']])
  })

  it('LogAppendTime batches give every record the batch maxTimestamp', () => {
    const batch = encodeRecordBatch([{ value: 'a', timestamp: T0 }, { value: 'b', timestamp: T0 + 9 }])
    const dv = new DataView(batch.buffer, batch.byteOffset)
    dv.setInt16(21, dv.getInt16(21) | 0x08)
    dv.setBigInt64(35, BigInt(T0 + 500))
    restamp(batch)
    expect(messagesOf(batch).map((m) => m.timestamp)).toEqual([T0 + 500, T0 + 500])
    expect(recordsOf(batch).map((r) => r.timestamp)).toEqual([T0 + 500, T0 + 500])
  })

  it('a timestamp past the safe-integer range is INVALID_RECORD, as in decodeRecordBatch', () => {
    const batch = encodeRecordBatch([{ value: 'a', timestamp: T0 }, { value: 'b', timestamp: T0 + 10 }])
    new DataView(batch.buffer, batch.byteOffset).setBigInt64(27, BigInt(Number.MAX_SAFE_INTEGER - 5))
    restamp(batch)
    expect(codeOf(batch)).toBe('INVALID_RECORD')
    expect(codeOf(batch, 0, 1)).toBe('ok') // the first record's own timestamp is fine
    const d = decodeRecordBatch(batch)
    expect(!d.ok && d.error.code).toBe('INVALID_RECORD')
  })

  it('treats a bad offset or count as a bug', () => {
    const batch = encodeRecordBatch([{ value: 'a', timestamp: T0 }])
    expect(() => decodeMessagesInto(batch, -1, 1, [])).toThrow()
    expect(() => decodeMessagesInto(batch, 0.5, 1, [])).toThrow()
    expect(() => decodeMessagesInto(batch, 0, -1, [])).toThrow()
    expect(() => decodeMessagesInto(batch, 0, NaN, [])).toThrow()
  })
})

describe('decodeMessagesInto - from an offset, up to a count', () => {
  const records: RecordInput[] = Array.from({ length: 50 }, (_, i) => ({
    key: i % 3 === 0 ? null : `k${i}`,
    value: `value ${i} `.repeat(i % 7),
    timestamp: T0 + i * 1_000,
    headers: i % 5 === 0 ? [{ key: 'h', value: `${i}` }] : [],
  }))

  for (const compression of codecs) {
    it(`${compression}: skips the records below the offset and stops at the count, mid-batch`, () => {
      const batch = encodeRecordBatch(records, { compression })
      setBaseOffset(batch, 700)
      const all = recordsOf(batch).map(plainRecord)
      expect(messagesOf(batch, 720).map(plainMessage)).toEqual(all.slice(20))
      expect(messagesOf(batch, 720, 7).map(plainMessage)).toEqual(all.slice(20, 27))
      expect(messagesOf(batch, 0, 3).map(plainMessage)).toEqual(all.slice(0, 3))
      expect(messagesOf(batch, 749).map(plainMessage)).toEqual(all.slice(49))
      expect(messagesOf(batch, 749, 1).map((m) => m.offset)).toEqual([749])
      expect(messagesOf(batch, 750)).toEqual([])
      expect(messagesOf(batch, 10_000)).toEqual([])
      expect(messagesOf(batch, 720, 0)).toEqual([])
    })
  }

  it('steps over the records below the offset without parsing their fields', () => {
    // record 1 has offsetDelta 7: decoded it is INVALID_RECORD; skipped, only its length counts
    const batch = forgeAt(concat(goodRecord(0), rawRecord([0, 7, -1, 2, te.encode('v1'), 0]), goodRecord(2), goodRecord(3)), 4, 100)
    expect(codeOf(batch)).toBe('INVALID_RECORD')
    expect(codeOf(batch, 101)).toBe('INVALID_RECORD')
    expect(messagesOf(batch, 102).map((m) => [m.offset, Buffer.from(m.value!).toString()])).toEqual([[102, 'v2'], [103, 'v3']])
  })

  it('a skipped record whose length does not fit, or cannot hold a record, is still CORRUPT_MESSAGE', () => {
    const overlong = rawRecord([0, 1, -1, 2, te.encode('v1'), 0])
    overlong[0] = 0x7e // length 63: past the end of the section
    expect(codeOf(forgeAt(concat(goodRecord(0), overlong), 2), 1)).toBe('CORRUPT_MESSAGE')
    // record 0 declares 1 byte; stepping over just that would land on a valid record 1
    const record1 = rawRecord([0, 1, -1, 6, te.encode('value1'), 0])
    const tiny = forgeAt(concat(Uint8Array.of(2, 0), record1), 2)
    expect(codeOf(tiny, 1)).toBe('CORRUPT_MESSAGE')
    expect(codeOf(forgeAt(concat(goodRecord(0), record1), 2), 1)).toBe('ok')
  })

  it('does not read past the count: damage after it goes unnoticed, damage before it does not', () => {
    // record 3 loses its last byte (its header count): its declared length runs into record 4
    const broken = goodRecord(3).subarray(0, goodRecord(3).length - 1)
    const batch = forgeAt(concat(goodRecord(0), goodRecord(1), goodRecord(2), broken, goodRecord(4)), 5)
    expect(codeOf(batch)).toBe('CORRUPT_MESSAGE')
    expect(messagesOf(batch, 0, 3).map((m) => m.offset)).toEqual([0, 1, 2])
    expect(codeOf(batch, 0, 4)).toBe('CORRUPT_MESSAGE')
    expect(codeOf(batch, 2, 2)).toBe('CORRUPT_MESSAGE')
  })

  it('a batch with nothing wanted is not decompressed, but its CRC is still checked', () => {
    const batch = encodeRecordBatch(records.slice(0, 5), { compression: 'gzip' })
    batch[BATCH_HEADER_BYTES + 12]! ^= 0xff // damage the gzip stream ...
    restamp(batch) // ... behind a valid CRC
    expect(codeOf(batch)).toBe('CORRUPT_MESSAGE')
    expect(codeOf(batch, 5)).toBe('ok')
    expect(codeOf(batch, 0, 0)).toBe('ok')
    batch[30]! ^= 1 // now the CRC fails
    expect(codeOf(batch, 5)).toBe('CORRUPT_MESSAGE')
  })
})

describe('decodeMessagesInto - corrupt batches', () => {
  it('a record corrupt mid-record is CORRUPT_MESSAGE and leaves `out` as it was', () => {
    const cut = goodRecord(2)
    cut[0] = cut[0]! - 2 // the declared length ends inside the value
    const batch = forgeAt(concat(goodRecord(0), goodRecord(1), cut, new Uint8Array(2), goodRecord(3)), 4)
    const out: RecordMessage[] = messagesOf(encodeRecordBatch([{ value: 'kept', timestamp: T0 }]))
    const r = decodeMessagesInto(batch, 0, Infinity, out)
    expect(!r.ok && r.error.code).toBe('CORRUPT_MESSAGE')
    expect(!r.ok && r.error.message).toMatch(/record 2/)
    expect(out.map((m) => Buffer.from(m.value!).toString())).toEqual(['kept'])
  })

  it('a bit flipped in transit is CORRUPT_MESSAGE (the CRC), whichever records are asked for', () => {
    for (const compression of codecs) {
      const batch = encodeRecordBatch(sample, { compression })
      for (const at of [21, 40, BATCH_HEADER_BYTES, batch.length - 1]) {
        const b = batch.slice()
        b[at]! ^= 0x10
        for (const [from, max] of [[0, Infinity], [3, 1], [6, 1]] as const) expect(codeOf(b, from, max), `${compression} byte ${at}`).toBe('CORRUPT_MESSAGE')
      }
    }
  })

  it('records that do not fill the section, or bytes after them, are CORRUPT_MESSAGE when read to the end', () => {
    expect(codeOf(forgeAt(concat(goodRecord(0), goodRecord(1)), 3))).toBe('CORRUPT_MESSAGE')
    const trailing = forgeAt(concat(goodRecord(0), goodRecord(1), new Uint8Array(7)), 2)
    expect(codeOf(trailing)).toBe('CORRUPT_MESSAGE')
    expect(codeOf(trailing, 0, 1)).toBe('ok') // not read that far
  })

  it('truncations are CORRUPT_MESSAGE, never a throw', () => {
    const batch = encodeRecordBatch(sample)
    for (let n = 0; n < batch.length; n++) expect(codeOf(batch.subarray(0, n)), `length ${n}`).toBe('CORRUPT_MESSAGE')
  })

  it('fuzz: agrees with decodeRecordBatch on whole batches, and with its records on any slice', () => {
    const prng = new Prng(0x5eed)
    const bases = codecs.map((compression) => encodeRecordBatch(sample, { compression }))
    let oks = 0
    for (let iter = 0; iter < 4_000; iter++) {
      const b = prng.pick(bases).slice()
      for (let e = prng.range(1, 3); e > 0; e--) {
        const at = prng.range(BATCH_HEADER_BYTES, b.length - 1)
        b[at] = prng.chance(0.5) ? prng.int(256) : b[at]! ^ (1 << prng.int(8))
      }
      if (prng.chance(0.9)) restamp(b) // most damage behind a valid CRC, for the record parser to find
      const whole = decodeRecordBatch(b)
      const out: RecordMessage[] = []
      const mine = decodeMessagesInto(b, 0, Infinity, out)
      expect(mine.ok ? 'ok' : mine.error.code).toBe(whole.ok ? 'ok' : whole.error.code)
      if (!whole.ok) {
        expect(out).toEqual([])
        continue
      }
      oks++
      const all = whole.value.records.map(plainRecord)
      expect(out.map(plainMessage)).toEqual(all)
      const from = prng.int(all.length + 1)
      const max = prng.int(all.length + 1)
      expect(messagesOf(b, from, max).map(plainMessage)).toEqual(all.slice(from, from + max))
    }
    expect(oks).toBeGreaterThan(100) // mutations of keys and values still decode
  })

  it('random records of every varint width decode as decodeRecordBatch decodes them', () => {
    const prng = new Prng(77)
    for (let round = 0; round < 20; round++) {
      const records: RecordInput[] = Array.from({ length: prng.range(1, 60) }, () => ({
        key: prng.chance(0.3) ? null : new Uint8Array(prng.pick([0, 1, 63, 64, 8191, 8192, 20_000])),
        value: prng.chance(0.1) ? null : new Uint8Array(prng.pick([0, 5, 100, 200, 70_000])).fill(7),
        timestamp: T0 + prng.pick([0, 1, -1, 63, -64, 8191, 1 << 20, -(1 << 27), 2 ** 40]),
        headers: prng.chance(0.2) ? [{ key: `h${prng.int(3)}`, value: prng.chance(0.5) ? null : new Uint8Array(prng.int(300)) }] : [],
      }))
      const batch = encodeRecordBatch(records, { compression: prng.pick(codecs) })
      const all = recordsOf(batch).map(plainRecord)
      expect(messagesOf(batch).map(plainMessage)).toEqual(all)
      const from = prng.int(records.length)
      expect(messagesOf(batch, from, 5).map(plainMessage)).toEqual(all.slice(from, from + 5))
    }
  })
})
