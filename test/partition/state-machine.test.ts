import { describe, expect, it } from 'vitest'
import { AssertionError, limits } from '../../src/base/index.js'
import { PRODUCE_PREFIX_BYTES, PartitionStateMachine, encodeCleanup, encodeExpire } from '../../src/partition/index.js'
import { ConfChangeOp, encodeConfChange } from '../../src/raft/index.js'
import type { ApplyResult, LocateResult, ProduceAccepted } from '../../src/partition/index.js'
import { applyAll, cleanup, fakeBatch, produce, produceV1 } from './support.js'

const MAX_SEQ = 0x7fff_ffff
const W = limits.produce.producerBatchesRemembered

function acceptedOf(r: ApplyResult): ProduceAccepted {
  expect(r).toMatchObject({ kind: 'produce', ok: true })
  return r as ProduceAccepted
}
const errorCode = (r: ApplyResult): string | undefined => (r.kind === 'produce' && !r.ok ? r.error.code : undefined)
const spans = (l: LocateResult): [number, number, number][] => (l.kind === 'ok' ? l.batches.map((b) => [b.baseOffset, b.lastOffset, b.raftIndex]) : [])

describe('partition - offsets', () => {
  it('assigns dense offsets from 0 across single messages and batches', () => {
    const m = new PartitionStateMachine()
    const rs = applyAll(m, [produce(), produce({ count: 3 }), produce(), produce({ count: 10 }), produce({ count: 1 })])
    expect(rs.map((r) => acceptedOf(r).baseOffset)).toEqual([0, 1, 4, 5, 15])
    expect(rs.map((r) => acceptedOf(r).count)).toEqual([1, 3, 1, 10, 1])
    expect(m.nextOffset).toBe(16)
    expect(m.highWatermark()).toBe(16)
    expect(m.logStartOffset).toBe(0)
    expect(m.batchCount).toBe(5)
    expect(m.appliedIndex).toBe(5)
    m.assertInvariants()
  })

  it('answers a batch with its offset range: record i at baseOffset + i', () => {
    const m = new PartitionStateMachine()
    m.apply(1, produce({ count: 2 }))
    const r = acceptedOf(m.apply(2, produce({ count: 4 })))
    expect(r).toEqual({ kind: 'produce', ok: true, baseOffset: 2, count: 4, duplicate: false })
    const big = acceptedOf(m.apply(3, produce({ count: 50_000 })))
    expect(big).toMatchObject({ baseOffset: 6, count: 50_000 })
    expect(m.nextOffset).toBe(6 + 50_000)
  })

  it('keeps the batch size, timestamp and Raft index of each batch in the index', () => {
    const m = new PartitionStateMachine()
    m.apply(3, produce({ count: 2, bytes: 70, ts: 5 }))
    m.apply(7, produce({ count: 1, bytes: 90, ts: 9 }))
    const l = m.locate(0, 1 << 20)
    expect(l).toEqual({
      kind: 'ok',
      batches: [
        { baseOffset: 0, lastOffset: 1, raftIndex: 3, bytes: 70, maxTimestamp: 5 },
        { baseOffset: 2, lastOffset: 2, raftIndex: 7, bytes: 90, maxTimestamp: 9 },
      ],
    })
    expect(m.retainedBytes).toBe(160)
  })

  it('treats an empty entry as a noop and skip() as an applied non-command, both moving appliedIndex', () => {
    const m = new PartitionStateMachine()
    expect(m.apply(1, new Uint8Array(0))).toEqual({ kind: 'noop' })
    m.skip(2)
    expect(acceptedOf(m.apply(5, produce())).baseOffset).toBe(0)
    expect(m.appliedIndex).toBe(5)
  })

  it('asserts that Raft indexes increase', () => {
    const m = new PartitionStateMachine()
    m.apply(4, produce())
    expect(() => m.apply(4, produce())).toThrow(AssertionError)
    expect(() => m.apply(3, produce())).toThrow(AssertionError)
    expect(() => m.skip(2)).toThrow(AssertionError)
    expect(() => m.apply(0.5 + 4, produce())).toThrow(AssertionError)
    expect(m.nextOffset).toBe(1)
  })

  // the host should skip() entries that are not Normal; this is the safety net if it does not
  it('answers a Raft configuration-change entry passed to apply "invalid", whatever its voter count', () => {
    const m = new PartitionStateMachine()
    m.apply(1, produce())
    for (const op of [ConfChangeOp.AddVoter, ConfChangeOp.RemoveVoter]) {
      for (let n = 0; n <= 255; n++) {
        const voters = Array.from({ length: n }, (_, i) => 0x0100_0000 * (i % 3) + i + 1)
        const r = m.apply(m.appliedIndex + 1, encodeConfChange({ op, nodeId: 0xffff_fff0 + (n % 16) }, { voters }))
        expect(r.kind, `op ${op}, ${n} voters`).toBe('invalid')
      }
    }
    expect(m.nextOffset).toBe(1)
  })

  it('answers a malformed or unknown command "invalid" and changes nothing but appliedIndex', () => {
    const m = new PartitionStateMachine()
    m.apply(1, produce({ count: 2 }))
    const before = m.snapshot()
    expect(m.apply(2, new Uint8Array([0x01, 0x00]))).toMatchObject({ kind: 'invalid', error: { code: 'MALFORMED_COMMAND' } })
    expect(m.apply(3, new Uint8Array([0x63]))).toMatchObject({ kind: 'invalid', error: { code: 'UNKNOWN_COMMAND' } })
    // a produce command whose batch header apply cannot read: here, a batch that says 0 records
    const noRecords = produce({ count: 2 })
    new DataView(noRecords.buffer).setInt32(PRODUCE_PREFIX_BYTES + 57, 0)
    expect(m.apply(4, noRecords)).toMatchObject({ kind: 'invalid', error: { code: 'MALFORMED_COMMAND' } })
    expect(m.appliedIndex).toBe(4)
    const after = PartitionStateMachine.restore(m.snapshot())
    expect(after.ok && after.value.nextOffset).toBe(2)
    expect(m.snapshot().subarray(9)).toEqual(before.subarray(9)) // all but appliedIndex
  })
})

describe('partition - the batch header is the one home of its facts', () => {
  it('takes count, producer fields and maxTimestamp from the batch: the index, retention and idempotence all see what the batch says', () => {
    const m = new PartitionStateMachine()
    const r = acceptedOf(m.apply(1, produce({ count: 3, pid: 4, epoch: 2, seq: 10, ts: 7_000, bytes: 120 })))
    expect(r).toMatchObject({ baseOffset: 0, count: 3 })
    expect(m.locate(0, 1 << 20)).toEqual({ kind: 'ok', batches: [{ baseOffset: 0, lastOffset: 2, raftIndex: 1, bytes: 120, maxTimestamp: 7_000 }] })
    expect(m.producers.get(4)).toEqual({ producerId: 4, epoch: 2, lastTimestamp: 7_000, batches: [{ firstSeq: 10, lastSeq: 12, baseOffset: 0 }] })
    expect(m.retentionCutoff({ nowMs: 7_500, retentionMs: 499 })).toBe(3)
    expect(m.retentionCutoff({ nowMs: 7_500, retentionMs: 500 })).toBeNull()
  })

  it('applies a format 1 command (written by earlier builds, re-applied after an upgrade) exactly as the same batch in format 2', () => {
    const script = (v1: boolean): Uint8Array[] => [
      produce({ v1, count: 3, pid: 1, seq: 0, ts: 100, bytes: 90 }),
      produce({ v1, count: 1, ts: 200 }),
      produce({ v1, count: 3, pid: 1, seq: 0, ts: 100, bytes: 90 }), // duplicate
      produce({ v1, count: 2, pid: 1, seq: 9, ts: 300 }), // out of order
      produce({ v1, count: 2, pid: 1, epoch: 1, seq: 0, ts: 400, atomic: true }),
      cleanup(2),
    ]
    const a = new PartitionStateMachine()
    const b = new PartitionStateMachine()
    expect(applyAll(b, script(true))).toEqual(applyAll(a, script(false)))
    expect(b.snapshot()).toEqual(a.snapshot())
  })

  it('reads a format 1 command by its batch, not by its copies of the header fields', () => {
    const batch = fakeBatch({ count: 2, pid: 6, epoch: 1, seq: 4, ts: 5_000 })
    const drifted = produceV1(batch, { atomic: false, copies: { recordCount: 7, producerId: 9, producerEpoch: 3, baseSequence: 0, maxTimestamp: 99_999 } })
    const m = new PartitionStateMachine()
    expect(m.apply(1, drifted)).toEqual({ kind: 'produce', ok: true, baseOffset: 0, count: 2, duplicate: false })
    expect(m.producers.get(9)).toBeUndefined()
    expect(m.producers.get(6)).toMatchObject({ epoch: 1, lastTimestamp: 5_000, batches: [{ firstSeq: 4, lastSeq: 5, baseOffset: 0 }] })
    expect(m.locate(0, 1 << 20)).toMatchObject({ batches: [{ lastOffset: 1, maxTimestamp: 5_000 }] })
  })
})

describe('partition - idempotence', () => {
  /** Producer 7, epoch 0: batches of 2 records at sequences 0, 2, 4, … */
  const p7 = (k: number, o: { count?: number; epoch?: number } = {}) => produce({ pid: 7, epoch: o.epoch ?? 0, seq: 2 * k, count: o.count ?? 2 })

  it(`answers an exact retry of any of the last ${W} batches with the original offsets, duplicate, storing nothing`, () => {
    const m = new PartitionStateMachine()
    const first = applyAll(m, [p7(0), produce({ count: 3 }), p7(1), p7(2), p7(3), p7(4), p7(5)])
    const next = m.nextOffset
    const batches = m.batchCount
    for (const k of [1, 2, 3, 4, 5]) {
      const original = acceptedOf(first[k === 0 ? 0 : k + 1]!)
      const again = acceptedOf(m.apply(m.appliedIndex + 1, p7(k)))
      expect(again).toMatchObject({ baseOffset: original.baseOffset, count: 2, duplicate: true })
    }
    expect(m.nextOffset).toBe(next)
    expect(m.batchCount).toBe(batches)
    // and the producer carries on where it was
    expect(acceptedOf(m.apply(m.appliedIndex + 1, p7(6))).baseOffset).toBe(next)
  })

  it(`answers a retry of the ${W + 1}th-newest batch OUT_OF_ORDER_SEQUENCE, not a second copy`, () => {
    const m = new PartitionStateMachine()
    applyAll(m, [p7(0), p7(1), p7(2), p7(3), p7(4), p7(5)])
    const r = m.apply(m.appliedIndex + 1, p7(0))
    expect(errorCode(r)).toBe('OUT_OF_ORDER_SEQUENCE')
    expect(r).toMatchObject({ kind: 'produce', ok: false, count: 2 })
    expect(m.nextOffset).toBe(12)
  })

  it('answers a gap OUT_OF_ORDER_SEQUENCE and stores nothing; the in-order batch still goes through', () => {
    const m = new PartitionStateMachine()
    applyAll(m, [p7(0)])
    expect(errorCode(m.apply(2, p7(2)))).toBe('OUT_OF_ORDER_SEQUENCE') // skips 2-3
    expect(errorCode(m.apply(3, produce({ pid: 7, seq: 3 })))).toBe('OUT_OF_ORDER_SEQUENCE') // overlaps
    expect(errorCode(m.apply(4, produce({ pid: 7, seq: 1 })))).toBe('OUT_OF_ORDER_SEQUENCE') // partial retry
    expect(m.nextOffset).toBe(2)
    expect(m.batchCount).toBe(1)
    expect(acceptedOf(m.apply(5, p7(1))).baseOffset).toBe(2)
  })

  it('answers an older epoch INVALID_PRODUCER_EPOCH; a newer epoch must start at sequence 0', () => {
    const m = new PartitionStateMachine()
    applyAll(m, [p7(0, { epoch: 2 }), p7(1, { epoch: 2 })])
    expect(errorCode(m.apply(3, p7(2, { epoch: 1 })))).toBe('INVALID_PRODUCER_EPOCH')
    expect(errorCode(m.apply(4, p7(0, { epoch: 1 })))).toBe('INVALID_PRODUCER_EPOCH') // even an old duplicate
    expect(errorCode(m.apply(5, p7(2, { epoch: 3 })))).toBe('OUT_OF_ORDER_SEQUENCE')
    expect(acceptedOf(m.apply(6, p7(0, { epoch: 3 }))).baseOffset).toBe(4)
    // sequence 0 of epoch 3 is now stored; epoch 2's batches are forgotten
    expect(acceptedOf(m.apply(7, p7(0, { epoch: 3 })))).toMatchObject({ baseOffset: 4, duplicate: true })
    expect(errorCode(m.apply(8, p7(1, { epoch: 2 })))).toBe('INVALID_PRODUCER_EPOCH')
    expect(m.nextOffset).toBe(6)
  })

  it('accepts any first sequence from an unknown producer, then follows it across the int32 wrap', () => {
    const m = new PartitionStateMachine()
    const at = (seq: number, count: number) => produce({ pid: 9, seq, count })
    expect(acceptedOf(m.apply(1, at(MAX_SEQ - 3, 3))).baseOffset).toBe(0) // MAX-3 .. MAX-1
    expect(acceptedOf(m.apply(2, at(MAX_SEQ, 3))).baseOffset).toBe(3) // MAX, 0, 1
    expect(acceptedOf(m.apply(3, at(MAX_SEQ, 3)))).toMatchObject({ baseOffset: 3, duplicate: true })
    expect(errorCode(m.apply(4, at(0, 1)))).toBe('OUT_OF_ORDER_SEQUENCE')
    expect(acceptedOf(m.apply(5, at(2, 1))).baseOffset).toBe(6)
  })

  it('never deduplicates a producer without an id', () => {
    const m = new PartitionStateMachine()
    const same = produce({ count: 2 })
    const rs = applyAll(m, [same, same, same])
    expect(rs.map((r) => acceptedOf(r).baseOffset)).toEqual([0, 2, 4])
    expect(rs.every((r) => !acceptedOf(r).duplicate)).toBe(true)
    expect(m.producers.size).toBe(0)
  })

  it('keeps producers apart', () => {
    const m = new PartitionStateMachine()
    applyAll(m, [produce({ pid: 1, seq: 0 }), produce({ pid: 2, seq: 0 })])
    expect(acceptedOf(m.apply(3, produce({ pid: 1, seq: 0 })))).toMatchObject({ baseOffset: 0, duplicate: true })
    expect(acceptedOf(m.apply(4, produce({ pid: 2, seq: 0 })))).toMatchObject({ baseOffset: 1, duplicate: true })
  })

  it('still answers a duplicate whose records retention has removed', () => {
    const m = new PartitionStateMachine()
    applyAll(m, [p7(0), p7(1)])
    m.apply(3, cleanup(4))
    expect(m.batchCount).toBe(0)
    expect(acceptedOf(m.apply(4, p7(0)))).toMatchObject({ baseOffset: 0, duplicate: true })
  })

  it('an expire command forgets producers silent since before its time, on every replica alike, snapshots included', () => {
    const m = new PartitionStateMachine()
    applyAll(m, [produce({ pid: 1, seq: 0, ts: 1_000 }), produce({ pid: 2, seq: 0, ts: 9_000 })])
    expect(m.oldestProducerTimestamp()).toBe(1_000)
    expect(m.apply(3, encodeExpire(5_000))).toEqual({ kind: 'expire', producersExpired: 1 })
    expect(m.oldestProducerTimestamp()).toBe(9_000)
    // producer 1's retry is no longer recognised: stored again (why the expiry is long)
    expect(acceptedOf(m.apply(4, produce({ pid: 1, seq: 0, ts: 1_000 })))).toMatchObject({ baseOffset: 2, duplicate: false })
    // producer 2 is remembered
    expect(acceptedOf(m.apply(5, produce({ pid: 2, seq: 0, ts: 9_000 })))).toMatchObject({ baseOffset: 1, duplicate: true })
    const copy = PartitionStateMachine.restore(m.snapshot())
    expect(copy.ok && copy.value.oldestProducerTimestamp()).toBe(1_000)
    expect(m.apply(6, encodeExpire(Number.MAX_SAFE_INTEGER))).toEqual({ kind: 'expire', producersExpired: 2 })
    expect(m.oldestProducerTimestamp()).toBeNull()
  })
})

describe('partition - cleanup', () => {
  /** Batches of 3 records at Raft indexes 1..4: offsets 0-2, 3-5, 6-8, 9-11. */
  function fourBatches(): PartitionStateMachine {
    const m = new PartitionStateMachine()
    applyAll(m, [1, 2, 3, 4].map(() => produce({ count: 3, bytes: 100 })))
    return m
  }

  it('drops batches wholly below the new log start and reports the Raft index the host may compact through', () => {
    const m = fourBatches()
    expect(m.apply(5, cleanup(6))).toEqual({ kind: 'cleanup', logStartOffset: 6, dropThroughRaftIndex: 2 })
    expect(m.batchCount).toBe(2)
    expect(m.retainedBytes).toBe(200)
    expect(m.compactableRaftIndex()).toBe(2)
    m.assertInvariants()
  })

  it('keeps a batch the log start falls inside (Kafka: log start may be mid-batch)', () => {
    const m = fourBatches()
    expect(m.apply(5, cleanup(4))).toEqual({ kind: 'cleanup', logStartOffset: 4, dropThroughRaftIndex: 1 })
    expect(spans(m.locate(4, 1))).toEqual([[3, 5, 2]])
    expect(m.locate(3, 1)).toMatchObject({ kind: 'error', error: { code: 'OFFSET_OUT_OF_RANGE' }, logStartOffset: 4 })
  })

  it('never moves backwards and never past nextOffset', () => {
    const m = fourBatches()
    m.apply(5, cleanup(7))
    expect(m.apply(6, cleanup(3))).toMatchObject({ logStartOffset: 7, dropThroughRaftIndex: 2 })
    expect(m.apply(7, cleanup(7))).toMatchObject({ logStartOffset: 7 })
    expect(m.apply(8, cleanup(1000))).toEqual({ kind: 'cleanup', logStartOffset: 12, dropThroughRaftIndex: 8 })
    expect(m.batchCount).toBe(0)
    expect(m.retainedBytes).toBe(0)
    // offsets carry on after an emptied log
    expect(acceptedOf(m.apply(9, produce({ count: 2 }))).baseOffset).toBe(12)
    expect(m.compactableRaftIndex()).toBe(8)
    expect(m.logStartOffset).toBe(12)
    m.assertInvariants()
  })

  it('reports a compaction point that never moves back, with entries without records in between', () => {
    const m = new PartitionStateMachine()
    m.apply(1, produce({ count: 2 }))
    m.apply(2, new Uint8Array(0))
    m.apply(3, produce({ pid: 1, seq: 5 }))
    m.apply(4, produce({ pid: 1, seq: 5 })) // duplicate: no record in entry 4
    m.apply(6, produce({ count: 2 }))
    expect((m.apply(7, cleanup(2)) as { dropThroughRaftIndex: number }).dropThroughRaftIndex).toBe(2)
    expect((m.apply(8, cleanup(3)) as { dropThroughRaftIndex: number }).dropThroughRaftIndex).toBe(5)
    expect((m.apply(9, cleanup(5)) as { dropThroughRaftIndex: number }).dropThroughRaftIndex).toBe(9)
  })
})

describe('partition - retention', () => {
  /** Five batches of 2 records, 100 bytes each, maxTimestamp 1000, 2000, … 5000. */
  function aged(): PartitionStateMachine {
    const m = new PartitionStateMachine()
    applyAll(m, [1, 2, 3, 4, 5].map((k) => produce({ count: 2, bytes: 100, ts: 1000 * k })))
    return m
  }

  it('by time drops the leading batches older than now - retentionMs', () => {
    const m = aged()
    expect(m.retentionCutoff({ nowMs: 3500, retentionMs: 1000 })).toBe(4) // drops ts 1000 and 2000
    expect(m.retentionCutoff({ nowMs: 3000, retentionMs: 1000 })).toBe(2) // 2000 is not older than 2000
    expect(m.retentionCutoff({ nowMs: 1500, retentionMs: 1000 })).toBeNull()
    expect(m.retentionCutoff({ nowMs: 99_999, retentionMs: 0 })).toBe(10) // time retention may empty the log
    expect(m.retentionCutoff({ nowMs: 99_999, retentionMs: -1 })).toBeNull()
    expect(m.retentionCutoff({ nowMs: 99_999, retentionMs: null, retentionBytes: null })).toBeNull()
  })

  it('by time stops at the first batch that is young enough (a future timestamp holds back later ones)', () => {
    const m = new PartitionStateMachine()
    applyAll(m, [produce({ ts: 1 }), produce({ ts: 1_000_000 }), produce({ ts: 1 })])
    expect(m.retentionCutoff({ nowMs: 500_000, retentionMs: 10 })).toBe(1)
  })

  it('by size keeps the newest batches that fit, and always the newest one', () => {
    const m = aged()
    expect(m.retentionCutoff({ nowMs: 0, retentionBytes: 500 })).toBeNull()
    expect(m.retentionCutoff({ nowMs: 0, retentionBytes: 499 })).toBe(2)
    expect(m.retentionCutoff({ nowMs: 0, retentionBytes: 250 })).toBe(6)
    expect(m.retentionCutoff({ nowMs: 0, retentionBytes: 200 })).toBe(6)
    expect(m.retentionCutoff({ nowMs: 0, retentionBytes: 0 })).toBe(8) // the newest batch stays
    expect(new PartitionStateMachine().retentionCutoff({ nowMs: 0, retentionBytes: 0, retentionMs: 0 })).toBeNull()
  })

  it('takes the larger cut of time and size', () => {
    const m = aged()
    expect(m.retentionCutoff({ nowMs: 2500, retentionMs: 1000, retentionBytes: 250 })).toBe(6)
    expect(m.retentionCutoff({ nowMs: 5500, retentionMs: 1000, retentionBytes: 450 })).toBe(8)
  })

  it('proposed as cleanup, moves the log start forward and never back', () => {
    const m = aged()
    const cut = m.retentionCutoff({ nowMs: 3500, retentionMs: 1000 })!
    expect(m.apply(6, encodeCleanup(cut))).toMatchObject({ logStartOffset: 4, dropThroughRaftIndex: 2 })
    // the same policy now finds nothing more; a looser one finds nothing either
    expect(m.retentionCutoff({ nowMs: 3500, retentionMs: 1000 })).toBeNull()
    expect(m.retentionCutoff({ nowMs: 3500, retentionMs: 100_000 })).toBeNull()
    expect(m.retentionCutoff({ nowMs: 0, retentionBytes: 10_000 })).toBeNull()
    // a mid-batch log start: the batch it cuts through counts whole for size
    m.apply(7, encodeCleanup(5))
    expect(m.retainedBytes).toBe(300)
    expect(m.retentionCutoff({ nowMs: 0, retentionBytes: 200 })).toBe(6)
    expect(m.retentionCutoff({ nowMs: 0, retentionBytes: 300 })).toBeNull()
  })
})

describe('partition - locate', () => {
  /** Batches [0-0] [1-3] [4-4] [5-9] [10-11] of 100, 300, 100, 500, 200 bytes at Raft indexes 2, 4, 6, 8, 10. */
  function fiveBatches(): PartitionStateMachine {
    const m = new PartitionStateMachine()
    const sizes: [number, number][] = [[1, 100], [3, 300], [1, 100], [5, 500], [2, 200]]
    sizes.forEach(([count, bytes], k) => m.apply(2 * (k + 1), produce({ count, bytes })))
    return m
  }
  const starts = [0, 1, 4, 5, 10]

  it('starts at the batch containing the offset, for every offset', () => {
    const m = fiveBatches()
    for (let off = 0; off < 12; off++) {
      const l = m.locate(off, 1 << 30)
      const k = starts.filter((s) => s <= off).length - 1
      expect(spans(l)[0]![0], `offset ${off}`).toBe(starts[k])
      expect(spans(l)).toHaveLength(5 - k)
    }
  })

  it('stops before maxBytes but always returns at least one batch', () => {
    const m = fiveBatches()
    expect(spans(m.locate(0, 0))).toEqual([[0, 0, 2]])
    expect(spans(m.locate(0, 399))).toEqual([[0, 0, 2]])
    expect(spans(m.locate(0, 400))).toEqual([[0, 0, 2], [1, 3, 4]])
    expect(spans(m.locate(2, 500))).toEqual([[1, 3, 4], [4, 4, 6]])
    expect(spans(m.locate(5, 1))).toEqual([[5, 9, 8]]) // larger than maxBytes, alone
    expect(spans(m.locate(5, 700))).toEqual([[5, 9, 8], [10, 11, 10]])
  })

  it('stops at maxBatches', () => {
    const m = fiveBatches()
    expect(spans(m.locate(0, 1 << 30, 2))).toEqual([[0, 0, 2], [1, 3, 4]])
    expect(spans(m.locate(11, 1 << 30, 1))).toEqual([[10, 11, 10]])
  })

  it('answers none at the high watermark (long-poll), and OFFSET_OUT_OF_RANGE beyond it or below the log start', () => {
    const m = fiveBatches()
    expect(m.locate(12, 1000)).toEqual({ kind: 'none' })
    expect(m.locate(13, 1000)).toMatchObject({ kind: 'error', error: { code: 'OFFSET_OUT_OF_RANGE' }, logStartOffset: 0, highWatermark: 12 })
    expect(m.locate(-1, 1000)).toMatchObject({ kind: 'error', logStartOffset: 0, highWatermark: 12 })
    m.apply(20, cleanup(5))
    expect(m.locate(4, 1000)).toMatchObject({ kind: 'error', error: { code: 'OFFSET_OUT_OF_RANGE' }, logStartOffset: 5, highWatermark: 12 })
    expect(spans(m.locate(5, 1000))[0]).toEqual([5, 9, 8])
    expect(new PartitionStateMachine().locate(0, 10)).toEqual({ kind: 'none' })
    m.apply(21, cleanup(12))
    expect(m.locate(12, 10)).toEqual({ kind: 'none' })
    expect(m.locate(11, 10)).toMatchObject({ kind: 'error', logStartOffset: 12, highWatermark: 12 })
  })
})

describe('partition - snapshot', () => {
  /** A run with every kind of entry, cut in two at `split`. */
  function script(): Uint8Array[] {
    const out: Uint8Array[] = []
    for (let k = 0; k < 12; k++) {
      out.push(produce({ pid: 1, seq: 3 * k, count: 3, ts: 10 * k, bytes: 70 + k }))
      out.push(produce({ count: 1 + (k % 4), ts: 10 * k }))
      if (k % 3 === 0) out.push(produce({ pid: 2, epoch: k, seq: 0, count: 2 }))
      if (k % 4 === 1) out.push(produce({ pid: 1, seq: 3 * (k - 1), count: 3 })) // duplicate
      if (k % 5 === 2) out.push(produce({ pid: 1, seq: 1, count: 3 })) // out of order
      if (k % 4 === 3) out.push(cleanup(4 * k))
      if (k % 6 === 5) out.push(new Uint8Array(0))
    }
    return out
  }

  it('round-trips exactly, in the middle of a run, and both copies then answer the same further commands alike', () => {
    const cmds = script()
    for (const split of [0, 1, 7, 20, cmds.length]) {
      const a = new PartitionStateMachine()
      cmds.slice(0, split).forEach((c, i) => a.apply(2 * i + 1, c))
      const snap = a.snapshot()
      const restored = PartitionStateMachine.restore(snap)
      expect(restored.ok).toBe(true)
      const b = restored.ok ? restored.value : a
      expect(b.snapshot()).toEqual(snap)
      expect([b.appliedIndex, b.nextOffset, b.logStartOffset, b.batchCount, b.retainedBytes]).toEqual([
        a.appliedIndex,
        a.nextOffset,
        a.logStartOffset,
        a.batchCount,
        a.retainedBytes,
      ])
      expect(b.producers.toJSON()).toEqual(a.producers.toJSON())
      cmds.slice(split).forEach((c, i) => {
        const idx = 2 * (split + i) + 1
        expect(b.apply(idx, c)).toEqual(a.apply(idx, c))
      })
      for (let off = 0; off <= a.nextOffset + 1; off++) expect(b.locate(off, 300)).toEqual(a.locate(off, 300))
      expect(b.snapshot()).toEqual(a.snapshot())
    }
  })

  it('refuses truncated, padded, or inconsistent snapshots without throwing', () => {
    const a = new PartitionStateMachine()
    script().forEach((c, i) => a.apply(i + 1, c))
    const snap = a.snapshot()
    for (let n = 0; n < snap.byteLength; n++) {
      const r = PartitionStateMachine.restore(snap.subarray(0, n))
      expect(r.ok, `truncated to ${n}`).toBe(false)
    }
    expect(PartitionStateMachine.restore(new Uint8Array([...snap, 0])).ok).toBe(false)
    const wrongVersion = snap.slice()
    wrongVersion[0] = 2
    expect(PartitionStateMachine.restore(wrongVersion)).toMatchObject({ ok: false, error: { code: 'MALFORMED_SNAPSHOT' } })
    // flipping any single byte either still decodes to a state that passes every invariant, or is refused
    for (let i = 0; i < snap.byteLength; i++) {
      const bad = snap.slice()
      bad[i] ^= 0x41
      expect(() => PartitionStateMachine.restore(bad)).not.toThrow()
    }
  })

  it('snapshots a fresh machine', () => {
    const r = PartitionStateMachine.restore(new PartitionStateMachine().snapshot())
    expect(r.ok && [r.value.appliedIndex, r.value.nextOffset, r.value.batchCount]).toEqual([0, 0, 0])
  })
})
