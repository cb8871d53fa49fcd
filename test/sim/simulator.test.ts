import { describe, expect, it } from 'vitest'
import { runSimulation } from './simulator.js'
import { describeFailure, sweep } from './sweep.js'

// The default suite's fixed slice; `npm run sim -- --seeds N` runs the long sweep.
const SLICE_3 = 500
const SLICE_5 = 250

describe('simulator - safety and liveness', () => {
  it(`holds for seeds 1..${SLICE_3} with 3 voters`, () => {
    const r = sweep({ first: 1, count: SLICE_3, nodes: 3 })
    if (r.failures.length > 0) expect.fail(describeFailure(r.failures[0]!, 60))
    expect(r.seeds).toBe(SLICE_3)
    // the slice must really exercise the faults it claims to
    expect(r.totals.crashes).toBeGreaterThan(100)
    expect(r.totals.partitions).toBeGreaterThan(50)
    expect(r.totals.snapshotsInstalled).toBeGreaterThan(10)
    // restarts whose applied state, or snapshot, is past the unsynced commit index they lost (issue 13)
    expect(r.totals.restartsAppliedAhead).toBeGreaterThan(100)
    expect(r.totals.restartsSnapshotAhead).toBeGreaterThan(10)
    expect(r.totals.confChanges).toBeGreaterThan(10)
    expect(r.totals.transfers).toBeGreaterThan(10)
    expect(r.totals.acked).toBeGreaterThan(1000)
  })

  it(`holds for seeds 1..${SLICE_5} with 5 voters`, () => {
    const r = sweep({ first: 1, count: SLICE_5, nodes: 5 })
    if (r.failures.length > 0) expect.fail(describeFailure(r.failures[0]!, 60))
    expect(r.seeds).toBe(SLICE_5)
    expect(r.totals.acked).toBeGreaterThan(1000)
    expect(r.totals.restartsAppliedAhead).toBeGreaterThan(50)
    expect(r.totals.restartsSnapshotAhead).toBeGreaterThan(5)
  })
})

describe('simulator - determinism', () => {
  it('replays a seed to the same trace and the same numbers', () => {
    const a = runSimulation({ seed: 4242, nodes: 5, trace: true })
    const b = runSimulation({ seed: 4242, nodes: 5, trace: true })
    expect(a.trace.length).toBeGreaterThan(1000)
    expect(b.trace).toEqual(a.trace)
    expect(b.stats).toEqual(a.stats)
  })

  it('different seeds make different histories', () => {
    const a = runSimulation({ seed: 1, nodes: 3 })
    const b = runSimulation({ seed: 2, nodes: 3 })
    expect(b.stats).not.toEqual(a.stats)
  })
})

describe('simulator - catches a broken core', () => {
  it('reports votes granted without the up-to-date check (§5.4.1), with the seed', () => {
    const r = sweep({ first: 1, count: 60, nodes: 3, unsafe: { voteWithoutLogCheck: true } })
    expect(r.failures.length).toBe(1)
    const f = r.failures[0]!
    expect(f.violation!.kind).toMatch(/leader completeness|state machine safety|log matching|AssertionError/)
    const story = describeFailure(f, 20)
    expect(story).toContain(`seed ${f.seed}`)
    expect(story).toContain(`--seed ${f.seed}`)
  })

  it('reports a leader committing a previous-term entry by counting replicas (Figure 8), with the seed', () => {
    const r = sweep({ first: 1, count: 800, nodes: 3, profile: 'churn', unsafe: { commitPriorTermByCounting: true } })
    expect(r.failures.length).toBe(1)
    const f = r.failures[0]!
    expect(f.violation!.kind).toMatch(/leader completeness|state machine safety|AssertionError/)
    expect(describeFailure(f, 20, { commitPriorTermByCounting: true })).toContain(`--seed ${f.seed} --nodes 3 --profile churn --unsafe commitPriorTermByCounting`)
    // the same seed is safe with the correct rule
    expect(runSimulation({ seed: f.seed, nodes: 3, profile: 'churn' }).ok).toBe(true)
  })

  it('reports followers acknowledging appends before they are durable', () => {
    const r = sweep({ first: 1, count: 100, nodes: 3, unsafe: { ackBeforePersist: true } })
    expect(r.failures.length).toBe(1)
    expect(r.failures[0]!.violation!.message.length).toBeGreaterThan(0)
  })
})
