/**
 * PartitionMove: a partition replica's part in moving its partition to other nodes. The
 * metadata records where a partition is to go (`movePartition`: its target replicas);
 * every replica is told (`setTarget`), and whichever leads takes the group there through
 * the core's single-server membership changes, one at a time, at most one in flight:
 *   1. a voter that is to go and has gone silent is removed first (adding a voter to a
 *      group with a dead one would grow the quorum past what answers);
 *   2. then each new replica is added, the next only once every voter that stays has
 *      caught up (a new voter starts empty and counts toward the quorum at once);
 *   3. then the voters that are to go are removed, the leader last: it hands leadership to
 *      the target's first replica instead, which finishes the move.
 * Each applied configuration is reported (`report`, through the worker to the controller)
 * by every replica; while the group already is where the target says, its leader reports
 * again every few election timeouts, until the metadata drops the target (a report can be
 * lost with a controller election).
 *
 * Imports base, raft and group only.
 */
import { sameMembers } from '../base/index.js'
import { ConfChangeOp } from '../raft/index.js'
import type { ConfChange } from '../raft/index.js'
import type { ActorLogger, GroupActor } from '../group/index.js'

/** How far behind the commit index a staying voter may be when the next change is proposed. */
const MOVE_LAG_MAX = 64

export interface PartitionMoveOptions {
  readonly nodeId: number
  readonly electionTicks: number
  readonly log: ActorLogger
  /** Log fields naming the partition. */
  readonly ids: Readonly<Record<string, unknown>>
  /** The group's configuration as of `index` (applied): for the controller. */
  readonly report: (index: number, voters: readonly number[]) => void
}

export class PartitionMove {
  readonly #o: PartitionMoveOptions
  readonly #actor: GroupActor<unknown>
  #target: readonly number[] | null = null
  #inFlight = false
  #ticks = 0
  #reportedAt = -Infinity
  #transferAt = -Infinity

  constructor(actor: GroupActor<unknown>, opts: PartitionMoveOptions) {
    this.#actor = actor
    this.#o = opts
  }

  /** Where the metadata says the partition is going (null: nowhere, no move). */
  setTarget(target: readonly number[] | null): void {
    if (sameList(target, this.#target)) return
    this.#target = target
    if (target !== null) this.#o.log.info({ ...this.#o.ids, target }, 'partition move: target recorded')
  }

  get moving(): boolean {
    return this.#target !== null
  }

  /** A ConfChange entry was applied (on any replica). */
  applied(index: number, voters: readonly number[]): void {
    this.#o.report(index, voters)
  }

  /** Every tick: the leader takes the next step, if one may go now. */
  tick(): void {
    const target = this.#target
    if (target === null || this.#inFlight || !this.#actor.isLeader()) return
    this.#ticks++
    const node = this.#actor.node
    const me = this.#o.nodeId
    const applied = this.#actor.appliedIndex
    const voters = node.voters()
    // a change still uncommitted (or unapplied): the core refuses another
    if (!sameMembers(voters, node.confAt(applied).voters)) return
    const silent = (id: number): boolean => node.progressOf(id)?.recentActive !== true
    const behind = (id: number): boolean => {
      const pr = node.progressOf(id)
      return pr === null || !pr.recentActive || node.commit - pr.match > MOVE_LAG_MAX
    }
    const adds = target.filter((n) => !voters.includes(n))
    const removes = voters.filter((n) => !target.includes(n))
    const deadRemove = removes.find((n) => n !== me && silent(n))
    let cc: ConfChange | null = null
    if (deadRemove !== undefined && voters.length > 1) {
      cc = { op: ConfChangeOp.RemoveVoter, nodeId: deadRemove }
    } else if (voters.some((n) => n !== me && target.includes(n) && behind(n))) {
      return
    } else if (adds.length > 0) {
      cc = { op: ConfChangeOp.AddVoter, nodeId: adds[0]! }
    } else if (removes.some((n) => n !== me)) {
      cc = { op: ConfChangeOp.RemoveVoter, nodeId: removes.find((n) => n !== me)! }
    } else if (removes.length > 0) {
      // only this node is left to go: the target's first replica leads from here on
      if (this.#ticks - this.#transferAt < 2 * this.#o.electionTicks) return
      this.#transferAt = this.#ticks
      const to = target[0]!
      this.#o.log.info({ ...this.#o.ids, to }, 'partition move: this leader is to go; handing leadership over')
      this.#actor.transferLeader(to)
      return
    } else {
      if (this.#ticks - this.#reportedAt < 3 * this.#o.electionTicks) return
      this.#reportedAt = this.#ticks
      this.#o.report(applied, node.confAt(applied).voters)
      return
    }
    this.#inFlight = true
    const what = cc.op === ConfChangeOp.AddVoter ? 'adding' : 'removing'
    this.#o.log.info({ ...this.#o.ids, node: cc.nodeId, voters, target }, `partition move: ${what} a replica`)
    void this.#actor.proposeConfChange(cc).then((r) => {
      this.#inFlight = false
      if (!r.ok) this.#o.log.warn({ ...this.#o.ids, node: cc.nodeId, err: `${r.error.code}: ${r.error.message}` }, `partition move: ${what} a replica did not commit; tried again`)
    })
  }
}

function sameList(a: readonly number[] | null, b: readonly number[] | null): boolean {
  if (a === null || b === null) return a === b
  return a.length === b.length && a.every((n, i) => n === b[i])
}
