/**
 * Progress: the leader's view of one follower's log, and Inflights, the bounded window
 * of AppendEntries sent to it but not yet acknowledged (pipelining).
 *
 * States (as in etcd's raft design.md):
 *   Probe     — we don't know where the follower's log matches; send one append per
 *               heartbeat and wait for the answer.
 *   Replicate — it matches up to `match`; stream appends optimistically, at most
 *               `inflightMsgsMax` unacknowledged.
 *   Snapshot  — it needs a snapshot; send nothing else until it has one.
 *
 * Imports base only.
 */
import { assert } from '../base/index.js'

export const ProgressState = {
  Probe: 'probe',
  Replicate: 'replicate',
  Snapshot: 'snapshot',
} as const
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState]

/** A ring buffer of the last index of each unacknowledged append. */
export class Inflights {
  readonly #capacity: number
  readonly #buf: Float64Array
  #start = 0
  count = 0

  constructor(capacity: number) {
    assert(capacity > 0, 'inflights capacity > 0')
    this.#capacity = capacity
    this.#buf = new Float64Array(capacity)
  }

  full(): boolean {
    return this.count === this.#capacity
  }

  add(lastIndex: number): void {
    assert(!this.full(), 'inflights: add to a full window')
    let slot = this.#start + this.count
    if (slot >= this.#capacity) slot -= this.#capacity
    this.#buf[slot] = lastIndex
    this.count++
  }

  /** Frees every append whose last index is <= `index` (they are acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && this.#buf[this.#start]! <= index) {
      this.#start = this.#start + 1 === this.#capacity ? 0 : this.#start + 1
      this.count--
    }
  }

  /** Frees the oldest slot: a heartbeat answer shows the follower is alive, so a lost append must not stall the window forever. */
  freeFirstOne(): void {
    if (this.count === 0) return
    this.#start = this.#start + 1 === this.#capacity ? 0 : this.#start + 1
    this.count--
  }

  reset(): void {
    this.#start = 0
    this.count = 0
  }
}

export class Progress {
  /** Highest index known to be replicated (and durable) on the follower. */
  match = 0
  /** Next index to send. Invariant: match < next. */
  next: number
  state: ProgressState = ProgressState.Probe
  /** In Probe: an append was sent and we wait for its answer (or a heartbeat's). */
  probeSent = false
  /** In Snapshot: the index of the snapshot sent. */
  pendingSnapshot = 0
  /** Ticks spent in Snapshot state; past a bound we probe again (the snapshot may be lost). */
  snapshotTicks = 0
  /** The commit index the follower last said it holds (its heartbeat answer): a leader goes quiet only once every follower holds the whole log as committed. */
  commitHeld = 0
  /** Heard from since the last check-quorum round. */
  recentActive = false
  readonly inflights: Inflights

  constructor(next: number, inflightMsgsMax: number) {
    this.next = next
    this.inflights = new Inflights(inflightMsgsMax)
  }

  #reset(state: ProgressState): void {
    this.probeSent = false
    this.pendingSnapshot = 0
    this.snapshotTicks = 0
    this.state = state
    this.inflights.reset()
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot
      this.#reset(ProgressState.Probe)
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.#reset(ProgressState.Probe)
      this.next = this.match + 1
    }
  }

  becomeReplicate(): void {
    this.#reset(ProgressState.Replicate)
    this.next = this.match + 1
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.#reset(ProgressState.Snapshot)
    this.pendingSnapshot = snapshotIndex
  }

  /** Records that an append of `n` entries ending at `lastIndex` was sent. */
  sentEntries(n: number, lastIndex: number): void {
    if (this.state === ProgressState.Replicate) {
      if (n > 0) {
        this.next = lastIndex + 1
        this.inflights.add(lastIndex)
      }
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true
    } else {
      assert(false, `sentEntries in state ${this.state}`)
    }
  }

  /** An acknowledgement up to `n`; returns whether `match` moved. */
  maybeUpdate(n: number): boolean {
    let updated = false
    if (this.match < n) {
      this.match = n
      updated = true
      this.probeSent = false
    }
    if (this.next < n + 1) this.next = n + 1
    return updated
  }

  /**
   * A rejection of the append after index `rejected`; `matchHint` is where the
   * follower's log may match. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1)
    this.probeSent = false
    return true
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent
      case ProgressState.Replicate:
        return this.inflights.full()
      default:
        return true
    }
  }
}
