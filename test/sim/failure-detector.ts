/**
 * The simulator's stand-in for the peer transport's failure detector (src/broker/peer:
 * pings between nodes whatever their groups do, a peer silent past the idle timeout or
 * whose connection closed is down). Quiet groups (RaftOptions.quiesce) send nothing, so
 * only this tells a quiet follower that its leader is gone: a node that cannot hear a
 * peer for `afterUnits` in a row reports it down once, and again only after the peer was
 * heard from in between.
 *
 * Imports nothing from the project but types.
 */
import type { NodeId } from '../../src/raft/index.js'
import type { SimOptions } from './options.js'

export class SimFailureDetector {
  readonly afterUnits: number
  /** observer*1000+peer -> when the observer stopped hearing the peer. */
  readonly #silentSince = new Map<number, number>()
  readonly #reported = new Set<number>()
  reports = 0

  constructor(afterUnits: number) {
    this.afterUnits = afterUnits
  }

  /** The detector a seed draws (null: quiescence off): silence of `detectElections` election timeouts of the slowest clock. */
  static forOptions(o: SimOptions): SimFailureDetector | null {
    if (!o.quiesce.on) return null
    const electionUnits = o.raft.electionTicks * Math.max(...o.tickPeriods)
    return new SimFailureDetector(Math.max(1, Math.round(o.quiesce.detectElections * electionUnits)))
  }

  /**
   * One time unit. `running(id)`: the node's process runs (not crashed, not paused);
   * `hears(observer, peer)`: the network lets the peer's pings through to the observer.
   */
  observe(now: number, ids: readonly NodeId[], running: (id: NodeId) => boolean, hears: (observer: NodeId, peer: NodeId) => boolean, report: (observer: NodeId, peer: NodeId) => void): void {
    for (const o of ids) {
      if (!running(o)) continue
      for (const p of ids) {
        if (p === o) continue
        const key = o * 1000 + p
        if (running(p) && hears(o, p)) {
          this.#silentSince.delete(key)
          this.#reported.delete(key)
          continue
        }
        const since = this.#silentSince.get(key)
        if (since === undefined) this.#silentSince.set(key, now)
        else if (now - since >= this.afterUnits && !this.#reported.has(key)) {
          this.#reported.add(key)
          this.reports++
          report(o, p)
        }
      }
    }
  }

  /** A node restarted: it starts with no opinion of anyone. */
  forget(id: NodeId): void {
    for (const key of [...this.#silentSince.keys()]) if (Math.floor(key / 1000) === id) this.#silentSince.delete(key)
    for (const key of [...this.#reported]) if (Math.floor(key / 1000) === id) this.#reported.delete(key)
  }
}
