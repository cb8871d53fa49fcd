/**
 * The simulated network: messages are delivered after a random delay (which reorders
 * them), may be lost or duplicated, and are dropped at delivery time when a partition
 * separates sender and receiver. A partition is a set of blocked directed links, so
 * one-way partitions are as easy as symmetric ones.
 */
import type { Prng } from '../../src/base/index.js'
import type { Message, NodeId } from '../../src/raft/index.js'

export interface NetworkFaults {
  lossRate: number
  duplicateRate: number
  delayMax: number
}

export class SimNetwork {
  readonly #prng: Prng
  /** In-flight messages by delivery time. */
  readonly #due = new Map<number, Message[]>()
  /** Blocked directed links, as from * 1000 + to. */
  readonly #blocked = new Set<number>()
  faults: NetworkFaults
  sent = 0
  lost = 0
  duplicated = 0
  blockedDrops = 0

  constructor(prng: Prng, faults: NetworkFaults) {
    this.#prng = prng
    this.faults = faults
  }

  send(now: number, m: Message): void {
    this.sent++
    const f = this.faults
    if (this.#prng.chance(f.lossRate)) {
      this.lost++
      return
    }
    this.#enqueue(now + this.#prng.range(1, f.delayMax), m)
    if (this.#prng.chance(f.duplicateRate)) {
      this.duplicated++
      this.#enqueue(now + this.#prng.range(1, f.delayMax), m)
    }
  }

  #enqueue(at: number, m: Message): void {
    const q = this.#due.get(at)
    if (q) q.push(m)
    else this.#due.set(at, [m])
  }

  /** Messages due at `now` that the partition lets through, in send order. */
  take(now: number): Message[] {
    const q = this.#due.get(now)
    if (!q) return []
    this.#due.delete(now)
    if (this.#blocked.size === 0) return q
    const out: Message[] = []
    for (const m of q) {
      if (this.#blocked.has(m.from * 1000 + m.to)) this.blockedDrops++
      else out.push(m)
    }
    return out
  }

  /** Splits the nodes into two sides; `oneWay` blocks only side A -> side B. */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[], oneWay: boolean): void {
    this.#blocked.clear()
    for (const a of sideA) {
      for (const b of sideB) {
        this.#blocked.add(a * 1000 + b)
        if (!oneWay) this.#blocked.add(b * 1000 + a)
      }
    }
  }

  heal(): void {
    this.#blocked.clear()
  }

  isPartitioned(): boolean {
    return this.#blocked.size > 0
  }

  inFlight(): number {
    let n = 0
    for (const q of this.#due.values()) n += q.length
    return n
  }
}
