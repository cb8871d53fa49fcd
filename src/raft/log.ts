/**
 * RaftLog: the node's view of its log, joining what Storage holds (durable) with the
 * Unstable tail (accepted, not yet durable), plus the commit and apply cursors.
 *
 * Invariants (asserted): applied <= applying <= committed <= lastIndex;
 * firstIndex - 1 <= committed. Committed entries are never truncated.
 *
 * Restart (the contract of `Storage` and `RaftOptions.applied`): `committed` starts at
 * the largest of the durable commit index, the storage's snapshot index (firstIndex - 1
 * and the snapshot's metadata index) and the host's applied index. Why that is sound: a
 * state machine applies only committed entries (Raft paper §5.3, Figure 2) and a
 * snapshot is an image of applied state, so each of these indexes was committed when it
 * was written; the commit index is volatile state in the paper, and the hard state's
 * copy of it is only a hint that a commit-only write need not sync (Ready.mustSync). A
 * host that keeps its applied state in a store not synced with the log (an unsynced
 * per-group database beside a per-worker WAL) therefore often restarts with applied
 * beyond the durable commit index, and that is a normal crash outcome, not corruption.
 * Lowering `applied` to the durable commit instead would hand the host entries it has
 * already applied (a second apply); refusing would stop a healthy node. What cannot be
 * explained by a crash is an applied index beyond the last entry the log holds: the
 * state machine is ahead of its log, so acknowledged entries were lost (a log store
 * that did not keep a synced write). The constructor asserts against it; a host must
 * detect that case itself and refuse to start before constructing the node.
 *
 * Imports base, ./types, ./storage and ./unstable.
 */
import { assert } from '../base/index.js'
import { TERM_UNAVAILABLE, entryBytes } from './storage.js'
import type { Storage } from './storage.js'
import { Unstable } from './unstable.js'
import type { Entry, Snapshot } from './types.js'

export class RaftLog {
  readonly storage: Storage
  readonly unstable: Unstable
  /** Highest index known to be committed. */
  committed: number
  /** Highest index handed to the host for applying. */
  applying: number
  /** Highest index the host confirmed applied. */
  applied: number

  /** UnsafeRules.stableByIndexOnly (tests only). */
  readonly #stableByIndexOnly: boolean

  constructor(storage: Storage, applied: number, stableByIndexOnly = false) {
    this.storage = storage
    this.#stableByIndexOnly = stableByIndexOnly
    const first = storage.firstIndex()
    const last = storage.lastIndex()
    this.unstable = new Unstable(last + 1)
    assert(
      applied <= last,
      () =>
        `restart: applied ${applied} beyond the last index ${last} of the log: the state machine is ahead of its log, ` +
        'so acknowledged entries were lost; the host must detect this and refuse to start',
    )
    const snapIndex = storage.snapshot().metadata.index
    assert(snapIndex <= last, () => `restart: snapshot at ${snapIndex} beyond the last index ${last} of the log`)
    // everything the state machine applied or a snapshot covers was committed (header)
    this.committed = first - 1
    this.commitTo(Math.max(storage.initialState().hardState.commit, snapIndex, applied))
    // entries the host applied are not handed out again; a host whose state is older than
    // the log's first entry can only have loaded the snapshot, so its state is that one
    this.applied = applied >= first - 1 ? applied : Math.max(first - 1, snapIndex)
    this.applying = this.applied
  }

  firstIndex(): number {
    const i = this.unstable.maybeFirstIndex()
    return i >= 0 ? i : this.storage.firstIndex()
  }

  lastIndex(): number {
    const i = this.unstable.maybeLastIndex()
    return i >= 0 ? i : this.storage.lastIndex()
  }

  /** The term of entry i, or TERM_UNAVAILABLE when compacted or beyond the end. */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i)
    if (t >= 0) return t
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return TERM_UNAVAILABLE
    // storage may also lack i once a truncation put the unstable offset below it
    if (i >= this.unstable.offset) return TERM_UNAVAILABLE
    return this.storage.term(i)
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex())
    assert(t >= 0, 'the last entry of the log has a term')
    return t
  }

  matchTerm(i: number, t: number): boolean {
    const got = this.term(i)
    return got >= 0 && got === t
  }

  /** Section 5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm()
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex())
  }

  /**
   * The follower side of AppendEntries: if our entry at `index` has term `logTerm`,
   * append `ents` (dropping a conflicting suffix), advance commit to
   * min(commit, last new index) and return that last new index; otherwise -1.
   */
  maybeAppend(index: number, logTerm: number, commit: number, ents: readonly Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1
    const lastNew = index + ents.length
    const ci = this.findConflict(ents)
    if (ci !== 0) {
      assert(ci > this.committed, () => `entry ${ci} conflicts with committed entry (committed ${this.committed})`)
      this.append(ents.slice(ci - index - 1))
    }
    this.commitTo(Math.min(commit, lastNew))
    return lastNew
  }

  /** Appends entries that continue (or replace a suffix of) the log; returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex()
    const after = ents[0]!.index - 1
    assert(after >= this.committed, () => `append after ${after} would overwrite committed ${this.committed}`)
    this.unstable.truncateAndAppend(ents)
    return this.lastIndex()
  }

  /**
   * The index of the first entry of `ents` whose term differs from ours, or which we
   * lack; 0 if we hold all of them already.
   */
  findConflict(ents: readonly Entry[]): number {
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!
      if (!this.matchTerm(e.index, e.term)) return e.index
    }
    return 0
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term` (or that we
   * can no longer read). A follower rejecting an append answers with it; the leader
   * then skips every entry of terms the follower cannot share.
   */
  findConflictByTerm(index: number, term: number): number {
    for (let i = index; i > 0; i--) {
      const t = this.term(i)
      if (t < 0 || t <= term) return i
    }
    return 0
  }

  commitTo(i: number): void {
    if (i <= this.committed) return
    assert(i <= this.lastIndex(), () => `commit ${i} beyond last index ${this.lastIndex()}: log corrupted, truncated or lost`)
    this.committed = i
  }

  /** Leader rule (§5.4.2): commit `i` by counting only if it is from the current term. */
  maybeCommit(i: number, term: number, countPriorTerms: boolean): boolean {
    if (i > this.committed && (countPriorTerms || this.term(i) === term)) {
      this.commitTo(i)
      return true
    }
    return false
  }

  hasNextCommittedEnts(): boolean {
    return this.unstable.snapshot === null && this.applying < this.committed
  }

  /** Committed entries not yet handed out, at most `bytesMax` (always one if any). */
  nextCommittedEnts(bytesMax: number): Entry[] {
    if (!this.hasNextCommittedEnts()) return []
    return this.slice(this.applying + 1, this.committed + 1, bytesMax)
  }

  acceptApplying(i: number): void {
    assert(i <= this.committed, () => `applying ${i} beyond committed ${this.committed}`)
    this.applying = Math.max(this.applying, i)
  }

  appliedTo(i: number): void {
    assert(i <= this.committed, () => `applied ${i} beyond committed ${this.committed}`)
    this.applied = Math.max(this.applied, i)
    this.applying = Math.max(this.applying, i)
  }

  /** Entries in [lo, hi) up to `bytesMax` (at least one), from storage and the unstable tail. */
  slice(lo: number, hi: number, bytesMax: number): Entry[] {
    if (lo >= hi) return []
    assert(lo >= this.firstIndex(), () => `slice(${lo}) compacted (first ${this.firstIndex()})`)
    assert(hi <= this.lastIndex() + 1, () => `slice(.., ${hi}) beyond last ${this.lastIndex()}`)
    const uo = this.unstable.offset
    let out: Entry[]
    if (lo < uo) {
      out = this.storage.entries(lo, Math.min(hi, uo), bytesMax)
      if (hi <= uo || out.length < Math.min(hi, uo) - lo) return out
    } else {
      out = []
    }
    let size = 0
    for (let k = 0; k < out.length; k++) size += entryBytes(out[k]!)
    const from = Math.max(lo, uo)
    const tail = this.unstable.entries
    let end = from
    while (end < hi) {
      size += entryBytes(tail[end - uo]!)
      if ((out.length > 0 || end > from) && size > bytesMax) break
      end++
    }
    const part = tail.slice(from - uo, end - uo)
    return out.length === 0 ? part : out.concat(part)
  }

  /** Entries from `i` on, up to `bytesMax`; empty if `i` is past the end. */
  entriesFrom(i: number, bytesMax: number): Entry[] {
    if (i > this.lastIndex()) return []
    return this.slice(i, this.lastIndex() + 1, bytesMax)
  }

  /** Replaces the log with a snapshot from the leader. */
  restore(snap: Snapshot): void {
    this.committed = snap.metadata.index
    this.unstable.restore(snap)
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, this.#stableByIndexOnly ? this.unstable.maybeTerm(i) : t)
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i)
  }
}
