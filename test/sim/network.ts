/**
 * The simulated network: messages are delivered after a random delay (which reorders
 * them), may be lost or duplicated, and are dropped at delivery time when a partition
 * separates sender and receiver. A partition is a set of blocked directed links, so
 * one-way partitions are as easy as symmetric ones.
 */
import type { Prng } from '../../src/base/index.js'
import type { Message, NodeId } from '../../src/raft/index.js'
import type { SimOptions } from './options.js'

export interface NetworkFaults {
  lossRate: number
  duplicateRate: number
  delayMax: number
  /** Share of messages held back to a delay in (delayMax, tailMax] (HarshOptions). */
  tailShare: number
  tailMax: number
  /** A duplicated copy takes that tail with this chance. */
  dupTailShare: number
  /** Share of partitions that hold messages back (TCP retransmitting) instead of dropping them: they arrive after the heal. */
  holdShare: number
}

/** A seed's network faults for the safety phase. */
export function networkFaults(o: SimOptions): NetworkFaults {
  const h = o.harsh
  return { lossRate: o.lossRate, duplicateRate: o.duplicateRate, delayMax: o.delayMax, tailShare: h.tailShare, tailMax: h.tailMax, dupTailShare: h.dupTailShare, holdShare: h.holdShare }
}

/** After healing: nothing lost, duplicated or held back, delays short. */
export function healedFaults(o: SimOptions): NetworkFaults {
  return { lossRate: 0, duplicateRate: 0, delayMax: Math.min(o.delayMax, 5), tailShare: 0, tailMax: 0, dupTailShare: 0, holdShare: 0 }
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

  /** Decides the long tail and held partitions only: consulted only when they are on, so the main draws stay as they were. */
  readonly #tail: Prng
  /** Messages the current partition holds back, and whether it does. */
  #holding = false
  #heldBack: Message[] = []
  held = 0

  constructor(prng: Prng, tail: Prng, faults: NetworkFaults) {
    this.#prng = prng
    this.#tail = tail
    this.faults = faults
  }

  send(now: number, m: Message): void {
    this.sent++
    const f = this.faults
    if (this.#prng.chance(f.lossRate)) {
      this.lost++
      return
    }
    this.#enqueue(now + this.#delay(this.#prng.range(1, f.delayMax), f.tailShare), m)
    if (this.#prng.chance(f.duplicateRate)) {
      this.duplicated++
      this.#enqueue(now + this.#delay(this.#prng.range(1, f.delayMax), f.dupTailShare), m)
    }
  }

  #delay(usual: number, tailShare: number): number {
    const f = this.faults
    if (f.tailShare === 0 || !this.#tail.chance(tailShare)) return usual
    this.held++
    return this.#tail.range(f.delayMax + 1, Math.max(f.delayMax + 1, f.tailMax))
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
      if (!this.#blocked.has(m.from * 1000 + m.to)) out.push(m)
      else if (this.#holding) this.#heldBack.push(m)
      else this.blockedDrops++
    }
    return out
  }

  /** Splits the nodes into two sides; `oneWay` blocks only side A -> side B. */
  /** `hold`: whether it holds messages back (default: drawn, holdShare). */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[], oneWay: boolean, hold?: boolean): void {
    this.#blocked.clear()
    this.#holding = hold ?? (this.faults.holdShare > 0 && this.#tail.chance(this.faults.holdShare))
    for (const a of sideA) {
      for (const b of sideB) {
        this.#blocked.add(a * 1000 + b)
        if (!oneWay) this.#blocked.add(b * 1000 + a)
      }
    }
  }

  /** Ends the partition; what it held back arrives over the next delayMax units (reordered). */
  heal(now: number): void {
    this.#blocked.clear()
    this.#holding = false
    const back = this.#heldBack
    this.#heldBack = []
    this.held += back.length
    for (const m of back) this.#enqueue(now + 1 + (back.length > 1 ? this.#tail.int(this.faults.delayMax) : 0), m)
  }

  /** Are messages from `from` to `to` blocked by the partition in force? */
  linkBlocked(from: NodeId, to: NodeId): boolean {
    return this.#blocked.has(from * 1000 + to)
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
