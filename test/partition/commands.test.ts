import { describe, expect, it } from 'vitest'
import { AssertionError, Prng } from '../../src/base/index.js'
import {
  CLEANUP_BYTES,
  EXPIRE_BYTES,
  PRODUCE_HEADER_BYTES,
  batchOf,
  decodeCleanup,
  decodeCommand,
  decodeProduce,
  encodeCleanup,
  encodeExpire,
  encodeProduce,
  encodeProduceBatch,
  encodeProduceMessage,
} from '../../src/partition/index.js'
import type { ProduceFields } from '../../src/partition/index.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const fields: ProduceFields = { atomic: false, producerId: 42, producerEpoch: 3, baseSequence: 17, maxTimestamp: 1_700_000_000_000 }
const codeOf = (data: Uint8Array): string | null => {
  const r = decodeCommand(data)
  return r.ok ? null : r.error.code
}
/** `data` with the 8 bytes at `pos` replaced by `hexBytes`. */
const patched = (data: Uint8Array, pos: number, hexBytes: string): Uint8Array => {
  const out = data.slice()
  out.set(Buffer.from(hexBytes, 'hex'), pos)
  return out
}

describe('partition - command encoding', () => {
  it('lays out a produce command as the wire grammar says (golden bytes)', () => {
    const data = encodeProduce(
      { kind: 'produce_batch', atomic: true, recordCount: 3, producerId: 0x01_0203_0405, producerEpoch: 7, baseSequence: 0x7fff_ffff, maxTimestamp: -1 },
      new Uint8Array([0xaa, 0xbb]),
    )
    expect(hex(data)).toBe('01' + '01' + '00000003' + '0000000102030405' + '0007' + '7fffffff' + 'ffffffffffffffff' + 'aabb')
    expect(data.byteLength).toBe(PRODUCE_HEADER_BYTES + 2)
    expect(hex(encodeProduceMessage({ ...fields, producerId: -1, producerEpoch: -1, baseSequence: -1, maxTimestamp: 0 }, new Uint8Array([1])))).toBe(
      '01' + '02' + '00000001' + 'ffffffffffffffff' + 'ffff' + 'ffffffff' + '0000000000000000' + '01',
    )
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

  it('round-trips produce_message and produce_batch, keeping both names visible', () => {
    const batch = new Uint8Array([9, 8, 7, 6, 5])
    const one = decodeCommand(encodeProduceMessage(fields, batch))
    expect(one.ok && one.value).toMatchObject({ type: 'produce', kind: 'produce_message', recordCount: 1, ...fields })
    const many = decodeCommand(encodeProduceBatch({ ...fields, atomic: true, recordCount: 1000 }, batch))
    expect(many.ok && many.value).toMatchObject({ type: 'produce', kind: 'produce_batch', recordCount: 1000, ...fields, atomic: true })
    // a one-record batch sent as a batch stays a batch
    const single = decodeProduce(encodeProduceBatch({ ...fields, recordCount: 1 }, batch))
    expect(single.ok && single.value.kind).toBe('produce_batch')
    expect(many.ok && many.value.type === 'produce' && [...many.value.batch]).toEqual([9, 8, 7, 6, 5])
  })

  it('round-trips 64-bit fields over the whole safe range, negatives included', () => {
    for (const v of [0, 1, 0xffff_ffff, 0x1_0000_0000, Number.MAX_SAFE_INTEGER, -1, -0x1_0000_0000, Number.MIN_SAFE_INTEGER]) {
      const r = decodeProduce(encodeProduceBatch({ ...fields, recordCount: 2, maxTimestamp: v }, new Uint8Array(0)))
      expect(r.ok && r.value.maxTimestamp).toBe(v)
      if (v >= 0) {
        const p = decodeProduce(encodeProduceBatch({ ...fields, recordCount: 2, producerId: v }, new Uint8Array(0)))
        expect(p.ok && p.value.producerId).toBe(v)
        const c = decodeCleanup(encodeCleanup(v))
        expect(c.ok && c.value.logStartOffset).toBe(v)
      }
    }
  })

  it('batchOf and decode give the batch without a copy', () => {
    const data = encodeProduceBatch({ ...fields, recordCount: 2 }, new Uint8Array([1, 2, 3]))
    const view = batchOf(data)
    expect(view.buffer).toBe(data.buffer)
    expect(view.byteOffset).toBe(data.byteOffset + PRODUCE_HEADER_BYTES)
    expect([...view]).toEqual([1, 2, 3])
    const r = decodeProduce(data)
    expect(r.ok && r.value.batch.buffer).toBe(data.buffer)
    expect(() => batchOf(encodeCleanup(5))).toThrow(AssertionError)
  })

  it('decodes a command that is a view into a larger buffer', () => {
    const data = encodeProduceBatch({ ...fields, recordCount: 4 }, new Uint8Array([5, 6]))
    const big = new Uint8Array(data.byteLength + 10)
    big.set(data, 7)
    const r = decodeCommand(big.subarray(7, 7 + data.byteLength))
    expect(r.ok && r.value).toMatchObject({ type: 'produce', recordCount: 4, ...fields })
    expect(r.ok && r.value.type === 'produce' && [...r.value.batch]).toEqual([5, 6])
  })

  it('refuses to encode fields the state machine could not apply', () => {
    expect(() => encodeProduce({ ...fields, kind: 'produce_message', recordCount: 2 }, new Uint8Array(0))).toThrow(AssertionError)
    expect(() => encodeProduceBatch({ ...fields, recordCount: 0 }, new Uint8Array(0))).toThrow(AssertionError)
    expect(() => encodeProduceBatch({ ...fields, recordCount: 1, producerId: -2 }, new Uint8Array(0))).toThrow(AssertionError)
    expect(() => encodeProduceBatch({ ...fields, recordCount: 1, baseSequence: -1 }, new Uint8Array(0))).toThrow(AssertionError)
    expect(() => encodeProduceBatch({ ...fields, recordCount: 1, producerEpoch: 0x8000 }, new Uint8Array(0))).toThrow(AssertionError)
    expect(() => encodeProduceBatch({ ...fields, recordCount: 1, maxTimestamp: 2 ** 53 }, new Uint8Array(0))).toThrow(AssertionError)
    expect(() => encodeCleanup(-1)).toThrow(AssertionError)
  })
})

describe('partition - command decoding of malformed bytes', () => {
  const good = encodeProduceBatch({ ...fields, recordCount: 3 }, new Uint8Array([1, 2, 3]))

  it('answers every truncation with MALFORMED_COMMAND, never an exception', () => {
    expect(codeOf(new Uint8Array(0))).toBe('MALFORMED_COMMAND')
    for (let n = 1; n < PRODUCE_HEADER_BYTES; n++) expect(codeOf(good.subarray(0, n))).toBe('MALFORMED_COMMAND')
    // the batch is opaque: a header with no batch bytes is still a command
    expect(codeOf(good.subarray(0, PRODUCE_HEADER_BYTES))).toBeNull()
    for (const c of [encodeCleanup(9), encodeExpire(9)]) {
      for (let n = 1; n < c.byteLength; n++) expect(codeOf(c.subarray(0, n))).toBe('MALFORMED_COMMAND')
      expect(codeOf(new Uint8Array([...c, 0]))).toBe('MALFORMED_COMMAND')
    }
  })

  it('answers an unknown command type with UNKNOWN_COMMAND', () => {
    for (const t of [0x00, 0x04, 0x7f, 0xff]) expect(codeOf(new Uint8Array([t, 0, 0, 0]))).toBe('UNKNOWN_COMMAND')
  })

  it('rejects unknown flags, a single message of several records and an empty batch', () => {
    expect(codeOf(patched(good, 1, '04'))).toBe('MALFORMED_COMMAND')
    expect(codeOf(patched(good, 1, '80'))).toBe('MALFORMED_COMMAND')
    expect(codeOf(patched(good, 1, '02'))).toBe('MALFORMED_COMMAND') // single flag with 3 records
    expect(codeOf(patched(good, 2, '00000000'))).toBe('MALFORMED_COMMAND') // 0 records
    expect(codeOf(patched(good, 2, 'ffffffff'))).toBeNull() // u32 count, any positive value
  })

  it('rejects 64-bit values outside the safe integers and impossible producer fields', () => {
    expect(codeOf(patched(good, 6, '7fffffffffffffff'))).toBe('MALFORMED_COMMAND') // producer id
    expect(codeOf(patched(good, 6, '0020000000000000'))).toBe('MALFORMED_COMMAND') // 2^53
    expect(codeOf(patched(good, 6, '001fffffffffffff'))).toBeNull() // 2^53 - 1
    expect(codeOf(patched(good, 6, 'fffffffffffffffe'))).toBe('MALFORMED_COMMAND') // producer id -2
    expect(codeOf(patched(good, 14, 'ffff'))).toBe('MALFORMED_COMMAND') // idempotent, epoch -1
    expect(codeOf(patched(good, 16, 'ffffffff'))).toBe('MALFORMED_COMMAND') // idempotent, sequence -1
    expect(codeOf(patched(good, 20, '8000000000000000'))).toBe('MALFORMED_COMMAND') // timestamp
    // without a producer id, epoch and sequence are not looked at (KafkaJS sends epoch 0)
    const anon = patched(patched(patched(good, 6, 'ffffffffffffffff'), 14, '8000'), 16, '80000000')
    expect(codeOf(anon)).toBeNull()
    expect(codeOf(patched(encodeCleanup(1), 1, 'ffffffffffffffff'))).toBe('MALFORMED_COMMAND') // negative
    expect(codeOf(patched(encodeCleanup(1), 1, '7fffffffffffffff'))).toBe('MALFORMED_COMMAND')
  })

  it('never throws on random bytes', () => {
    const rng = new Prng(12345)
    const rnd = (): number => rng.int(256)
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(i % 40)
      for (let k = 0; k < b.length; k++) b[k] = rnd()
      if (b.length > 0 && i % 2 === 0) b[0] = 1 + (i % 4 === 0 ? 1 : 0)
      expect(() => decodeCommand(b)).not.toThrow()
    }
  })
})
