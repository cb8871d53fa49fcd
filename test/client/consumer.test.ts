/**
 * Consumer.fetch over canned fetch responses (no broker): which messages a page holds
 * when the broker's whole batches start before the asked offset or run past maxMessages,
 * their shape, and what a corrupt batch does.
 */
import { crc32c } from '@node-rs/crc32'
import { describe, expect, it } from 'vitest'
import type { Client } from '../../src/client/client.js'
import { Consumer } from '../../src/client/consumer.js'
import type { ConsumedMessage } from '../../src/client/consumer.js'
import { RaftmqError } from '../../src/client/errors.js'
import type { Compression } from '../../src/protocol/compression.js'
import { BATCH_HEADER_BYTES, encodeRecordBatch, setBaseOffset } from '../../src/protocol/record-batch.js'
import type { RecordInput } from '../../src/protocol/record-batch.js'

const T0 = 1_700_000_000_000

/** A batch of `count` messages "m<offset>" at `baseOffset`; every third has a header. */
function batchAt(baseOffset: number, count: number, compression: Compression = 'none'): Uint8Array {
  const records: RecordInput[] = Array.from({ length: count }, (_, i) => ({
    key: i % 2 === 0 ? `k${baseOffset + i}` : null,
    value: `m${baseOffset + i}`,
    timestamp: T0 + baseOffset + i,
    headers: (baseOffset + i) % 3 === 0 ? [{ key: 'n', value: `${baseOffset + i}` }] : [],
  }))
  const b = encodeRecordBatch(records, { compression })
  setBaseOffset(b, baseOffset)
  return b
}

interface Canned {
  readonly batches: readonly Uint8Array[]
  readonly highWatermark?: number
  readonly logStartOffset?: number
}

/** A Consumer whose client (one node, leading everything) answers every fetch with `canned`, recording the requests. */
function consumerOver(canned: Canned): { consumer: Consumer; requests: unknown[] } {
  const requests: unknown[] = []
  const client = {
    leaderFor: async () => 1,
    reroute: () => false,
    requestNode: async (node: number, api: string, body: unknown) => {
      requests.push({ node, api, body })
      return { partitions: [{ topic: 't', partition: 0, highWatermark: canned.highWatermark ?? 1_000, logStartOffset: canned.logStartOffset ?? 0, batches: canned.batches }] }
    },
  } as unknown as Client
  return { consumer: new Consumer(client, {}), requests }
}

const text = (v: Uint8Array | null): string | null => (v === null ? null : Buffer.from(v).toString())
const values = (ms: readonly ConsumedMessage[]): (string | null)[] => ms.map((m) => text(m.value))

describe('Consumer.fetch', () => {
  it('skips the records of the first batch below the asked offset', async () => {
    const { consumer } = consumerOver({ batches: [batchAt(100, 10), batchAt(110, 5)] })
    const page = await consumer.fetch({ topic: 't', partition: 0, offset: 107 })
    expect(page.messages.map((m) => m.offset)).toEqual([107, 108, 109, 110, 111, 112, 113, 114])
    expect(values(page.messages)).toEqual(['m107', 'm108', 'm109', 'm110', 'm111', 'm112', 'm113', 'm114'])
    expect(page.nextOffset).toBe(115)
  })

  it('stops at maxMessages mid-batch, passes it to the broker, and resumes from there', async () => {
    const { consumer, requests } = consumerOver({ batches: [batchAt(100, 10), batchAt(110, 5)] })
    const page = await consumer.fetch({ topic: 't', partition: 0, offset: 103, maxMessages: 4 })
    expect(page.messages.map((m) => m.offset)).toEqual([103, 104, 105, 106])
    expect(page.nextOffset).toBe(107)
    expect(requests[0]).toMatchObject({ api: 'fetch', body: { partitions: [{ topic: 't', partition: 0, offset: 103, maxMessages: 4 }] } })
    const across = await consumer.fetch({ topic: 't', partition: 0, offset: 108, maxMessages: 4 })
    expect(across.messages.map((m) => m.offset)).toEqual([108, 109, 110, 111])
    expect(across.nextOffset).toBe(112)
  })

  it('does not decode batches past maxMessages: a damaged one there does not fail the fetch', async () => {
    const damaged = batchAt(110, 5)
    damaged[BATCH_HEADER_BYTES + 3]! ^= 0xff // CRC mismatch
    const { consumer } = consumerOver({ batches: [batchAt(100, 10), damaged] })
    const page = await consumer.fetch({ topic: 't', partition: 0, offset: 100, maxMessages: 10 })
    expect(page.messages.map((m) => m.offset)).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109])
    await expect(consumer.fetch({ topic: 't', partition: 0, offset: 100, maxMessages: 11 })).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' })
  })

  it('gives each message offset, key, value, headers and timestamp; no headers is one shared empty object', async () => {
    const { consumer } = consumerOver({ batches: [batchAt(0, 4)] })
    const page = await consumer.fetch({ topic: 't', partition: 0, offset: 0 })
    const [m0, m1, m2, m3] = page.messages
    expect(Object.keys(m0!).sort()).toEqual(['headers', 'key', 'offset', 'timestamp', 'value'])
    expect([m0!.offset, text(m0!.key), text(m0!.value), m0!.timestamp]).toEqual([0, 'k0', 'm0', T0])
    expect(m1!.key).toBeNull()
    expect(Object.fromEntries(Object.entries(m0!.headers).map(([k, v]) => [k, text(v)]))).toEqual({ n: '0' })
    expect(Object.fromEntries(Object.entries(m3!.headers).map(([k, v]) => [k, text(v)]))).toEqual({ n: '3' })
    expect(m1!.headers).toEqual({})
    expect(m1!.headers).toBe(m2!.headers)
    expect(Object.isFrozen(m1!.headers)).toBe(true)
  })

  for (const compression of ['gzip', 'lz4', 'zstd'] as const) {
    it(`${compression}: decodes compressed batches, from an offset inside one`, async () => {
      const { consumer } = consumerOver({ batches: [batchAt(50, 20, compression), batchAt(70, 3, compression)] })
      const page = await consumer.fetch({ topic: 't', partition: 0, offset: 65, maxMessages: 6 })
      expect(values(page.messages)).toEqual(['m65', 'm66', 'm67', 'm68', 'm69', 'm70'])
      expect(page.messages.map((m) => m.timestamp)).toEqual([65, 66, 67, 68, 69, 70].map((o) => T0 + o))
    })
  }

  it('a batch corrupt mid-record throws CORRUPT_MESSAGE naming the partition', async () => {
    const b = batchAt(0, 6)
    // record lengths are one byte here: make record 0 claim one byte more, so that it
    // swallows record 1's length and its fields no longer fill it; then fix the CRC
    b[BATCH_HEADER_BYTES]! += 2
    new DataView(b.buffer, b.byteOffset).setUint32(17, crc32c(b.subarray(21)))
    const { consumer } = consumerOver({ batches: [b] })
    const e = await consumer.fetch({ topic: 't', partition: 0, offset: 0 }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(RaftmqError)
    expect(e).toMatchObject({ code: 'CORRUPT_MESSAGE' })
    expect((e as Error).message).toMatch(/t\/0 does not decode: record 0/)
  })

  it('with nothing to return, nextOffset stays at the asked offset (or the log start past it)', async () => {
    const empty = consumerOver({ batches: [] })
    expect((await empty.consumer.fetch({ topic: 't', partition: 0, offset: 40 })).nextOffset).toBe(40)
    const trimmed = consumerOver({ batches: [], logStartOffset: 90 })
    expect((await trimmed.consumer.fetch({ topic: 't', partition: 0, offset: 40 })).nextOffset).toBe(90)
  })
})
