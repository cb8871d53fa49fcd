/**
 * Random runs: seeded sequences of produce (in order, retried, with gaps, with old and
 * new epochs, without a producer id; in command format 2 and now and then 1), cleanup, retention, noop, invalid and skipped
 * entries, applied to two state machines (one of them now and then replaced by a restore
 * of its own snapshot) and to a naive reference model: a plain array of every record and
 * every batch, with Kafka's sequence rules written out the long way. All three must agree
 * on every answer, and the two machines on every locate and on their final snapshots.
 */
import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { PartitionStateMachine } from '../../src/partition/index.js'
import type { ApplyResult, LocateResult, RetentionPolicy } from '../../src/partition/index.js'
import { BATCH_HEADER_BYTES, cleanup, produce } from './support.js'

const MAX_SEQ = 0x7fff_ffff
const WINDOW = 5

interface ModelBatch {
  base: number
  last: number
  raftIndex: number
  bytes: number
  ts: number
}
interface ModelSent {
  first: number
  last: number
  base: number
}
type Expected =
  | { kind: 'produce'; ok: true; baseOffset: number; count: number; duplicate: boolean }
  | { kind: 'produce'; ok: false; code: string }
  | { kind: 'cleanup'; logStartOffset: number; dropThroughRaftIndex: number }

/** The reference: everything kept forever, everything searched linearly. */
class Model {
  /** records[i] is offset i: which Raft entry holds it. */
  records: { offset: number; raftIndex: number }[] = []
  batches: ModelBatch[] = []
  start = 0
  applied = 0
  producers = new Map<number, { epoch: number; sent: ModelSent[] }>()

  get next(): number {
    return this.records.length
  }

  retained(): ModelBatch[] {
    return this.batches.filter((b) => b.last >= this.start)
  }

  produce(raftIndex: number, pid: number, epoch: number, seq: number, count: number, bytes: number, ts: number): Expected {
    this.applied = raftIndex
    const p = this.producers.get(pid)
    const last = (seq + count - 1) % (MAX_SEQ + 1)
    if (pid >= 0 && p) {
      if (epoch < p.epoch) return { kind: 'produce', ok: false, code: 'INVALID_PRODUCER_EPOCH' }
      if (epoch > p.epoch && seq !== 0) return { kind: 'produce', ok: false, code: 'OUT_OF_ORDER_SEQUENCE' }
      if (epoch === p.epoch) {
        const dup = p.sent.slice(-WINDOW).find((s) => s.first === seq && s.last === last)
        if (dup) return { kind: 'produce', ok: true, baseOffset: dup.base, count, duplicate: true }
        const prevLast = p.sent[p.sent.length - 1]!.last
        const expected = prevLast === MAX_SEQ ? 0 : prevLast + 1
        if (seq !== expected) return { kind: 'produce', ok: false, code: 'OUT_OF_ORDER_SEQUENCE' }
      }
    }
    const base = this.next
    for (let i = 0; i < count; i++) this.records.push({ offset: base + i, raftIndex })
    this.batches.push({ base, last: base + count - 1, raftIndex, bytes, ts })
    if (pid >= 0) {
      if (!p || p.epoch !== epoch) this.producers.set(pid, { epoch, sent: [] })
      this.producers.get(pid)!.sent.push({ first: seq, last, base })
    }
    return { kind: 'produce', ok: true, baseOffset: base, count, duplicate: false }
  }

  cleanup(raftIndex: number, offset: number): Expected {
    this.applied = raftIndex
    this.start = Math.max(this.start, Math.min(offset, this.next))
    const kept = this.retained()
    return { kind: 'cleanup', logStartOffset: this.start, dropThroughRaftIndex: kept.length ? kept[0]!.raftIndex - 1 : this.applied }
  }

  locate(offset: number, maxBytes: number, maxBatches: number): LocateResult {
    if (offset < this.start || offset > this.next) {
      return {
        kind: 'error',
        error: { code: 'OFFSET_OUT_OF_RANGE', message: '' },
        logStartOffset: this.start,
        highWatermark: this.next,
      }
    }
    if (offset === this.next) return { kind: 'none' }
    const holder = this.records[offset]!.raftIndex
    const kept = this.retained()
    const from = kept.findIndex((b) => b.raftIndex === holder)
    const out = [kept[from]!]
    let sum = kept[from]!.bytes
    for (const b of kept.slice(from + 1)) {
      if (out.length >= maxBatches || sum + b.bytes > maxBytes) break
      sum += b.bytes
      out.push(b)
    }
    return {
      kind: 'ok',
      batches: out.map((b) => ({ baseOffset: b.base, lastOffset: b.last, raftIndex: b.raftIndex, bytes: b.bytes, maxTimestamp: b.ts })),
    }
  }

  retentionCutoff(p: RetentionPolicy): number | null {
    const kept = this.retained()
    const cuts = [this.start]
    if (p.retentionMs != null && p.retentionMs >= 0) {
      const young = kept.findIndex((b) => b.ts >= p.nowMs - p.retentionMs!)
      cuts.push(young < 0 ? this.next : kept[young]!.base)
    }
    if (p.retentionBytes != null && p.retentionBytes >= 0 && kept.length > 0) {
      const sumFrom = (i: number) => kept.slice(i).reduce((s, b) => s + b.bytes, 0)
      let i = 0
      while (i < kept.length - 1 && sumFrom(i) > p.retentionBytes) i++
      cuts.push(kept[i]!.base)
    }
    const cut = Math.max(...cuts)
    return cut > this.start ? cut : null
  }
}

/** What a result must look like. */
function expectAgrees(got: ApplyResult, want: Expected, what: string): void {
  if (want.kind === 'produce' && want.ok) {
    expect(got, what).toEqual(want)
  } else if (want.kind === 'produce') {
    expect(got, what).toMatchObject({ kind: 'produce', ok: false, error: { code: want.code } })
  } else {
    expect(got, what).toEqual(want)
  }
}

interface Client {
  pid: number
  epoch: number
  nextSeq: number
  sent: { epoch: number; seq: number; count: number }[]
}

function run(seed: number, steps: number): void {
  const rng = new Prng(seed)
  let a = new PartitionStateMachine()
  let b = new PartitionStateMachine()
  const model = new Model()
  // producer 2 starts near the top of the sequence space, to cross the wrap
  const clients: Client[] = [0, 1, 2].map((pid) => ({ pid, epoch: 0, nextSeq: pid === 2 ? MAX_SEQ - 6 : 0, sent: [] }))
  let raftIndex = 0
  let clock = 1_000_000
  const counts = { new: 0, duplicate: 0, error: 0, cleanup: 0, restore: 0 }

  for (let step = 0; step < steps; step++) {
    raftIndex += rng.chance(0.1) ? rng.range(2, 4) : 1
    clock += rng.int(200)
    const what = `seed ${seed} step ${step} raft ${raftIndex}`
    const roll = rng.float()
    let data: Uint8Array
    let want: Expected | null = null
    const count = rng.chance(0.1) ? rng.range(10, 60) : rng.range(1, 4)
    const bytes = rng.range(BATCH_HEADER_BYTES, 400)
    // one entry in five in format 1, as a node upgraded with entries left to re-apply has them
    const v1 = raftIndex % 5 === 0
    const ts = clock - rng.int(300)

    const idempotent = (c: Client, epoch: number, seq: number, n: number): void => {
      data = produce({ pid: c.pid, epoch, seq, count: n, bytes, ts, v1 })
      want = model.produce(raftIndex, c.pid, epoch, seq, n, bytes, ts)
      c.sent.push({ epoch, seq, count: n })
    }

    if (roll < 0.3) {
      const c = rng.pick(clients)
      idempotent(c, c.epoch, c.nextSeq, count)
    } else if (roll < 0.45) {
      const c = rng.pick(clients)
      const old = c.sent.length ? c.sent[c.sent.length - 1 - rng.int(Math.min(c.sent.length, 8))]! : { epoch: c.epoch, seq: c.nextSeq, count }
      idempotent(c, old.epoch, old.seq, old.count)
    } else if (roll < 0.52) {
      const c = rng.pick(clients)
      idempotent(c, c.epoch, (c.nextSeq + rng.range(1, 3)) % (MAX_SEQ + 1), count)
    } else if (roll < 0.57) {
      const c = rng.pick(clients)
      c.epoch++
      c.nextSeq = 0
      idempotent(c, c.epoch, rng.chance(0.85) ? 0 : rng.range(1, 5), count)
    } else if (roll < 0.6) {
      const c = rng.pick(clients)
      idempotent(c, Math.max(0, c.epoch - 1), c.nextSeq, count)
    } else if (roll < 0.75) {
      data = produce({ count, bytes, ts, v1 })
      want = model.produce(raftIndex, -1, -1, -1, count, bytes, ts)
    } else if (roll < 0.8) {
      const off = Math.max(0, rng.range(model.start - 3, model.next + 3))
      data = cleanup(off)
      want = model.cleanup(raftIndex, off)
    } else if (roll < 0.86) {
      const policy: RetentionPolicy = {
        nowMs: clock,
        retentionMs: rng.chance(0.6) ? rng.int(5000) : null,
        retentionBytes: rng.chance(0.6) ? rng.int(4000) : null,
      }
      const cut = a.retentionCutoff(policy)
      expect(cut, `${what} retention`).toBe(model.retentionCutoff(policy))
      expect(b.retentionCutoff(policy), `${what} retention`).toBe(cut)
      if (cut === null) {
        data = new Uint8Array(0)
        model.applied = raftIndex
      } else {
        data = cleanup(cut)
        want = model.cleanup(raftIndex, cut)
      }
    } else if (roll < 0.9) {
      data = new Uint8Array(0)
      model.applied = raftIndex
    } else if (roll < 0.92) {
      data = rng.pick([new Uint8Array([0x09]), new Uint8Array([0x01, 0x02, 0x03]), new Uint8Array([0x02]), new Uint8Array([0x04, 0x00, 0x01])])
      model.applied = raftIndex
    } else {
      // a single message or batch from no producer, sent twice
      data = produce({ count, bytes, ts, v1 })
      const first = model.produce(raftIndex, -1, -1, -1, count, bytes, ts)
      expectAgrees(a.apply(raftIndex, data), first, what)
      expectAgrees(b.apply(raftIndex, data), first, what)
      raftIndex++
      want = model.produce(raftIndex, -1, -1, -1, count, bytes, ts)
    }

    const ra = a.apply(raftIndex, data!)
    const rb = b.apply(raftIndex, data!)
    expect(rb, what).toEqual(ra)
    if (want !== null) expectAgrees(ra, want, what)
    else expect(['noop', 'invalid'], what).toContain(ra.kind)

    // clients learn their outcome: an accepted new batch moves their next sequence on
    const w = want as Expected | null
    if (w?.kind === 'produce') {
      if (w.ok && !w.duplicate) counts.new++
      else if (w.ok) counts.duplicate++
      else counts.error++
    }
    if (w?.kind === 'cleanup') counts.cleanup++
    for (const c of clients) {
      const p = model.producers.get(c.pid)
      if (p) {
        c.epoch = Math.max(c.epoch, p.epoch)
        const last = p.sent[p.sent.length - 1]!.last
        if (p.epoch === c.epoch) c.nextSeq = last === MAX_SEQ ? 0 : last + 1
      }
    }

    // locate agrees with the model at the edges and at random offsets
    const probes = [model.start - 1, model.start, model.next - 1, model.next, model.next + 1, rng.range(model.start, Math.max(model.start, model.next - 1))]
    for (const off of probes) {
      const maxBytes = rng.pick([0, 1, 200, 1000, 1 << 20])
      const maxBatches = rng.pick([1, 3, 1000])
      const la = a.locate(off, maxBytes, maxBatches)
      expect(b.locate(off, maxBytes, maxBatches), `${what} locate ${off}`).toEqual(la)
      const lm = model.locate(off, maxBytes, maxBatches)
      if (lm.kind === 'error') expect(la, `${what} locate ${off}`).toMatchObject({ ...lm, error: { code: lm.error.code } })
      else expect(la, `${what} locate ${off}`).toEqual(lm)
    }
    expect([a.nextOffset, a.logStartOffset, a.appliedIndex]).toEqual([model.next, model.start, raftIndex])

    if (rng.chance(0.03)) {
      const r = PartitionStateMachine.restore(b.snapshot())
      expect(r.ok).toBe(true)
      if (r.ok) b = r.value
      counts.restore++
    }
    if (step % 50 === 0) {
      a.assertInvariants()
      b.assertInvariants()
    }
    if (rng.chance(0.01)) {
      // and sometimes the other way round: a restored copy becomes the primary
      const r = PartitionStateMachine.restore(a.snapshot())
      if (r.ok) a = r.value
    }
  }
  expect(b.snapshot()).toEqual(a.snapshot())
  // each run exercises every kind of answer
  expect(counts.new, `seed ${seed}`).toBeGreaterThan(0)
  expect(counts.duplicate, `seed ${seed}`).toBeGreaterThan(0)
  expect(counts.error, `seed ${seed}`).toBeGreaterThan(0)
  expect(counts.cleanup, `seed ${seed}`).toBeGreaterThan(0)
}

describe('partition - model', () => {
  const SEEDS = 60
  it(`agrees with a naive reference and with its own replica over ${SEEDS} seeded runs`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) run(seed, 400)
  })

  it('a seed can be replayed on its own (seed from RAFTMQ_SEED)', () => {
    run(Number(process.env['RAFTMQ_SEED'] ?? 4242), 1000)
  })
})
