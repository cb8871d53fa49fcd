/**
 * A small seeded pseudo-random generator (xoshiro128**, seeded through splitmix32).
 * Everything that must replay from a seed (election jitter, the simulator's faults)
 * takes one of these instead of Math.random.
 *
 * Imports nothing.
 */

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0
  let z = state.s
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

export class Prng {
  #a: number
  #b: number
  #c: number
  #d: number

  /** `seed` may be any safe integer; both halves of it feed the state. */
  constructor(seed: number) {
    const st = { s: (seed >>> 0) ^ Math.floor(seed / 0x1_0000_0000) }
    this.#a = splitmix32(st)
    this.#b = splitmix32(st)
    this.#c = splitmix32(st)
    this.#d = splitmix32(st)
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0
    const t = this.#b << 9
    this.#c ^= this.#a
    this.#d ^= this.#b
    this.#b ^= this.#c
    this.#a ^= this.#d
    this.#c ^= t
    this.#d = rotl(this.#d, 11)
    return result
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.nextU32() / 0x1_0000_0000
  }

  /** A uniform integer in [0, n). `n` must be a positive integer. */
  int(n: number): number {
    if (!(n > 0) || !Number.isInteger(n)) throw new RangeError(`Prng.int: bad bound ${n}`)
    return Math.floor(this.float() * n)
  }

  /** A uniform integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Prng.pick: empty list')
    return items[this.int(items.length)] as T
  }

  /** A new generator whose sequence depends only on this one's next draw. */
  fork(): Prng {
    return new Prng(this.nextU32() * 0x1_0000 + (this.nextU32() & 0xffff))
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}
