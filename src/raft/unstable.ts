/**
 * The tail of the log that is not yet durable: entries (and possibly a snapshot) the
 * node has accepted but the host has not yet confirmed as persisted.
 *
 * `#inProgress` marks how far entries have been handed to the host in the outstanding
 * Ready; `stableTo` drops them once the host confirms the write, but only if the entry
 * it confirms is still the one at that index (a truncation may have replaced it).
 *
 * Imports base and ./types only.
 */
import { assert } from '../base/index.js'
import type { Entry, Snapshot } from './types.js'

export class Unstable {
  /** An incoming snapshot not yet persisted. */
  snapshot: Snapshot | null = null
  snapshotInProgress = false
  /** entries[i] has index offset + i. */
  entries: Entry[] = []
  offset: number
  /** Index of the first entry not yet handed to the host. */
  inProgress: number

  constructor(offset: number) {
    this.offset = offset
    this.inProgress = offset
  }

  /** Index of the first entry, if the unstable part knows it (only a snapshot does). */
  maybeFirstIndex(): number {
    return this.snapshot ? this.snapshot.metadata.index + 1 : -1
  }

  maybeLastIndex(): number {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1
    if (this.snapshot) return this.snapshot.metadata.index
    return -1
  }

  /** The term of entry `i` if the unstable part holds it, else -1. */
  maybeTerm(i: number): number {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term
      return -1
    }
    const last = this.maybeLastIndex()
    if (last < 0 || i > last) return -1
    return this.entries[i - this.offset]!.term
  }

  /** Entries not yet handed to the host. */
  nextEntries(): Entry[] {
    const start = this.inProgress - this.offset
    if (start >= this.entries.length) return []
    return start === 0 ? this.entries.slice() : this.entries.slice(start)
  }

  nextSnapshot(): Snapshot | null {
    return this.snapshot && !this.snapshotInProgress ? this.snapshot : null
  }

  /** Everything currently unstable is now being written by the host. */
  acceptInProgress(): void {
    this.inProgress = this.offset + this.entries.length
    if (this.snapshot) this.snapshotInProgress = true
  }

  /** The host persisted entries up to `i`, the last of which had term `t`. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i)
    if (gt < 0 || gt !== t || i < this.offset) return // replaced or already stable
    const n = i + 1 - this.offset
    this.entries = n === this.entries.length ? [] : this.entries.slice(n)
    this.offset = i + 1
    if (this.inProgress < this.offset) this.inProgress = this.offset
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) {
      this.snapshot = null
      this.snapshotInProgress = false
    }
  }

  restore(snap: Snapshot): void {
    this.offset = snap.metadata.index + 1
    this.inProgress = this.offset
    this.entries = []
    this.snapshot = snap
    this.snapshotInProgress = false
  }

  /** Appends `ents`, replacing any unstable entries from `ents[0].index` on. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const from = ents[0]!.index
    const end = this.offset + this.entries.length
    if (from === end) {
      for (let k = 0; k < ents.length; k++) this.entries.push(ents[k]!)
      return
    }
    if (from <= this.offset) {
      // the whole unstable part is replaced; the host's next write truncates storage
      this.offset = from
      this.inProgress = from
      this.entries = ents.slice()
      return
    }
    assert(from < end, () => `unstable: gap appending ${from} after ${end - 1}`)
    this.entries.length = from - this.offset
    for (let k = 0; k < ents.length; k++) this.entries.push(ents[k]!)
    if (this.inProgress > from) this.inProgress = from
  }

  /** Entries in [lo, hi), which must lie within the unstable part. */
  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi, () => `unstable.slice(${lo}, ${hi}) out of [${this.offset}, ${this.offset + this.entries.length})`)
    return this.entries.slice(lo - this.offset, hi - this.offset)
  }
}
