import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { compress, decompress } from '../../src/protocol/compression.js'
import type { Compression } from '../../src/protocol/compression.js'
import { decodeRecordBatch, encodeRecordBatch, verifyBatchCrc } from '../../src/protocol/record-batch.js'
import type { RecordInput } from '../../src/protocol/record-batch.js'
import { ByteReader, varintBytes, varlongBytes, writeVarint, writeVarlong } from '../../src/protocol/varint.js'

// KafkaJS (MIT) as the oracle: its own RecordBatch v0 (= magic 2) encoder and decoder,
// reached through CommonJS. KafkaJS ships only gzip; lz4 and zstd are registered below
// with raftmq's own codecs, which tests the batch framing around them, not the codecs.
const require = createRequire(import.meta.url)
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js')
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js')
const decodeKafkaBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js')
const KafkaDecoder = require('kafkajs/src/protocol/decoder.js')
const KafkaEncoder = require('kafkajs/src/protocol/encoder.js')
const kafkaCrc32C: (b: Buffer) => number = require('kafkajs/src/protocol/recordBatch/crc32C/index.js')
const { Codecs, Types } = require('kafkajs/src/protocol/message/compression/index.js')

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength)
function registerCodec(type: number, codec: Compression): void {
  Codecs[type] = () => ({
    compress: async (encoder: { buffer: Buffer }) => asBuffer(compress(codec, encoder.buffer)),
    decompress: async (buffer: Buffer) => {
      const r = decompress(codec, buffer, 64 << 20)
      if (!r.ok) throw new Error(r.error.message)
      return asBuffer(r.value)
    },
  })
}
registerCodec(Types.LZ4, 'lz4')
registerCodec(Types.ZSTD, 'zstd')

const kafkaTypes: Record<Exclude<Compression, 'snappy'>, number> = { none: Types.None, gzip: Types.GZIP, lz4: Types.LZ4, zstd: Types.ZSTD }
const codecs = ['none', 'gzip', 'lz4', 'zstd'] as const

/**
 * A message both encoders can express. KafkaJS limits: keys and values must be Buffers or
 * strings (a plain Uint8Array is String()-ed), headers are an object map (values may not be
 * null: its size function calls Buffer.byteLength(null); repeated keys are arrays; integer-
 * like keys would be reordered first by JS), so headers here use distinct non-numeric keys.
 */
interface Message {
  key: Buffer | string | null
  value: Buffer | string | null
  headers: Record<string, Buffer | Buffer[]>
  timestamp: number
}

function messages(seed: number, n: number): Message[] {
  const prng = new Prng(seed)
  const T0 = 1_700_000_000_000
  const buf = (len: number) => Buffer.from(Uint8Array.from({ length: len }, () => prng.int(256)))
  return Array.from({ length: n }, (_, i) => {
    const headers: Record<string, Buffer | Buffer[]> = {}
    for (let h = 0; h < prng.int(4); h++) headers[`h-${h}-${prng.int(100)}`] = buf(prng.int(20))
    if (prng.chance(0.2)) headers['multi'] = [buf(3), Buffer.from('second ✓')]
    return {
      key: prng.pick([null, buf(prng.int(16)), `key ${i} ключ`]),
      value: prng.pick([null, Buffer.alloc(0), buf(prng.int(500)), 'value ✓ 🎉 '.repeat(prng.int(5))]),
      headers,
      timestamp: T0 + prng.range(-5000, 5000),
    }
  })
}

function headerList(m: Message): { key: string; value: Buffer }[] {
  return Object.entries(m.headers).flatMap(([key, v]) => (Array.isArray(v) ? v.map((value) => ({ key, value })) : [{ key, value: v }]))
}

const toRecordInput = (m: Message): RecordInput => ({
  key: m.key,
  value: m.value,
  headers: headerList(m),
  timestamp: m.timestamp,
})

interface Fields {
  compression: (typeof codecs)[number]
  producerId: number
  producerEpoch: number
  baseSequence: number
}

/** Encodes as KafkaJS's Produce v3+ request does (requests/produce/v3/request.js), with our header values. */
async function kafkajsEncode(msgs: Message[], f: Fields): Promise<Buffer> {
  const baseTimestamp = msgs[0]!.timestamp
  const records = msgs.map((m, i) =>
    Record({ offsetDelta: i, timestampDelta: m.timestamp - baseTimestamp, key: m.key, value: m.value, headers: m.headers }),
  )
  const batch = await RecordBatch({
    compression: kafkaTypes[f.compression],
    records,
    firstTimestamp: baseTimestamp,
    maxTimestamp: Math.max(...msgs.map((m) => m.timestamp)),
    partitionLeaderEpoch: -1,
    lastOffsetDelta: msgs.length - 1,
    producerId: f.producerId,
    producerEpoch: f.producerEpoch,
    firstSequence: f.baseSequence,
  })
  return batch.buffer
}

/** A canonical form both decoders' output can be mapped to. */
interface Plain {
  offset: string
  timestamp: string
  key: string | null
  value: string | null
  headers: [string, string][]
}
const hex = (b: Uint8Array | string | null): string | null =>
  b === null ? null : typeof b === 'string' ? Buffer.from(b).toString('hex') : asBuffer(b).toString('hex')

const plainOfMessage = (m: Message, i: number): Plain => ({
  offset: String(i),
  timestamp: String(m.timestamp),
  key: hex(m.key),
  value: hex(m.value),
  headers: headerList(m).map((h) => [h.key, hex(h.value)!]),
})

function ourPlain(batch: Uint8Array): Plain[] {
  const d = decodeRecordBatch(batch)
  if (!d.ok) throw new Error(`${d.error.code}: ${d.error.message}`)
  return d.value.records.map((r) => ({
    offset: String(r.offset),
    timestamp: String(r.timestamp),
    key: hex(r.key),
    value: hex(r.value),
    headers: r.headers.map((h) => [h.key, hex(h.value)!]),
  }))
}

interface KafkaRecord {
  offset: string
  timestamp: string
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, Buffer | Buffer[]>
}

async function kafkajsPlain(batch: Uint8Array): Promise<{ records: Plain[]; header: Record<string, unknown> }> {
  const decoded = await decodeKafkaBatch(new KafkaDecoder(asBuffer(batch)))
  const records = (decoded.records as KafkaRecord[]).map((r) => ({
    offset: r.offset,
    timestamp: r.timestamp,
    key: hex(r.key),
    value: hex(r.value),
    headers: Object.entries(r.headers).flatMap(([k, v]): [string, string][] => (Array.isArray(v) ? v.map((x) => [k, hex(x)!]) : [[k, hex(v)!]])),
  }))
  return { records, header: decoded }
}

const fieldsFor = (compression: Fields['compression']): Fields => ({ compression, producerId: 4242, producerEpoch: 3, baseSequence: 17 })

describe('record-batch - KafkaJS encodes, raftmq decodes', () => {
  for (const compression of codecs) {
    it(`${compression}: same records, and the CRC verifies`, async () => {
      const msgs = messages(1000 + compression.length, 300)
      const batch = await kafkajsEncode(msgs, fieldsFor(compression))
      expect(verifyBatchCrc(batch)).toBe(true)
      const d = decodeRecordBatch(batch)
      expect(d.ok && d.value.header).toMatchObject({ compression, producerId: 4242, producerEpoch: 3, baseSequence: 17, recordCount: 300 })
      expect(ourPlain(batch)).toEqual(msgs.map(plainOfMessage))
    })
  }

  it('KafkaJS defaults (producerEpoch 0, firstSequence 0, partitionLeaderEpoch 0) read back as such', async () => {
    const records = [Record({ offsetDelta: 0, key: 'k', value: 'v' })]
    const batch: Buffer = (await RecordBatch({ records, firstTimestamp: 5, maxTimestamp: 5 })).buffer
    const d = decodeRecordBatch(batch)
    expect(d.ok && d.value.header).toMatchObject({ producerId: -1, producerEpoch: 0, baseSequence: 0, partitionLeaderEpoch: 0, recordCount: 1 })
  })
})

describe('record-batch - raftmq encodes, KafkaJS decodes', () => {
  for (const compression of codecs) {
    it(`${compression}: same records and header fields`, async () => {
      const msgs = messages(2000 + compression.length, 300)
      const f = fieldsFor(compression)
      const ours = encodeRecordBatch(msgs.map(toRecordInput), f)
      const theirs = await kafkajsPlain(ours)
      expect(theirs.records).toEqual(msgs.map(plainOfMessage))
      expect(theirs.header).toMatchObject({ firstOffset: '0', partitionLeaderEpoch: -1, producerId: '4242', producerEpoch: 3, firstSequence: 17, lastOffsetDelta: 299 })
      expect(kafkaCrc32C(asBuffer(ours).subarray(21))).toBe(new DataView(ours.buffer).getUint32(17))
    })
  }
})

describe('record-batch - byte for byte against KafkaJS', () => {
  it('uncompressed batches are identical, CRC included', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const msgs = messages(seed, 1 + seed * 40)
      const f: Fields = { compression: 'none', producerId: -1, producerEpoch: -1, baseSequence: -1 }
      const theirs = await kafkajsEncode(msgs, f)
      const ours = encodeRecordBatch(msgs.map(toRecordInput), f)
      expect(asBuffer(ours).toString('hex')).toBe(theirs.toString('hex'))
    }
  })

  it('gzip batches are identical too (both use node:zlib at its default level)', async () => {
    const msgs = messages(9, 50)
    const f = fieldsFor('gzip')
    expect(asBuffer(encodeRecordBatch(msgs.map(toRecordInput), f)).toString('hex')).toBe((await kafkajsEncode(msgs, f)).toString('hex'))
  })

  it('the CRC-32C check value e3069283 holds for KafkaJS too', () => {
    expect(kafkaCrc32C(Buffer.from('123456789')).toString(16)).toBe('e3069283')
  })
})

describe('record-batch - varints against KafkaJS', () => {
  const ints = [0, 1, -1, 63, -64, 64, -65, 8191, 8192, 2 ** 20, -(2 ** 20), 2 ** 31 - 1, -(2 ** 31)]
  const longs = [...ints, 2 ** 31, -(2 ** 31) - 1, 2 ** 35 + 7, 1_700_000_000_000, -1_700_000_000_000, 2 ** 52, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]

  it('varints encode as KafkaJS encodes them, and read back', () => {
    for (const n of ints) {
      const theirs: Buffer = new KafkaEncoder().writeVarInt(n).buffer
      const ours = new Uint8Array(varintBytes(n))
      expect(writeVarint(ours, 0, n)).toBe(ours.length)
      expect(asBuffer(ours).toString('hex'), String(n)).toBe(theirs.toString('hex'))
      const r = new ByteReader(ours)
      expect(r.varint()).toBe(n)
      expect(r.bad).toBe(false)
    }
  })

  it('varlongs encode as KafkaJS encodes them, and read back exactly up to ±(2^53 - 1)', () => {
    for (const n of longs) {
      const theirs: Buffer = new KafkaEncoder().writeVarLong(n).buffer
      const ours = new Uint8Array(varlongBytes(n))
      expect(writeVarlong(ours, 0, n)).toBe(ours.length)
      expect(asBuffer(ours).toString('hex'), String(n)).toBe(theirs.toString('hex'))
      const r = new ByteReader(ours)
      expect(r.varlong()).toBe(n)
      expect(r.bad).toBe(false)
    }
  })

  it('varlongs beyond the safe range, and 11-byte varlongs, are bad rather than inexact', () => {
    for (const n of [2n ** 53n, -(2n ** 53n) - 1n, 2n ** 62n, -(2n ** 63n)]) {
      const r = new ByteReader(new KafkaEncoder().writeVarLong(n).buffer)
      r.varlong()
      expect(r.bad, String(n)).toBe(true)
    }
    const r = new ByteReader(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00))
    r.varlong()
    expect(r.bad).toBe(true)
  })
})
