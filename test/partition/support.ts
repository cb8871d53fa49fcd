/**
 * Helpers for the partition tests: fake RecordBatches (opaque bytes here) and produce
 * commands with defaults.
 */
import { encodeCleanup, encodeProduce, NO_PRODUCER_ID } from '../../src/partition/index.js'
import type { ApplyResult, PartitionStateMachine } from '../../src/partition/index.js'

/** Stand-in for a RecordBatch: `size` bytes of a recognisable pattern. */
export function fakeBatch(size: number, seed = 0): Uint8Array {
  const b = new Uint8Array(size)
  for (let i = 0; i < size; i++) b[i] = (seed * 31 + i) & 0xff
  return b
}

export interface ProduceOpts {
  count?: number
  pid?: number
  epoch?: number
  seq?: number
  ts?: number
  bytes?: number
  atomic?: boolean
}

export function produce(o: ProduceOpts = {}): Uint8Array {
  const count = o.count ?? 1
  return encodeProduce(
    {
      kind: count === 1 ? 'produce_message' : 'produce_batch',
      atomic: o.atomic ?? false,
      recordCount: count,
      producerId: o.pid ?? NO_PRODUCER_ID,
      producerEpoch: o.epoch ?? (o.pid === undefined ? -1 : 0),
      baseSequence: o.seq ?? (o.pid === undefined ? -1 : 0),
      maxTimestamp: o.ts ?? 1_000,
    },
    fakeBatch(o.bytes ?? 100, count),
  )
}

export const cleanup = encodeCleanup

/** Applies commands at consecutive Raft indexes after the machine's applied index. */
export function applyAll(m: PartitionStateMachine, cmds: readonly Uint8Array[]): ApplyResult[] {
  return cmds.map((c) => m.apply(m.appliedIndex + 1, c))
}
