/**
 * LogEngine: the Raft logs of every group one worker hosts, over ONE write-ahead log.
 *
 * Each group's log is a MemoryStorage (src/raft): the view the Raft core reads
 * synchronously, made current only once what it shows is durable. `stage(group, ready)`
 * turns a Ready's snapshot, entries and hard state into WAL records (no I/O); `commit()`
 * makes everything staged in this turn durable with ONE vectored write and ONE fdatasync,
 * on the calling thread, and then updates every staged group's view: group commit across
 * groups (DESIGN §4). A turn whose Readys only move commit indexes needs no sync: their
 * hard-state records ride with the next commit, the view changes at once (a lost commit
 * index is learned again; applied state ahead of it is the restart contract of
 * src/raft/log.ts).
 *
 * WAL records (the WAL itself treats them as opaque):
 *
 * | type       | index          | term         | payload                              |
 * | ---------- | -------------- | ------------ | ------------------------------------ |
 * | Entry      | entry index    | entry term   | entry data (a Normal entry)          |
 * | ConfEntry  | entry index    | entry term   | entry data (a ConfChange entry)      |
 * | HardState  | commit index   | current term | u32 vote                             |
 * | Snapshot   | snapshot index | its term     | its voters, u32 each                 |
 * | CheckpointBegin | 0         | 0            | -                                    |
 * | Checkpoint | applied index  | its term     | -                                    |
 * | Removed    | 0              | 0            | -                                    |
 *
 * An Entry record at index i replaces whatever the group's log held from i on (Raft's
 * suffix replacement), so recovery replays records in order. A Checkpoint says the
 * group's partition store (group-store.ts) holds, synced, everything up to that applied
 * index plus the hard state and unapplied entries of the moment its CheckpointBegin was
 * staged (records after the Begin may postdate what the store got): it is what allows
 * the segments before it to be retired, what lets recovery skip a store nothing changed
 * since, and what recovery holds the store to (a store behind
 * its checkpoint lost synced data: refused, never served). Removed ends a group (topic
 * deletion), so recovery does not look for its store.
 *
 * Retirement: the engine knows, per group, the oldest segment holding data records not
 * yet covered by a checkpoint, and the segment holding its newest Checkpoint record.
 * `checkpointsDue(throughSeq)` names the groups that must checkpoint before segments
 * through `throughSeq` can go; the host makes their stores durable and calls
 * `checkpointed` for each; `carryForward` writes the Checkpoint records of the idle groups
 * again (no store write); then a commit, then `retire`.
 *
 * Imports src/base, src/raft and ./wal.
 */
import { Buffer } from 'node:buffer'
import { assert, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { EntryType, MemoryStorage } from '../raft/index.js'
import type { Ready } from '../raft/index.js'
import type { Wal, WalWriteError } from './wal/index.js'

export const WalRecordType = {
  Entry: 1,
  ConfEntry: 2,
  HardState: 3,
  Snapshot: 4,
  Checkpoint: 5,
  Removed: 6,
  CheckpointBegin: 7,
} as const
export type WalRecordType = (typeof WalRecordType)[keyof typeof WalRecordType]

const EMPTY = new Uint8Array(0)
/** Bytes one commit carries at most before the engine commits early (the WAL refuses a queue past walLimits.commitBytesMax). */
const TURN_BYTES_MAX = 64 << 20

interface EngineGroup {
  readonly id: number
  readonly log: MemoryStorage
  /** The oldest WAL segment with data records (entries, hard states, snapshots) of this group that no checkpoint covers (null: none). */
  dirtySince: number | null
  /** Data records added since the last commit. */
  pendingData: boolean
  /** Checkpoint records (Begin, Checkpoint) added since the last commit. */
  pendingMark: boolean
  /** The newest segment this group's data records went to. */
  lastDataSeq: number
  /** The segment holding this group's newest Checkpoint record (0: not committed yet). */
  markSeq: number
  /** What that record says the store holds. */
  lastCheckpoint: { readonly index: number; readonly term: number }
  /** A checkpoint began and has not ended; and the oldest segment its capture may miss data of. */
  inCheckpoint: boolean
  missedSince: number | null
  missedPending: boolean
  /** Data records not yet committed when the checkpoint began, covered by it (they were in the view). */
  coveredPending: boolean
}

const isMark = (type: WalRecordType): boolean => type === WalRecordType.CheckpointBegin || type === WalRecordType.Checkpoint

export class LogEngine {
  readonly #wal: Wal
  readonly #groups = new Map<number, EngineGroup>()
  #staged: { readonly g: EngineGroup; readonly rd: Ready }[] = []
  #syncNeeded = false
  #syncs = 0

  constructor(wal: Wal) {
    this.#wal = wal
  }

  get wal(): Wal {
    return this.#wal
  }

  /** Durable WAL commits (each one write and one fdatasync) since the engine started. */
  get syncs(): number {
    return this.#syncs
  }

  /**
   * Hosts group `id` over `log` (its recovered view). The group's checkpoint of the state
   * it was loaded from is staged, and must be committed before the group serves: it is
   * what the next recovery holds its store to.
   */
  addGroup(id: number, log: MemoryStorage, checkpoint: { readonly index: number; readonly term: number }): void {
    assert(!this.#groups.has(id), () => `group ${id} is already in the log engine`)
    const g: EngineGroup = { id, log, dirtySince: null, pendingData: false, pendingMark: false, lastDataSeq: 0, markSeq: 0, lastCheckpoint: checkpoint, inCheckpoint: false, missedSince: null, missedPending: false, coveredPending: false }
    this.#groups.set(id, g)
    this.#add(g, WalRecordType.CheckpointBegin, 0, 0, EMPTY)
    this.#add(g, WalRecordType.Checkpoint, checkpoint.index, checkpoint.term, EMPTY)
    this.#syncNeeded = true
  }

  /** Ends group `id`: a Removed record (synced with the next commit) so recovery forgets it. */
  removeGroup(id: number): void {
    const g = this.#groups.get(id)
    if (!g) return
    this.#groups.delete(id)
    this.#staged = this.#staged.filter((s) => s.g !== g)
    this.#wal.add({ group: id, type: WalRecordType.Removed, index: 0, term: 0, payload: EMPTY })
    this.#syncNeeded = true
  }

  log(id: number): MemoryStorage {
    const g = this.#groups.get(id)
    assert(g !== undefined, () => `group ${id} is not in the log engine`)
    return g.log
  }

  /** Queues the durable part of `rd` (step 2 of the Ready contract) for this turn's commit. */
  stage(id: number, rd: Ready): void {
    const g = this.#groups.get(id)
    assert(g !== undefined, () => `stage for group ${id}, not in the log engine`)
    const s = rd.snapshot
    if (s !== null) {
      const voters = s.metadata.conf.voters
      const payload = Buffer.allocUnsafe(4 * voters.length)
      for (let k = 0; k < voters.length; k++) payload.writeUInt32BE(voters[k]!, 4 * k)
      this.#add(g, WalRecordType.Snapshot, s.metadata.index, s.metadata.term, payload)
    }
    const ents = rd.entries
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!
      this.#add(g, e.type === EntryType.ConfChange ? WalRecordType.ConfEntry : WalRecordType.Entry, e.index, e.term, e.data)
    }
    const hs = rd.hardState
    if (hs !== null) {
      const vote = Buffer.allocUnsafe(4)
      vote.writeUInt32BE(hs.vote, 0)
      this.#add(g, WalRecordType.HardState, hs.commit, hs.term, vote)
    }
    if (rd.mustSync) this.#syncNeeded = true
    this.#staged.push({ g, rd })
    // a turn this large (many groups' full batches) is made durable in parts, within the WAL's bound
    if (this.#wal.pendingBytes >= TURN_BYTES_MAX) this.commit()
  }

  /** Does this turn need the disk (some staged Ready must be synced)? */
  get syncNeeded(): boolean {
    return this.#syncNeeded
  }

  /**
   * Makes this turn durable (one write, one sync) if any of it must be, and then every
   * staged Ready current in its group's view. On failure nothing staged becomes current:
   * the records stay queued in the WAL and the same Readys stay staged, so a later
   * commit() retries them (WAL_FULL); after WAL_IO the caller must stop (fail-stop).
   */
  commit(): Result<void, WalWriteError> {
    if (this.#syncNeeded) {
      const r = this.#wal.commit()
      if (!r.ok) return r
      this.#syncs++
      this.#syncNeeded = false
      const seq = r.value.seq
      for (const g of this.#groups.values()) {
        if (g.pendingData) {
          g.pendingData = false
          g.dirtySince ??= seq
          g.lastDataSeq = seq
          if (g.missedPending) {
            g.missedPending = false
            g.missedSince ??= seq
          }
        }
        if (g.pendingMark) {
          g.pendingMark = false
          g.markSeq = seq
        }
      }
    }
    const staged = this.#staged
    this.#staged = []
    for (const { g, rd } of staged) g.log.persist(rd)
    return ok(undefined)
  }

  /** Groups whose records in segments through `throughSeq` no checkpoint covers yet. */
  checkpointsDue(throughSeq: number): number[] {
    const out: number[] = []
    for (const g of this.#groups.values()) if (g.dirtySince !== null && g.dirtySince <= throughSeq) out.push(g.id)
    return out
  }

  /**
   * Marks the moment group `id`'s state is captured for a checkpoint (call it right then,
   * outside a turn, one checkpoint of a group at a time). What the view shows now is
   * covered; a Ready staged but not yet current (a commit the disk refused) is not.
   */
  checkpointBegin(id: number): void {
    const g = this.#groups.get(id)
    if (!g) return
    assert(!g.inCheckpoint, () => `group ${id}: a checkpoint began while another is in progress`)
    g.inCheckpoint = true
    g.missedSince = null
    g.missedPending = this.#staged.some((s) => s.g === g)
    // records queued before now but already in the view (a commit index riding with the
    // next sync) are what the capture holds: their commit owes nothing
    g.coveredPending = !g.missedPending && g.pendingData
    if (g.coveredPending) g.pendingData = false
    this.#add(g, WalRecordType.CheckpointBegin, 0, 0, EMPTY)
  }

  /**
   * Group `id`'s store now holds, synced, its state as of the moment its checkpoint
   * began: the checkpoint record is staged, and the group's records before that moment
   * are covered. Commit before retiring.
   */
  checkpointed(id: number, applied: { readonly index: number; readonly term: number }): void {
    const g = this.#groups.get(id)
    if (!g) return // removed meanwhile
    // what came after the capture stays owed: committed (missedSince), or still to commit
    // (pendingData: its commit sets dirtySince)
    assert(g.inCheckpoint, () => `group ${id}: checkpointed without checkpointBegin`)
    g.inCheckpoint = false
    g.dirtySince = g.missedSince
    g.missedPending = false
    g.coveredPending = false
    g.lastCheckpoint = applied
    this.#add(g, WalRecordType.Checkpoint, applied.index, applied.term, EMPTY)
    this.#syncNeeded = true
  }

  /**
   * Groups with nothing new since their checkpoint, whose Checkpoint record lies in a
   * segment through `throughSeq`: the record is written again (the store still holds what
   * it says), so that retiring those segments keeps every group vouched for without a
   * store write per idle group. Returns how many; commit before retiring.
   */
  carryForward(throughSeq: number): number {
    let n = 0
    for (const g of this.#groups.values()) {
      if (g.markSeq === 0 || g.markSeq > throughSeq || g.pendingMark) continue
      if (g.dirtySince !== null && g.dirtySince <= throughSeq) continue // it owes a real checkpoint
      // records no checkpoint covers yet (in later segments) must stay dirty for recovery: a
      // Begin here would say the store holds them; a Checkpoint alone keeps them replayed
      if (g.dirtySince === null) this.#add(g, WalRecordType.CheckpointBegin, 0, 0, EMPTY)
      this.#add(g, WalRecordType.Checkpoint, g.lastCheckpoint.index, g.lastCheckpoint.term, EMPTY)
      this.#syncNeeded = true
      n++
    }
    return n
  }

  /** Can segments through `throughSeq` go now (no group's uncovered data or only checkpoint record is in them)? */
  canRetire(throughSeq: number): boolean {
    for (const g of this.#groups.values()) {
      if (g.dirtySince !== null && g.dirtySince <= throughSeq) return false
      if (g.markSeq <= throughSeq || g.pendingMark) return false
    }
    return true
  }

  /** Retires the segments through `throughSeq`: only once no group still needs them. */
  retire(throughSeq: number): Result<void, WalWriteError> {
    const due = this.checkpointsDue(throughSeq)
    assert(due.length === 0, () => `retire(${throughSeq}) while groups ${due.join(', ')} still need those segments`)
    for (const g of this.#groups.values()) {
      assert(g.markSeq > throughSeq && !g.pendingMark, () => `retire(${throughSeq}) would drop group ${g.id}'s only checkpoint record (in segment ${g.markSeq})`)
    }
    return this.#wal.retire(throughSeq)
  }

  #add(g: EngineGroup, type: WalRecordType, index: number, term: number, payload: Uint8Array): void {
    this.#wal.add({ group: g.id, type, index, term, payload })
    if (isMark(type)) {
      g.pendingMark = true
    } else {
      g.pendingData = true
      if (g.inCheckpoint) g.missedPending = true
    }
  }

  /** A checkpoint that began and failed: what it would have covered stays owed. */
  checkpointFailed(id: number): void {
    const g = this.#groups.get(id)
    if (!g) return
    g.inCheckpoint = false
    if (g.coveredPending) {
      // committed meanwhile or not, those records are owed again: the current segment at the latest
      g.pendingData = true
      g.dirtySince ??= this.#wal.activeSeq
    }
    g.coveredPending = false
  }
}
