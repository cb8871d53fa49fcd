import { describe, expect, it } from 'vitest'
import { AssertionError, limits } from '../../src/base/index.js'
import { ProducerState, lastSequenceOf, nextSequence } from '../../src/partition/index.js'

const MAX = 0x7fff_ffff
const W = limits.produce.producerBatchesRemembered

/** A state where producer `pid` at `epoch` appended `n` batches of `count` from sequence `from`, batch k at offset 100k. */
function stateWith(pid: number, epoch: number, n: number, count = 2, from = 0): ProducerState {
  const s = new ProducerState()
  for (let k = 0; k < n; k++) s.record(pid, epoch, (from + k * count) % (MAX + 1), count, 100 * k, k)
  return s
}

describe('partition - producer state sequences', () => {
  it('wraps sequences from INT32_MAX to 0', () => {
    expect(nextSequence(0)).toBe(1)
    expect(nextSequence(MAX)).toBe(0)
    expect(lastSequenceOf(5, 1)).toBe(5)
    expect(lastSequenceOf(5, 3)).toBe(7)
    expect(lastSequenceOf(MAX, 1)).toBe(MAX)
    expect(lastSequenceOf(MAX - 1, 3)).toBe(0)
    expect(lastSequenceOf(MAX, 2)).toBe(0)
  })

  it('accepts any sequence from a producer it has no state for, and never checks producer -1', () => {
    const s = new ProducerState()
    expect(s.check(7, 4, 12345, 3)).toEqual({ kind: 'new' })
    expect(s.check(-1, -1, -1, 3)).toEqual({ kind: 'new' })
    s.record(-1, -1, -1, 3, 0, 0)
    expect(s.size).toBe(0)
  })

  it('wants the next sequence in the same epoch', () => {
    const s = stateWith(1, 0, 2) // sequences 0-1, 2-3
    expect(s.check(1, 0, 4, 1)).toEqual({ kind: 'new' })
    expect(s.check(1, 0, 5, 1)).toMatchObject({ kind: 'error', error: { code: 'OUT_OF_ORDER_SEQUENCE' } })
    expect(s.check(1, 0, 3, 2)).toMatchObject({ kind: 'error', error: { code: 'OUT_OF_ORDER_SEQUENCE' } })
  })

  it('finds an exact (firstSeq, lastSeq) match among the last batches, and only an exact one', () => {
    const s = stateWith(1, 0, 3) // 0-1 @0, 2-3 @100, 4-5 @200
    expect(s.check(1, 0, 0, 2)).toEqual({ kind: 'duplicate', baseOffset: 0 })
    expect(s.check(1, 0, 2, 2)).toEqual({ kind: 'duplicate', baseOffset: 100 })
    expect(s.check(1, 0, 4, 2)).toEqual({ kind: 'duplicate', baseOffset: 200 })
    expect(s.check(1, 0, 2, 1).kind).toBe('error') // same start, different end
    expect(s.check(1, 0, 2, 4).kind).toBe('error')
    // same sequences, other epoch: not a duplicate
    expect(s.check(1, 1, 0, 2)).toEqual({ kind: 'new' })
  })

  it(`remembers only the last ${W} batches`, () => {
    const s = stateWith(1, 0, W + 1)
    expect(s.get(1)!.batches).toHaveLength(W)
    expect(s.check(1, 0, 0, 2)).toMatchObject({ kind: 'error', error: { code: 'OUT_OF_ORDER_SEQUENCE' } })
    expect(s.check(1, 0, 2, 2)).toEqual({ kind: 'duplicate', baseOffset: 100 })
  })

  it('answers an older epoch INVALID_PRODUCER_EPOCH, and a newer one must start at 0', () => {
    const s = stateWith(1, 5, 2)
    expect(s.check(1, 4, 4, 1)).toMatchObject({ kind: 'error', error: { code: 'INVALID_PRODUCER_EPOCH' } })
    expect(s.check(1, 4, 0, 2)).toMatchObject({ kind: 'error', error: { code: 'INVALID_PRODUCER_EPOCH' } })
    expect(s.check(1, 6, 4, 1)).toMatchObject({ kind: 'error', error: { code: 'OUT_OF_ORDER_SEQUENCE' } })
    expect(s.check(1, 9, 0, 1)).toEqual({ kind: 'new' })
    s.record(1, 9, 0, 1, 500, 0)
    expect(s.get(1)).toMatchObject({ epoch: 9, batches: [{ firstSeq: 0, lastSeq: 0, baseOffset: 500 }] })
    expect(s.check(1, 5, 0, 2).kind).toBe('error') // the old epoch's batches are gone with it
  })

  it('follows sequences across the wrap', () => {
    const s = stateWith(1, 0, 2, 2, MAX - 2) // MAX-2..MAX-1, then MAX..0
    expect(s.get(1)!.batches.map((b) => [b.firstSeq, b.lastSeq])).toEqual([
      [MAX - 2, MAX - 1],
      [MAX, 0],
    ])
    expect(s.check(1, 0, 1, 5)).toEqual({ kind: 'new' })
    expect(s.check(1, 0, MAX, 2)).toEqual({ kind: 'duplicate', baseOffset: 100 })
    expect(s.check(1, 0, 0, 1).kind).toBe('error')
  })

  it('record asserts that the batch was new', () => {
    const s = stateWith(1, 0, 1)
    expect(() => s.record(1, 0, 5, 1, 10, 0)).toThrow(AssertionError)
    expect(() => s.record(1, 0, 0, 2, 10, 0)).toThrow(AssertionError) // a duplicate
    expect(() => s.record(1, 0, 2, 1, 0, 0)).toThrow(AssertionError) // offset not after the last
  })

  it('expire forgets the producers last heard of before the time, and only those', () => {
    const s = new ProducerState()
    expect(s.oldestTimestamp()).toBeNull()
    s.record(1, 0, 0, 1, 0, 1_000)
    s.record(2, 0, 0, 1, 1, 5_000)
    s.record(1, 0, 1, 1, 2, 3_000) // producer 1's last batch is what counts, not its first
    expect(s.oldestTimestamp()).toBe(3_000)
    expect(s.expire(3_000)).toBe(0) // strictly before
    expect(s.expire(3_001)).toBe(1)
    expect(s.get(1)).toBeUndefined()
    expect(s.get(2)).toMatchObject({ lastTimestamp: 5_000 })
    expect(s.oldestTimestamp()).toBe(5_000)
    // a forgotten producer is new again, whatever its sequence (KIP-360)
    expect(s.check(1, 0, 7, 1)).toEqual({ kind: 'new' })
    expect(s.check(2, 0, 7, 1).kind).toBe('error')
  })

  it('round-trips through toJSON and fromJSON, sorted by producer id', () => {
    const s = new ProducerState()
    for (const pid of [9, 2, 5]) for (let k = 0; k < pid; k++) s.record(pid, pid, k, 1, 10 * k + pid, 1000 + k)
    const json = s.toJSON()
    expect(json.map((e) => e.producerId)).toEqual([2, 5, 9])
    const back = ProducerState.fromJSON(JSON.parse(JSON.stringify(json)))
    expect(back.ok && back.value.toJSON()).toEqual(json)
    expect(json[2]).toMatchObject({ producerId: 9, epoch: 9, lastTimestamp: 1008 })
  })

  it('fromJSON refuses state that breaks the invariants', () => {
    const b = (firstSeq: number, lastSeq: number, baseOffset: number) => ({ firstSeq, lastSeq, baseOffset })
    const e = (producerId: number, batches: ReturnType<typeof b>[], epoch = 0) => ({ producerId, epoch, lastTimestamp: 0, batches })
    const bad = [
      [e(1, [])],
      [e(1, [b(0, 0, 0), b(1, 1, 1), b(2, 2, 2), b(3, 3, 3), b(4, 4, 4), b(5, 5, 5)])],
      [e(1, [b(0, 0, 0), b(2, 2, 1)])], // gap
      [e(1, [b(0, 0, 5), b(1, 1, 5)])], // offsets not increasing
      [e(2, [b(0, 0, 0)]), e(1, [b(0, 0, 0)])], // unsorted
      [e(1, [b(0, 0, 0)], -1)],
      [e(-1, [b(0, 0, 0)])],
      [e(1, [b(-1, 0, 0)])],
    ]
    for (const entries of bad) expect(ProducerState.fromJSON(entries).ok, JSON.stringify(entries)).toBe(false)
    expect(ProducerState.fromJSON([e(1, [b(MAX, 0, 0), b(1, 1, 1)])]).ok).toBe(true)
  })
})
