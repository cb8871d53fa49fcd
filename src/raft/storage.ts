/**
 * The Storage the core reads from, and MemoryStorage, the in-memory implementation used
 * by tests, the simulator and benchmarks.
 *
 * The core only reads storage; the host writes it while following a Ready. Reads are
 * synchronous, so a disk-backed host keeps what the core may ask for (recent entries,
 * the latest snapshot) in memory.
 *
 * The restart contract: the core trusts storage and the host's applied index to be
 * crash outcomes of a correct host. The hard state's commit index may lag the
 * snapshot and the host's applied state (a commit-only hard state is not synced, and
 * the applied state may live in a store synced separately from the log); the core
 * starts its commit index at the largest of the three, since each was committed when
 * written (RaftLog's header). It may not lag the log: every entry up to the snapshot
 * index and up to the host's applied index must still be readable or covered by the
 * snapshot, and an applied index beyond `lastIndex()` is refused by an assertion. A
 * host must check that case itself (its state machine ahead of its log means the log
 * lost acknowledged entries) and refuse to start rather than construct the node.
 *
 * Layout of MemoryStorage (as in etcd): `#ents[0]` is a dummy entry standing for the
 * snapshot, holding its index and term; real entries follow, densely indexed.
 *
 * Imports base and ./types only.
 */
import { assert } from '../base/index.js'
import { EntryType } from './types.js'
import type { ConfState, Entry, HardState, Ready, Snapshot } from './types.js'

/** Returned by `term()` for an index that is compacted away or beyond the log. */
export const TERM_UNAVAILABLE = -1

export interface InitialState {
  readonly hardState: HardState
  readonly conf: ConfState
}

export interface Storage {
  /**
   * Hard state and the configuration as of the snapshot. The hard state's commit index
   * may be below the snapshot index and the host's applied index (see the header).
   */
  initialState(): InitialState
  /** Entries in [lo, hi), stopping early past `bytesMax` (always at least one). Requires firstIndex() <= lo < hi <= lastIndex()+1. */
  entries(lo: number, hi: number, bytesMax: number): Entry[]
  /** The term of entry `i`, for firstIndex()-1 <= i <= lastIndex(); otherwise TERM_UNAVAILABLE. */
  term(i: number): number
  firstIndex(): number
  lastIndex(): number
  /** The most recent snapshot; its index is committed and at most `lastIndex()`, and may be above firstIndex() - 1. */
  snapshot(): Snapshot
}

export const emptyHardState: HardState = { term: 0, vote: 0, commit: 0 }

const EMPTY = new Uint8Array(0)

export function entryBytes(e: Entry): number {
  // a fixed overhead stands for term, index and type; .length rather than .byteLength
  // (equal for a Uint8Array) because it is about 4x cheaper on Node 20, and this is hot
  return e.data.length + 24
}

export function emptySnapshot(conf: ConfState): Snapshot {
  return { metadata: { index: 0, term: 0, conf }, data: EMPTY }
}

export class MemoryStorage implements Storage {
  #hardState: HardState = emptyHardState
  #snapshot: Snapshot
  #ents: Entry[]

  /** A fresh log whose initial configuration has `voters` (empty for a node that will be added later). */
  constructor(voters: readonly number[] = []) {
    this.#snapshot = emptySnapshot({ voters: [...voters].sort((a, b) => a - b) })
    this.#ents = [{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }]
  }

  initialState(): InitialState {
    return { hardState: this.#hardState, conf: this.#snapshot.metadata.conf }
  }

  hardState(): HardState {
    return this.#hardState
  }

  setHardState(hs: HardState): void {
    this.#hardState = hs
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    const offset = this.#ents[0]!.index
    assert(lo > offset, () => `entries(${lo}) is compacted (first ${offset + 1})`)
    assert(hi <= this.lastIndex() + 1, () => `entries(.., ${hi}) beyond last ${this.lastIndex()}`)
    assert(lo < hi, () => `entries(${lo}, ${hi}) empty range`)
    const ents = this.#ents
    let end = lo
    let size = 0
    while (end < hi) {
      size += entryBytes(ents[end - offset]!)
      if (end > lo && size > bytesMax) break
      end++
    }
    return ents.slice(lo - offset, end - offset)
  }

  term(i: number): number {
    const offset = this.#ents[0]!.index
    if (i < offset || i > offset + this.#ents.length - 1) return TERM_UNAVAILABLE
    return this.#ents[i - offset]!.term
  }

  firstIndex(): number {
    return this.#ents[0]!.index + 1
  }

  lastIndex(): number {
    return this.#ents[0]!.index + this.#ents.length - 1
  }

  snapshot(): Snapshot {
    return this.#snapshot
  }

  /** Replaces everything with `snap` (a follower installing a leader's snapshot). */
  applySnapshot(snap: Snapshot): void {
    const { index, term } = snap.metadata
    assert(index >= this.#snapshot.metadata.index, () => `applySnapshot: ${index} older than ${this.#snapshot.metadata.index}`)
    this.#snapshot = snap
    this.#ents = [{ term, index, type: EntryType.Normal, data: EMPTY }]
  }

  /** Records a snapshot of the state machine at applied index `i` (the host's own compaction). */
  createSnapshot(i: number, conf: ConfState, data: Uint8Array): Snapshot {
    const offset = this.#ents[0]!.index
    assert(i > this.#snapshot.metadata.index, () => `createSnapshot: ${i} not newer than ${this.#snapshot.metadata.index}`)
    assert(i <= this.lastIndex(), () => `createSnapshot: ${i} beyond last ${this.lastIndex()}`)
    this.#snapshot = { metadata: { index: i, term: this.#ents[i - offset]!.term, conf }, data }
    return this.#snapshot
  }

  /** Drops entries before `compactIndex` (it becomes the dummy entry). */
  compact(compactIndex: number): void {
    const offset = this.#ents[0]!.index
    if (compactIndex <= offset) return
    assert(compactIndex <= this.lastIndex(), () => `compact: ${compactIndex} beyond last ${this.lastIndex()}`)
    const i = compactIndex - offset
    const dummy: Entry = { term: this.#ents[i]!.term, index: compactIndex, type: EntryType.Normal, data: EMPTY }
    this.#ents = [dummy, ...this.#ents.slice(i + 1)]
  }

  /** Step 2 of the Ready contract: snapshot, then entries, then hard state. */
  persist(rd: Ready): void {
    if (rd.snapshot) this.applySnapshot(rd.snapshot)
    this.append(rd.entries)
    if (rd.hardState) this.setHardState(rd.hardState)
  }

  /** Appends `entries`, replacing any stored entries from `entries[0].index` on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return
    const first = this.firstIndex()
    const last = entries[entries.length - 1]!.index
    if (last < first) return // all compacted already
    let from = entries[0]!.index
    let k = 0
    if (from < first) {
      k = first - from
      from = first
    }
    const offset = this.#ents[0]!.index
    assert(from <= this.lastIndex() + 1, () => `append: gap, ${from} after last ${this.lastIndex()}`)
    const ents = this.#ents
    if (ents.length !== from - offset) ents.length = from - offset
    for (; k < entries.length; k++) ents.push(entries[k]!)
  }
}
