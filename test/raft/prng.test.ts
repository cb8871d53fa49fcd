import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'

const seq = (p: Prng, n: number): number[] => Array.from({ length: n }, () => p.nextU32())

describe('base prng - determinism', () => {
  // the core is deterministic: election jitter comes from a seeded Prng, so a run replays from its seed
  it('the same seed gives the same sequence', () => {
    expect(seq(new Prng(42), 100)).toEqual(seq(new Prng(42), 100))
    const a = new Prng(7)
    const b = new Prng(7)
    expect([a.float(), a.int(10), a.range(3, 9), a.chance(0.5)]).toEqual([b.float(), b.int(10), b.range(3, 9), b.chance(0.5)])
  })

  // §5.2: randomized election timeouts must differ between nodes (their Prngs are forked from seeds)
  it('different seeds give different sequences, including seeds that differ only above 32 bits', () => {
    expect(seq(new Prng(1), 20)).not.toEqual(seq(new Prng(2), 20))
    expect(seq(new Prng(1), 20)).not.toEqual(seq(new Prng(1 + 2 ** 32), 20))
    expect(seq(new Prng(0), 20)).not.toEqual(seq(new Prng(2 ** 32), 20))
    // and a sequence does not repeat itself quickly
    expect(new Set(seq(new Prng(3), 1000)).size).toBe(1000)
  })

  // §5.2: each node gets its own jitter source, reproducibly
  it('fork gives a generator that depends only on the parent state', () => {
    const f1 = new Prng(5).fork()
    const f2 = new Prng(5).fork()
    expect(seq(f1, 10)).toEqual(seq(f2, 10))
    const p = new Prng(5)
    const g1 = p.fork()
    const g2 = p.fork()
    expect(seq(g1, 10)).not.toEqual(seq(g2, 10))
  })
})

describe('base prng - bounds', () => {
  // §5.2: the election timeout jitter is drawn from these
  it('nextU32 is an unsigned 32-bit integer and float is in [0, 1)', () => {
    const p = new Prng(9)
    let bad = 0
    for (let i = 0; i < 2000; i++) {
      const u = p.nextU32()
      if (!(Number.isInteger(u) && u >= 0 && u < 2 ** 32)) bad++
      const f = p.float()
      if (!(f >= 0 && f < 1)) bad++
    }
    expect(bad).toBe(0)
  })

  // §5.2: the timeout is electionTicks + int(electionTicks), so int must cover [0, n) exactly
  it('int(n) stays in [0, n) and reaches every value', () => {
    const p = new Prng(11)
    for (const n of [1, 2, 7, 10]) {
      const seen = new Set<number>()
      for (let i = 0; i < 500; i++) seen.add(p.int(n))
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, k) => k))
    }
    expect(p.int(2 ** 40)).toBeLessThan(2 ** 40)
  })

  // a bad bound is a programming error, reported at once
  it('int rejects a bound that is not a positive integer', () => {
    const p = new Prng(1)
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => p.int(bad)).toThrow(RangeError)
  })

  // helpers used by the simulator to pick faults
  it('range is inclusive on both ends, pick and chance behave', () => {
    const p = new Prng(13)
    const seen = new Set<number>()
    for (let i = 0; i < 300; i++) seen.add(p.range(-2, 2))
    expect([...seen].sort((a, b) => a - b)).toEqual([-2, -1, 0, 1, 2])
    expect(p.range(4, 4)).toBe(4)
    expect(['x', 'y', 'z']).toContain(p.pick(['x', 'y', 'z']))
    expect(() => p.pick([])).toThrow(RangeError)
    const draws = Array.from({ length: 50 }, () => [p.chance(0), p.chance(1)])
    expect(draws.every(([no, yes]) => no === false && yes === true)).toBe(true)
  })
})
