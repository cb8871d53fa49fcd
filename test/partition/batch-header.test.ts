/**
 * The batch header as the one home of a produce's facts: src/partition's reader
 * (batch-header.ts) against src/protocol's (readBatchHeader, the leader's) on real
 * RecordBatches, and a re-framed batch applied with its own facts, not its original's.
 */
import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { PartitionStateMachine, batchFactsProblem, batchOf, decodeProduce, encodeProduce, readBatchFacts } from '../../src/partition/index.js'
import type { BatchFacts } from '../../src/partition/index.js'
import { checkBatch, encodeRecordBatch, readBatchHeader, reframe } from '../../src/protocol/record-batch.js'
import type { BatchHeader, BatchOptions } from '../../src/protocol/record-batch.js'
import type { Compression } from '../../src/protocol/compression.js'

const factsOf = (h: BatchHeader): BatchFacts => ({
  recordCount: h.recordCount,
  producerId: h.producerId,
  producerEpoch: h.producerEpoch,
  baseSequence: h.baseSequence,
  maxTimestamp: h.maxTimestamp,
})

function batch(timestamps: readonly number[], opts: BatchOptions = {}): Uint8Array {
  return encodeRecordBatch(
    timestamps.map((timestamp, i) => ({ key: `k${i}`, value: `value ${i}`, timestamp })),
    opts,
  )
}

describe('partition - the batch header reader', () => {
  it('reads what protocol reads, from every kind of batch the leader accepts', () => {
    const rng = new Prng(7)
    const codecs: Compression[] = ['none', 'gzip', 'lz4', 'zstd']
    for (let i = 0; i < 200; i++) {
      const n = rng.range(1, 30)
      const ts = Array.from({ length: n }, () => 1_795_000_000_000 + rng.range(-5_000_000, 5_000_000))
      const idempotent = rng.chance(0.5)
      const opts: BatchOptions = idempotent
        ? { compression: rng.pick(codecs), producerId: rng.range(0, 2 ** 40), producerEpoch: rng.range(0, 0x7fff), baseSequence: rng.range(0, 0x7fff_ffff) }
        : { compression: rng.pick(codecs) }
      const b = batch(ts, opts)
      const checked = checkBatch(b)
      expect(checked.ok).toBe(true)
      if (!checked.ok) continue
      expect(batchFactsProblem(checked.value)).toBeNull()
      expect(readBatchFacts(b)).toEqual({ ok: true, value: factsOf(checked.value) })
      expect(readBatchFacts(b).ok && readBatchFacts(b)).toMatchObject({ value: { maxTimestamp: Math.max(...ts), recordCount: n } })
    }
  })

  it('accepts, for any header protocol reads and the leader lets through, the same facts; and refuses what the leader refuses', () => {
    const rng = new Prng(99)
    const good = batch([1_000, 2_000, 3_000], { producerId: 5, producerEpoch: 1, baseSequence: 0 })
    let agreed = 0
    for (let i = 0; i < 20_000; i++) {
      const b = good.slice()
      // damage the header where the facts and their framing live (the CRC is not apply's to check)
      for (let k = rng.range(1, 3); k > 0; k--) b[rng.pick([8, 11, 16, 23, 26, 35, 42, 43, 44, 50, 51, 52, 53, 56, 57, 60])] = rng.int(256)
      const h = readBatchHeader(b)
      const leaderTakes = h.ok && batchFactsProblem(h.value) === null
      const f = readBatchFacts(b)
      if (leaderTakes) {
        expect(f, `mutation ${i}`).toEqual({ ok: true, value: factsOf(h.value) })
        agreed++
      } else if (h.ok) {
        expect(f.ok, `mutation ${i}: the leader refuses it, apply must too`).toBe(false)
      }
    }
    expect(agreed).toBeGreaterThan(100)
    // producer fields the CRC covers but apply could not use
    for (const bad of [{ producerId: -2 }, { producerId: 3, producerEpoch: -1, baseSequence: 0 }, { producerId: 3, producerEpoch: 0, baseSequence: -1 }]) {
      const b = batch([1], bad)
      const h = checkBatch(b)
      expect(h.ok && batchFactsProblem(h.value)).toEqual(expect.any(String))
      expect(readBatchFacts(b)).toMatchObject({ ok: false, error: { code: 'MALFORMED_BATCH' } })
    }
  })
})

describe('partition - a re-framed batch is applied with its own header', () => {
  // records 0 and 2 are kept; record 1, the youngest, is the one the leader drops (as an oversized record)
  const original = batch([1_000, 9_000, 3_000])
  const framed = reframe(original, [0, 2])
  if (!framed.ok) throw new Error(framed.error.message)

  it("its maxTimestamp drives retention and its record count the offsets, not the original's", () => {
    const m = new PartitionStateMachine()
    const r = m.apply(1, encodeProduce({ atomic: false }, framed.value))
    expect(r).toEqual({ kind: 'produce', ok: true, baseOffset: 0, count: 2, duplicate: false })
    expect(m.locate(0, 1 << 20)).toMatchObject({ kind: 'ok', batches: [{ baseOffset: 0, lastOffset: 1, maxTimestamp: 3_000 }] })
    // older than 4,000 by the kept records (3,000): dropped; by the original's 9,000 it would be kept
    expect(m.retentionCutoff({ nowMs: 5_000, retentionMs: 1_000 })).toBe(2)
    expect(m.retentionCutoff({ nowMs: 3_500, retentionMs: 1_000 })).toBeNull()
  })

  it('the index, the decoded command and the stored batch say the same', () => {
    const cmd = encodeProduce({ atomic: false }, framed.value)
    const stored = readBatchHeader(batchOf(cmd))
    const decoded = decodeProduce(cmd)
    expect(stored.ok && decoded.ok).toBe(true)
    if (!stored.ok || !decoded.ok) return
    expect(decoded.value.header).toEqual(factsOf(stored.value))
    const m = new PartitionStateMachine()
    m.apply(1, cmd)
    const loc = m.locate(0, 1 << 20)
    expect(loc.kind === 'ok' && loc.batches[0]).toMatchObject({
      lastOffset: stored.value.lastOffsetDelta,
      bytes: batchOf(cmd).byteLength,
      maxTimestamp: stored.value.maxTimestamp,
    })
    const originalHeader = readBatchHeader(original)
    expect(originalHeader.ok && originalHeader.value.maxTimestamp).toBe(9_000)
    expect(stored.value.maxTimestamp).toBe(3_000)
  })
})
