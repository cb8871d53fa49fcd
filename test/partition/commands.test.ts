import { describe, expect, it } from 'vitest'
import { AssertionError, Prng } from '../../src/base/index.js'
import {
  CLEANUP_BYTES,
  CommandType,
  EXPIRE_BYTES,
  PRODUCE_PREFIX_BYTES,
  batchOf,
  decodeCleanup,
  decodeCommand,
  decodeProduce,
  encodeCleanup,
  encodeExpire,
  encodeProduce,
} from '../../src/partition/index.js'
import { BATCH_HEADER_BYTES, fakeBatch, produceV1 } from './support.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
/** The header facts `fields` stands for, in a 70-byte fake batch. */
const fields = { producerId: 42, producerEpoch: 3, baseSequence: 17, maxTimestamp: 1_700_000_000_000 }
const batchOfFields = (count: number, f: Partial<typeof fields> = {}): Uint8Array => {
  const g = { ...fields, ...f }
  return fakeBatch({ count, pid: g.producerId, epoch: g.producerEpoch, seq: g.baseSequence, ts: g.maxTimestamp, bytes: 70 })
}
const codeOf = (data: Uint8Array): string | null => {
  const r = decodeCommand(data)
  return r.ok ? null : r.error.code
}
/** `data` with the bytes at `pos` replaced by `hexBytes`. */
const patched = (data: Uint8Array, pos: number, hexBytes: string): Uint8Array => {
  const out = data.slice()
  out.set(Buffer.from(hexBytes, 'hex'), pos)
  return out
}

describe('partition - command encoding', () => {
  it('lays out a produce command as the wire grammar says (golden bytes): type, flags, the batch, nothing else', () => {
    const batch = batchOfFields(3)
    const data = encodeProduce({ atomic: true }, batch)
    expect(hex(data)).toBe('04' + '01' + hex(batch))
    expect(data.byteLength).toBe(PRODUCE_PREFIX_BYTES + batch.byteLength)
    expect(hex(encodeProduce({ atomic: false }, batch).subarray(0, PRODUCE_PREFIX_BYTES))).toBe('0400')
    expect(CommandType.Produce).toBe(0x04)
  })

  it('lays out a cleanup command as the wire grammar says (golden bytes)', () => {
    expect(hex(encodeCleanup(0x01_0000_0002))).toBe('02' + '0000000100000002')
    expect(encodeCleanup(0).byteLength).toBe(CLEANUP_BYTES)
  })

  it('lays out and round-trips an expire command (golden bytes), negative times included', () => {
    expect(hex(encodeExpire(0x01_0000_0002))).toBe('03' + '0000000100000002')
    expect(encodeExpire(0).byteLength).toBe(EXPIRE_BYTES)
    for (const t of [0, 1_795_736_000_000, -5, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]) {
      const d = decodeCommand(encodeExpire(t))
      expect(d.ok && d.value).toEqual({ type: 'expire', idleBefore: t })
    }
    expect(() => encodeExpire(1.5)).toThrow(AssertionError)
  })

  it('decodes the header facts from the batch, for one record and for many, atomic or not', () => {
    const one = decodeCommand(encodeProduce({ atomic: false }, batchOfFields(1)))
    expect(one.ok && one.value).toMatchObject({ type: 'produce', atomic: false, header: { recordCount: 1, ...fields } })
    const many = decodeCommand(encodeProduce({ atomic: true }, batchOfFields(1000)))
    expect(many.ok && many.value).toMatchObject({ type: 'produce', atomic: true, header: { recordCount: 1000, ...fields } })
    expect(many.ok && many.value.type === 'produce' && [...many.value.batch]).toEqual([...batchOfFields(1000)])
  })

  it('round-trips 64-bit fields over the whole safe range, negatives included', () => {
    for (const v of [0, 1, 0xffff_ffff, 0x1_0000_0000, Number.MAX_SAFE_INTEGER, -1, -0x1_0000_0000, Number.MIN_SAFE_INTEGER]) {
      const r = decodeProduce(encodeProduce({ atomic: false }, batchOfFields(2, { maxTimestamp: v })))
      expect(r.ok && r.value.header.maxTimestamp).toBe(v)
      if (v >= 0) {
        const p = decodeProduce(encodeProduce({ atomic: false }, batchOfFields(2, { producerId: v })))
        expect(p.ok && p.value.header.producerId).toBe(v)
        const c = decodeCleanup(encodeCleanup(v))
        expect(c.ok && c.value.logStartOffset).toBe(v)
      }
    }
  })

  it('batchOf and decode give the batch without a copy', () => {
    const data = encodeProduce({ atomic: false }, batchOfFields(2))
    const view = batchOf(data)
    expect(view.buffer).toBe(data.buffer)
    expect(view.byteOffset).toBe(data.byteOffset + PRODUCE_PREFIX_BYTES)
    expect([...view]).toEqual([...batchOfFields(2)])
    const r = decodeProduce(data)
    expect(r.ok && r.value.batch.buffer).toBe(data.buffer)
    expect(() => batchOf(encodeCleanup(5))).toThrow(AssertionError)
  })

  it('decodes a command that is a view into a larger buffer', () => {
    const data = encodeProduce({ atomic: false }, batchOfFields(4))
    const big = new Uint8Array(data.byteLength + 10)
    big.set(data, 7)
    const r = decodeCommand(big.subarray(7, 7 + data.byteLength))
    expect(r.ok && r.value).toMatchObject({ type: 'produce', header: { recordCount: 4, ...fields } })
    expect(r.ok && r.value.type === 'produce' && [...r.value.batch]).toEqual([...batchOfFields(4)])
  })

  it('refuses to encode what cannot be a batch, and a cleanup offset the state machine could not apply', () => {
    // the header's sense is the leader's check (checkBatch, batchFactsProblem), not a second parse here
    expect(() => encodeProduce({ atomic: false }, new Uint8Array(0))).toThrow(AssertionError)
    expect(() => encodeProduce({ atomic: false }, new Uint8Array(BATCH_HEADER_BYTES - 1))).toThrow(AssertionError)
    expect(() => encodeCleanup(-1)).toThrow(AssertionError)
  })

  it('still reads format 1 (type 0x01, the header fields copied in front of the batch), by the batch', () => {
    const batch = batchOfFields(3)
    const v1 = produceV1(batch, { atomic: true })
    // format 1's golden bytes: what the builds before format 2 wrote
    expect(hex(v1)).toBe('01' + '01' + '00000003' + '000000000000002a' + '0003' + '00000011' + '0000018bcfe56800' + hex(batch))
    const r = decodeProduce(v1)
    expect(r.ok && r.value).toMatchObject({ type: 'produce', atomic: true, header: { recordCount: 3, ...fields } })
    expect(r.ok && [...r.value.batch]).toEqual([...batch])
    expect(batchOf(v1).byteOffset).toBe(v1.byteOffset + 28)
    // the copies are not read: where they disagree with the batch, the batch is the answer
    const drifted = decodeProduce(produceV1(batch, { atomic: false, copies: { recordCount: 1, maxTimestamp: 5, producerId: -1 } }))
    expect(drifted.ok && drifted.value.header).toEqual({ recordCount: 3, ...fields })
    // format 1's single-message flag (bit 1) is accepted and means nothing; bits above it are refused
    expect(codeOf(patched(v1, 1, '03'))).toBeNull()
    expect(codeOf(patched(v1, 1, '04'))).toBe('MALFORMED_COMMAND')
    for (let n = 1; n < 28 + BATCH_HEADER_BYTES; n++) expect(codeOf(v1.subarray(0, n))).toBe('MALFORMED_COMMAND')
  })
})

describe('partition - command decoding of malformed bytes', () => {
  const good = encodeProduce({ atomic: false }, batchOfFields(3))
  /** Position of batch header byte `at` in `good`. */
  const inBatch = (at: number): number => PRODUCE_PREFIX_BYTES + at

  it('answers every truncation with MALFORMED_COMMAND, never an exception', () => {
    expect(codeOf(new Uint8Array(0))).toBe('MALFORMED_COMMAND')
    // the batch header is part of the command now: every cut before the end fails its framing
    for (let n = 1; n < good.byteLength; n++) expect(codeOf(good.subarray(0, n))).toBe('MALFORMED_COMMAND')
    expect(codeOf(good)).toBeNull()
    expect(codeOf(new Uint8Array([...good, 0]))).toBe('MALFORMED_COMMAND')
    for (const c of [encodeCleanup(9), encodeExpire(9)]) {
      for (let n = 1; n < c.byteLength; n++) expect(codeOf(c.subarray(0, n))).toBe('MALFORMED_COMMAND')
      expect(codeOf(new Uint8Array([...c, 0]))).toBe('MALFORMED_COMMAND')
    }
  })

  it('answers an unknown command type with UNKNOWN_COMMAND', () => {
    for (const t of [0x00, 0x05, 0x7f, 0xff]) expect(codeOf(new Uint8Array([t, 0, 0, 0]))).toBe('UNKNOWN_COMMAND')
  })

  it('rejects unknown flags, a batch of no records, a record count its lastOffsetDelta does not match, and another magic', () => {
    expect(codeOf(patched(good, 1, '02'))).toBe('MALFORMED_COMMAND') // format 1's single-message bit is gone
    expect(codeOf(patched(good, 1, '80'))).toBe('MALFORMED_COMMAND')
    expect(codeOf(patched(patched(good, inBatch(57), '00000000'), inBatch(23), 'ffffffff'))).toBe('MALFORMED_COMMAND') // 0 records
    expect(codeOf(patched(good, inBatch(57), '00000004'))).toBe('MALFORMED_COMMAND') // 4 records, lastOffsetDelta 2
    expect(codeOf(patched(patched(good, inBatch(57), '7fffffff'), inBatch(23), '7ffffffe'))).toBeNull() // any positive int32 count
    expect(codeOf(patched(good, inBatch(16), '01'))).toBe('MALFORMED_COMMAND') // magic 1
    expect(codeOf(patched(good, inBatch(8), '00000000'))).toBe('MALFORMED_COMMAND') // batchLength
  })

  it('rejects 64-bit values outside the safe integers and impossible producer fields', () => {
    expect(codeOf(patched(good, inBatch(43), '7fffffffffffffff'))).toBe('MALFORMED_COMMAND') // producer id
    expect(codeOf(patched(good, inBatch(43), '0020000000000000'))).toBe('MALFORMED_COMMAND') // 2^53
    expect(codeOf(patched(good, inBatch(43), '001fffffffffffff'))).toBeNull() // 2^53 - 1
    expect(codeOf(patched(good, inBatch(43), 'fffffffffffffffe'))).toBe('MALFORMED_COMMAND') // producer id -2
    expect(codeOf(patched(good, inBatch(51), 'ffff'))).toBe('MALFORMED_COMMAND') // idempotent, epoch -1
    expect(codeOf(patched(good, inBatch(53), 'ffffffff'))).toBe('MALFORMED_COMMAND') // idempotent, sequence -1
    expect(codeOf(patched(good, inBatch(35), '8000000000000000'))).toBe('MALFORMED_COMMAND') // timestamp
    // without a producer id, epoch and sequence are not looked at (KafkaJS sends epoch 0)
    const anon = patched(patched(patched(good, inBatch(43), 'ffffffffffffffff'), inBatch(51), '8000'), inBatch(53), '80000000')
    expect(codeOf(anon)).toBeNull()
    expect(codeOf(patched(encodeCleanup(1), 1, 'ffffffffffffffff'))).toBe('MALFORMED_COMMAND') // negative
    expect(codeOf(patched(encodeCleanup(1), 1, '7fffffffffffffff'))).toBe('MALFORMED_COMMAND')
  })

  it('never throws on random bytes', () => {
    const rng = new Prng(12345)
    const rnd = (): number => rng.int(256)
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(i % 100)
      for (let k = 0; k < b.length; k++) b[k] = rnd()
      if (b.length > 0 && i % 2 === 0) b[0] = rng.pick([0x01, 0x02, 0x03, 0x04])
      expect(() => decodeCommand(b)).not.toThrow()
    }
    // and on every single-byte change of a good command, in either format
    for (const c of [good, produceV1(batchOfFields(3), { atomic: false })]) {
      for (let i = 0; i < c.byteLength; i++) {
        const b = c.slice()
        b[i] ^= 0xa5
        expect(() => decodeCommand(b)).not.toThrow()
      }
    }
  })
})
