/**
 * Helpers for the partition tests: fake RecordBatches (a v2 header with the fields the
 * partition reads, then filler where records would be; no valid CRC, which apply never
 * checks) and produce commands with defaults, in the current format or in format 1.
 */
import { encodeCleanup, encodeProduce, NO_PRODUCER_ID } from '../../src/partition/index.js'
import type { ApplyResult, PartitionStateMachine } from '../../src/partition/index.js'
import { BATCH_HEADER_BYTES } from '../../src/partition/batch-header.js'

export { BATCH_HEADER_BYTES }

export interface BatchOpts {
  count?: number
  pid?: number
  epoch?: number
  seq?: number
  ts?: number
  /** The whole batch, header included: at least BATCH_HEADER_BYTES. */
  bytes?: number
}

/** Stand-in for a RecordBatch of `bytes` bytes: a v2 header saying `o`, then a recognisable pattern. */
export function fakeBatch(o: BatchOpts = {}, seed = 0): Uint8Array {
  const size = o.bytes ?? 100
  const count = o.count ?? 1
  if (size < BATCH_HEADER_BYTES) throw new Error(`a fake batch of ${size} bytes has no room for its header`)
  const b = new Uint8Array(size)
  for (let i = BATCH_HEADER_BYTES; i < size; i++) b[i] = (seed * 31 + i) & 0xff
  const v = new DataView(b.buffer)
  v.setInt32(8, size - 12) // batchLength
  v.setInt8(16, 2) // magic
  v.setInt32(23, count - 1) // lastOffsetDelta
  v.setBigInt64(27, BigInt(o.ts ?? 1_000)) // baseTimestamp
  v.setBigInt64(35, BigInt(o.ts ?? 1_000)) // maxTimestamp
  v.setBigInt64(43, BigInt(o.pid ?? NO_PRODUCER_ID))
  v.setInt16(51, o.epoch ?? (o.pid === undefined ? -1 : 0))
  v.setInt32(53, o.seq ?? (o.pid === undefined ? -1 : 0))
  v.setInt32(57, count) // recordCount
  return b
}

export interface ProduceOpts extends BatchOpts {
  atomic?: boolean
  /** Encode as format 1 (type 0x01, the header fields copied in front), which apply still reads. */
  v1?: boolean
}

export function produce(o: ProduceOpts = {}): Uint8Array {
  const batch = fakeBatch(o, o.count ?? 1)
  return o.v1 ? produceV1(batch, { atomic: o.atomic ?? false }) : encodeProduce({ atomic: o.atomic ?? false }, batch)
}

/**
 * A format 1 produce command for `batch`, as the builds before format 2 wrote it: its
 * copies of the header fields are read from `batch`, unless `copies` says otherwise.
 */
export function produceV1(
  batch: Uint8Array,
  o: { atomic: boolean; copies?: Partial<{ recordCount: number; producerId: number; producerEpoch: number; baseSequence: number; maxTimestamp: number }> },
): Uint8Array {
  const h = new DataView(batch.buffer, batch.byteOffset, batch.byteLength)
  const c = {
    recordCount: h.getInt32(57),
    producerId: Number(h.getBigInt64(43)),
    producerEpoch: h.getInt16(51),
    baseSequence: h.getInt32(53),
    maxTimestamp: Number(h.getBigInt64(35)),
    ...o.copies,
  }
  const out = new Uint8Array(28 + batch.byteLength)
  const v = new DataView(out.buffer)
  out[0] = 0x01
  out[1] = (o.atomic ? 0b01 : 0) | (c.recordCount === 1 ? 0b10 : 0)
  v.setUint32(2, c.recordCount)
  v.setBigInt64(6, BigInt(c.producerId))
  v.setInt16(14, c.producerEpoch)
  v.setInt32(16, c.baseSequence)
  v.setBigInt64(20, BigInt(c.maxTimestamp))
  out.set(batch, 28)
  return out
}

export const cleanup = encodeCleanup

/** Applies commands at consecutive Raft indexes after the machine's applied index. */
export function applyAll(m: PartitionStateMachine, cmds: readonly Uint8Array[]): ApplyResult[] {
  return cmds.map((c) => m.apply(m.appliedIndex + 1, c))
}
