/**
 * LevelRaftStorage: one group replica's durable Raft state in its own LevelDB (key layout
 * in keys.ts), implementing the `Storage` the Raft core reads synchronously.
 *
 * The Raft log is the record store. A produce entry's data holds the Kafka RecordBatch
 * bytes; they are written to disk once, inside the synced write of the Ready that
 * carries them, and fetch reads them back from the entry (the partition state machine
 * only maps offsets to Raft indexes). So entries are not deleted when the state machine
 * saves its state: they go only when retention compacts them (`compact`) or when an
 * installed snapshot replaces the log. "Written once" is at this API: below it LevelDB
 * writes its own copies (write-ahead log, memtable flush, compactions); bench/storage.ts
 * measured ~3.2-3.4 disk bytes per payload byte for 116 KB entries with retention on.
 *
 * What is in memory, because the core reads synchronously:
 * - hard state, snapshot metadata, the last saved applied state;
 * - the term of every retained entry, as runs (firstIndex, term): one per leader term;
 * - a cache of recent entries, always a contiguous suffix [cachedFrom, lastIndex] of the
 *   log. Everything the core may still ask for is in it: entries not yet handed out for
 *   applying (after a restart: everything after the snapshot index, where the core's
 *   configuration scan starts). Older entries are evicted past `entryCacheBytesMax`,
 *   unless pinned (`pinCacheFrom`, for a leader whose followers lag). `entries()` on an
 *   evicted range is a bug and asserts; `readEntries()` reads any retained range from
 *   disk (fetch, and later replication of old entries).
 *
 * Writes, one at a time in call order (an internal queue), each updating the in-memory
 * view only once LevelDB has accepted it:
 * - `persist(rd)`: step 2 of the Ready contract as ONE chained batch, `sync: true`
 *   (DESIGN §9: one synced write per Ready; the array form of `db.batch` is 5-10x slower).
 *   A Ready that only moves the commit index (one after every proposal of a lone voter)
 *   writes nothing: its hard state rides along with the next write of any kind, or the
 *   close. Raft does not need the commit index durable (a restarted leader commits its
 *   log again with its first entry; a follower learns it from the leader), and a write
 *   per proposal cost a second LevelDB round trip through libuv's pool. Whatever is on
 *   disk still keeps applied <= commit: the applied state is written with the newest
 *   hard state in the same batch.
 * - `saveApplied(index, blob)`: the state machine's state as of `index`, and the
 *   snapshot metadata moved to `index` (with the configuration as of `index`, which the
 *   store follows from the ConfChange entries it writes), WITHOUT sync. Safe because
 *   the applied state is derived data: every entry after the previous saved point is
 *   still in the synced log, so a crash that loses this write restarts from the
 *   previous saved point and re-applies (the state machine is deterministic). It is
 *   never ahead of the log it reflects: it is written after the Ready whose commit
 *   covers `index` was synced, and LevelDB replays its write-ahead log in order. Both
 *   keys go in one batch, so they are lost or kept together.
 * - `compact(through)`: moves the log floor (synced, together with a re-write of the
 *   applied state it depends on, so that no later loss of an unsynced write can leave
 *   the state machine needing entries that are gone), then range-deletes the entries.
 *   A crash between the two leaves entries below the floor, which `open` deletes.
 * A write that fails leaves the store failed: every later write rejects (fail-stop; the
 * host must stop the replica, as etcd does on a storage error).
 *
 * Restart: open, restore the state machine from `loadApplied()` (null: from scratch),
 * and create the RaftNode with `applied: loadApplied()?.index ?? 0`; the core then hands
 * out the committed entries after it again. (A smaller `applied` asks for entries that
 * were never loaded, and asserts.)
 *
 * The cache holds the Ready's Entry objects as they are (no copy): an entry whose data
 * is a view into a larger buffer keeps that buffer alive while cached.
 *
 * Snapshots: `snapshot()` is the metadata at the last saved applied index plus, as
 * data, the applied blob saved with it; a Ready's snapshot is persisted as the log's new
 * floor AND as the applied state. GAP: record bytes below the snapshot index live in
 * the Raft entries, which a snapshot does not carry, so a follower that installs one
 * lacks those records (replication of the retained log comes later).
 *
 * Invariants (checked at open, kept by every write): the first term run starts at the
 * floor (firstIndex - 1); the applied state, when present, is at the snapshot index;
 * floor <= snapshot index <= commit <= lastIndex; entry terms never decrease.
 *
 * Imports classic-level, node:buffer, src/base, src/raft and ./keys.
 */
import { Buffer } from 'node:buffer'
import { ClassicLevel } from 'classic-level'
import { assert, fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { EntryType, TERM_UNAVAILABLE, decodeConfChange, entryBytes } from '../raft/index.js'
import type { ConfState, Entry, HardState, InitialState, NodeId, Ready, Snapshot, SnapshotMetadata, Storage } from '../raft/index.js'
import {
  APPLIED_KEY,
  FORMAT_KEY,
  FORMAT_VERSION,
  HARD_STATE_KEY,
  INDEX_KEY_BYTES,
  KeySpace,
  SNAPSHOT_META_KEY,
  decodeApplied,
  decodeEntryValue,
  decodeFormat,
  decodeHardState,
  decodeIndexKey,
  decodeSnapshotMeta,
  decodeTerm,
  encodeApplied,
  encodeFormat,
  encodeHardState,
  encodeSnapshotMeta,
  encodeTerm,
  entryKey,
  entryValueBytes,
  spaceEnd,
  termRunKey,
  writeEntryValue,
  writeIndexKey,
} from './keys.js'
import type { AppliedState } from './keys.js'

export type { AppliedState } from './keys.js'

type Db = ClassicLevel<Uint8Array, Uint8Array>

/**
 * Default entry cache per group: recent entries stay in memory for tailing consumers
 * (fetch) and followers a little behind. A node with many partitions should lower it.
 */
export const ENTRY_CACHE_BYTES_DEFAULT = 16 << 20

export interface LevelRaftStorageOptions {
  /** The initial voters of a fresh group ([] for a node that joins later); ignored when the store exists. */
  readonly voters: readonly NodeId[]
  /** Bytes (as `entryBytes` counts them) of handed-out entries kept in memory before eviction; default ENTRY_CACHE_BYTES_DEFAULT. */
  readonly entryCacheBytesMax?: number
  /** LevelDB tuning per group (defaults: classic-level's; 8 MiB block cache, 4 MiB write buffer, snappy on). */
  readonly leveldb?: {
    readonly cacheSize?: number
    readonly writeBufferSize?: number
    readonly compression?: boolean
  }
}

export type StoreOpenError = 'STORE_IN_USE' | 'STORE_CORRUPT' | 'STORE_INCOMPATIBLE' | 'STORE_IO'
export type ReadEntriesError = 'COMPACTED' | 'CORRUPT'

/** A write to the state machine's own key space (keys made by `stateMachineKey`), carried in a store batch. */
export type StateMachineOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array }

export interface EntryCacheInfo {
  /** The first cached index (lastIndex + 1 when the cache is empty). */
  readonly firstIndex: number
  readonly entries: number
  readonly bytes: number
}

const EMPTY = new Uint8Array(0)
const ENTRY_SPACE_START: Uint8Array = Uint8Array.of(KeySpace.Entry)
const ENTRY_SPACE_END: Uint8Array = spaceEnd(KeySpace.Entry)
/** Entries per nextv() and bytes buffered by an iterator: DESIGN §9's measured sweet spot. */
const READ_CHUNK_ENTRIES = 1000
const READ_CHUNK_BYTES = 1 << 20

/** A ConfChange entry after the snapshot index, with the configuration it yields. */
interface ConfAt {
  readonly index: number
  readonly conf: ConfState
}

interface Loaded {
  readonly hard: HardState
  readonly snap: SnapshotMetadata
  readonly confLog: ConfAt[]
  readonly applied: AppliedState | null
  readonly runStarts: number[]
  readonly runTerms: number[]
  readonly last: number
  readonly cache: Entry[]
}

export class LevelRaftStorage implements Storage {
  readonly dir: string
  readonly #db: Db
  readonly #cacheBytesMax: number

  #hard: HardState
  /** The newest hard state when it is not on disk yet (a commit-only Ready's; see the header). */
  #unwritten: HardState | null = null
  #snap: SnapshotMetadata
  #applied: AppliedState | null
  #snapshot: Snapshot | null = null
  /** firstIndex - 1: the last compacted entry (or the snapshot an install put there). */
  #floor: number
  #last: number
  /** Term runs: entries runStarts[k] .. runStarts[k+1]-1 have term runTerms[k]; runStarts[0] === #floor. */
  #runStarts: number[]
  #runTerms: number[]
  /** ConfChange entries after the snapshot index, oldest first (so saveApplied knows the configuration at any index). */
  #confLog: ConfAt[]

  /** Cached entries: #cache[#cacheHead + (i - #cacheFirst)] is entry i, for #cacheFirst <= i <= #last. */
  #cache: Entry[]
  #cacheHead = 0
  #cacheFirst: number
  #cacheBytes = 0
  /** The highest index handed to the host for applying (the core never asks for it again). */
  #handedOut: number
  #pinFrom = Infinity

  #queue: Promise<unknown> = Promise.resolve()
  #failure: unknown = null
  #closed = false
  readonly #background = new Set<Promise<void>>()
  #scratchKey = Buffer.allocUnsafeSlow(INDEX_KEY_BYTES)
  #scratchValue = Buffer.allocUnsafeSlow(64 << 10)

  private constructor(dir: string, db: Db, cacheBytesMax: number, l: Loaded) {
    this.dir = dir
    this.#db = db
    this.#cacheBytesMax = cacheBytesMax
    this.#hard = l.hard
    this.#snap = l.snap
    this.#applied = l.applied
    this.#runStarts = l.runStarts
    this.#runTerms = l.runTerms
    this.#confLog = l.confLog
    this.#floor = l.runStarts[0]!
    this.#last = l.last
    this.#cache = l.cache
    this.#cacheFirst = l.last + 1 - l.cache.length
    for (const e of l.cache) this.#cacheBytes += entryBytes(e)
    this.#handedOut = l.snap.index
  }

  /**
   * Opens (creating if missing) the store in `dir`. A fresh store starts like a fresh
   * MemoryStorage: an empty snapshot at index 0 whose configuration has `voters`.
   * Errors are values: another opener holds the LevelDB LOCK, damaged or foreign
   * contents, another format version, an I/O failure.
   */
  static async open(dir: string, opts: LevelRaftStorageOptions): Promise<Result<LevelRaftStorage, StoreOpenError>> {
    const cacheBytesMax = opts.entryCacheBytesMax ?? ENTRY_CACHE_BYTES_DEFAULT
    assert(Number.isFinite(cacheBytesMax) && cacheBytesMax >= 0, `entryCacheBytesMax must be >= 0, got ${cacheBytesMax}`)
    const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view', ...opts.leveldb })
    try {
      await db.open({ createIfMissing: true })
    } catch (e) {
      if (errorCode(e) === 'LEVEL_LOCKED') {
        return fail('STORE_IN_USE', `group store ${dir} is in use: its LevelDB LOCK is held by another process, or it is already open in this one`)
      }
      return fail('STORE_IO', `cannot open group store ${dir}: ${describe(e)}`)
    }
    try {
      const loaded = await load(db, dir, opts.voters)
      if (!loaded.ok) {
        await db.close()
        return loaded
      }
      return ok(new LevelRaftStorage(dir, db, cacheBytesMax, loaded.value))
    } catch (e) {
      await db.close()
      throw e
    }
  }

  // ---- Storage (synchronous, from memory) ------------------------------------------

  initialState(): InitialState {
    return { hardState: this.#hard, conf: this.#snap.conf }
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    assert(lo > this.#floor, () => `entries(${lo}) is compacted (first ${this.#floor + 1})`)
    assert(hi <= this.#last + 1, () => `entries(.., ${hi}) beyond last ${this.#last}`)
    assert(lo < hi, () => `entries(${lo}, ${hi}) empty range`)
    assert(
      lo >= this.#cacheFirst,
      () => `entries(${lo}): evicted from the entry cache (cached from ${this.#cacheFirst}); read it with readEntries(), or pin it with pinCacheFrom()`,
    )
    const cache = this.#cache
    const base = this.#cacheHead - this.#cacheFirst
    let end = lo
    let size = 0
    while (end < hi) {
      size += entryBytes(cache[base + end]!)
      if (end > lo && size > bytesMax) break
      end++
    }
    return cache.slice(base + lo, base + end)
  }

  term(i: number): number {
    if (i < this.#floor || i > this.#last) return TERM_UNAVAILABLE
    const starts = this.#runStarts
    let hi = starts.length - 1
    if (i >= starts[hi]!) return this.#runTerms[hi]! // the common case: the current term
    let lo = 0
    // largest k with starts[k] <= i; starts[0] === floor <= i
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (starts[mid]! <= i) lo = mid
      else hi = mid - 1
    }
    return this.#runTerms[lo]!
  }

  firstIndex(): number {
    return this.#floor + 1
  }

  lastIndex(): number {
    return this.#last
  }

  /** The metadata at the last saved applied index, with the applied blob saved there as data (see the header's GAP). */
  snapshot(): Snapshot {
    if (this.#snapshot === null) {
      const a = this.#applied
      const data = a !== null && a.index === this.#snap.index ? a.blob : EMPTY
      this.#snapshot = { metadata: this.#snap, data }
    }
    return this.#snapshot
  }

  // ---- reads beyond the core's needs --------------------------------------------------

  hardState(): HardState {
    return this.#hard
  }

  /** The state machine's last saved state (null if it never saved one): restart from it and pass its index as RaftOptions.applied. */
  loadApplied(): AppliedState | null {
    return this.#applied
  }

  cacheInfo(): EntryCacheInfo {
    return { firstIndex: this.#cacheFirst, entries: this.#last + 1 - this.#cacheFirst, bytes: this.#cacheBytes }
  }

  /**
   * Keeps entries from `index` on in the cache even once handed out (Infinity: no pin).
   * A leader sets it to its slowest follower's next index so that the core can still
   * send those entries; the cache may then exceed entryCacheBytesMax.
   */
  pinCacheFrom(index: number): void {
    this.#pinFrom = index
    this.#evict()
  }

  /**
   * Entries in [lo, hi), stopping past `bytesMax` (always at least one), from the cache
   * or from disk. For fetch (committed entries) and replication of evicted entries.
   * COMPACTED: retention removed `lo` (before or during the read). CORRUPT: an entry
   * failed its checksum or is missing inside the retained range.
   */
  async readEntries(lo: number, hi: number, bytesMax = Infinity): Promise<Result<Entry[], ReadEntriesError>> {
    assert(!this.#closed, 'readEntries on a closed store')
    assert(lo < hi && hi <= this.#last + 1, () => `readEntries(${lo}, ${hi}): range empty or beyond last ${this.#last}`)
    const out: Entry[] = []
    let size = 0
    let next = lo
    while (next < hi) {
      if (next <= this.#floor) return fail('COMPACTED', `entry ${next} is compacted (first ${this.#floor + 1})`)
      if (next >= this.#cacheFirst) {
        const base = this.#cacheHead - this.#cacheFirst
        const end = Math.min(hi, this.#last + 1)
        for (; next < end; next++) {
          const e = this.#cache[base + next]!
          size += entryBytes(e)
          if (out.length > 0 && size > bytesMax) return ok(out)
          out.push(e)
        }
        return ok(out)
      }
      // below the cache: a disk read; the iterator reads a snapshot of the DB taken now
      const stop = Math.min(hi, this.#cacheFirst)
      const it = this.#db.iterator({
        gte: entryKey(next),
        lt: entryKey(stop),
        highWaterMarkBytes: READ_CHUNK_BYTES,
      })
      try {
        while (next < stop) {
          const batch = await it.nextv(Math.min(READ_CHUNK_ENTRIES, stop - next))
          if (batch.length === 0) break
          for (const [key, value] of batch) {
            const e = decodeIndexKey(key, KeySpace.Entry) === next ? decodeEntryValue(next, value) : null
            if (e === null) return fail('CORRUPT', `${this.dir}: entry ${next} is missing or fails its checksum`)
            size += entryBytes(e)
            if (out.length > 0 && size > bytesMax) return ok(out)
            out.push(e)
            next++
          }
        }
      } finally {
        await it.close()
      }
      if (next < stop) {
        // a gap: compaction deleted it meanwhile, or the disk lost it
        if (next <= this.#floor) return fail('COMPACTED', `entry ${next} was compacted during the read`)
        return fail('CORRUPT', `${this.dir}: entry ${next} is missing inside the retained log`)
      }
    }
    return ok(out)
  }

  /** The state machine's keys in [gte, lt) (as suffixes, without the space byte), at most `limit`. */
  async readStateMachine(gte: Uint8Array, lt: Uint8Array | null, limit: number): Promise<Array<[Uint8Array, Uint8Array]>> {
    assert(!this.#closed, 'readStateMachine on a closed store')
    const lo = Buffer.concat([Uint8Array.of(KeySpace.StateMachine), gte])
    const hi = lt === null ? spaceEnd(KeySpace.StateMachine) : Buffer.concat([Uint8Array.of(KeySpace.StateMachine), lt])
    const out: Array<[Uint8Array, Uint8Array]> = []
    for await (const [key, value] of this.#db.iterator({ gte: lo, lt: hi, limit })) out.push([key.subarray(1), value])
    return out
  }

  // ---- writes -------------------------------------------------------------------------

  /**
   * Step 2 of the Ready contract: `rd.snapshot`, then `rd.entries` (replacing any stored
   * suffix from their first index on), then `rd.hardState`, plus `extra` state machine
   * writes, as one chained batch written with `sync: true`. Resolves once durable; the
   * in-memory view (what the core reads) changes only then. Call it for every Ready
   * (it returns at once when there is nothing to write): it is also how the store learns
   * which entries were handed out for applying and may leave the cache.
   */
  persist(rd: Ready, extra?: readonly StateMachineOp[]): Promise<void> {
    if (rd.snapshot === null && rd.entries.length === 0 && !extra?.length) {
      if (rd.hardState === null) {
        assert(!this.#closed, 'persist on a closed store')
        this.#noteHandedOut(rd)
        return Promise.resolve()
      }
      if (!rd.mustSync) {
        // commit index only: kept for the next write (in call order, after the writes queued before it)
        const hard = rd.hardState
        return this.#serially(async () => {
          this.#unwritten = hard
          this.#hard = hard
          this.#noteHandedOut(rd)
        })
      }
    }
    return this.#serially(() => this.#persistNow(rd, extra))
  }

  /**
   * Saves the state machine's state as of `appliedIndex` (not synced: see the header),
   * and moves the snapshot metadata there, so that a restart resumes from it and
   * reloads only the entries after it. `blob` is kept (not copied) as snapshot data.
   */
  saveApplied(appliedIndex: number, blob: Uint8Array, extra?: readonly StateMachineOp[]): Promise<void> {
    return this.#serially(async () => {
      assert(appliedIndex >= this.#snap.index, () => `saveApplied(${appliedIndex}) older than the snapshot at ${this.#snap.index}`)
      assert(appliedIndex <= this.#hard.commit, () => `saveApplied(${appliedIndex}) beyond the durable commit ${this.#hard.commit}`)
      assert(appliedIndex <= this.#last, () => `saveApplied(${appliedIndex}) beyond last ${this.#last}`)
      const confLog = this.#confLog
      let k = 0
      while (k < confLog.length && confLog[k]!.index <= appliedIndex) k++
      const conf = k > 0 ? confLog[k - 1]!.conf : this.#snap.conf
      const meta: SnapshotMetadata = { index: appliedIndex, term: this.term(appliedIndex), conf }
      const applied: AppliedState = { index: appliedIndex, blob }
      const batch = this.#db.batch()
      batch.put(APPLIED_KEY, encodeApplied(applied))
      batch.put(SNAPSHOT_META_KEY, encodeSnapshotMeta(meta))
      // the commit that covers appliedIndex goes with it, if it is not on disk yet
      this.#putUnwritten(batch)
      if (extra) addStateMachineOps(batch, extra)
      await batch.write({ sync: false })
      this.#unwritten = null
      this.#applied = applied
      this.#snap = meta
      if (k > 0) this.#confLog = confLog.slice(k)
      this.#snapshot = null
      this.#handedOut = Math.max(this.#handedOut, appliedIndex)
      this.#evict()
    })
  }

  /**
   * Retention: deletes entries <= `throughIndex`, keeping the term of the last one so
   * term(firstIndex - 1) still answers. The saved applied state must already cover
   * `throughIndex` (the state machine never needs a compacted entry again).
   */
  async compact(throughIndex: number): Promise<void> {
    await this.#serially(async () => {
      if (throughIndex <= this.#floor) return
      assert(throughIndex <= this.#last, () => `compact(${throughIndex}) beyond last ${this.#last}`)
      const applied = this.#applied
      assert(applied !== null && throughIndex <= applied.index, () => `compact(${throughIndex}) beyond the saved applied state (${applied?.index ?? 'none'}): saveApplied first`)
      const term = this.term(throughIndex)
      const starts = this.#runStarts
      const batch = this.#db.batch()
      let k = 0
      while (k < starts.length && starts[k]! <= throughIndex) batch.del(termRunKey(starts[k++]!))
      batch.put(termRunKey(throughIndex), encodeTerm(term))
      // the state this compaction relies on, in the same synced write (see the header)
      batch.put(APPLIED_KEY, encodeApplied(applied))
      batch.put(SNAPSHOT_META_KEY, encodeSnapshotMeta(this.#snap))
      this.#putUnwritten(batch)
      await batch.write({ sync: true })
      this.#unwritten = null
      this.#runStarts = [throughIndex, ...starts.slice(k)]
      this.#runTerms = [term, ...this.#runTerms.slice(k)]
      this.#floor = throughIndex
      this.#dropCachedThrough(throughIndex)
    })
    await this.#clearBelowFloor()
  }

  /** Waits for pending writes and closes the database. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#queue
    await Promise.allSettled([...this.#background])
    if (this.#unwritten !== null && this.#failure === null) {
      const batch = this.#db.batch()
      this.#putUnwritten(batch)
      await batch.write({ sync: true })
      this.#unwritten = null
    }
    await this.#db.close()
  }

  // ---- internals ----------------------------------------------------------------------

  /** Runs writes one at a time in call order; after a failed one, everything fails (fail-stop). */
  #serially<T>(op: () => Promise<T>): Promise<T> {
    assert(!this.#closed, 'write to a closed store')
    const run = async (): Promise<T> => {
      if (this.#failure !== null) throw new Error(`group store ${this.dir} failed earlier; the replica must stop`, { cause: this.#failure })
      try {
        return await op()
      } catch (e) {
        this.#failure ??= e
        throw e
      }
    }
    const p = this.#queue.then(run)
    this.#queue = p.catch(() => undefined)
    return p
  }

  async #persistNow(rd: Ready, extra: readonly StateMachineOp[] | undefined): Promise<void> {
    const batch = this.#db.batch()
    // the view after this write, made current only once it is durable
    let floor = this.#floor
    let last = this.#last
    let starts = this.#runStarts
    let terms = this.#runTerms
    let runsCopied = false
    let snap = this.#snap
    let applied = this.#applied
    let confLog = this.#confLog
    let appendFrom = -1
    let appendSkip = 0

    const s = rd.snapshot
    if (s !== null) {
      const m = s.metadata
      assert(m.index >= snap.index, () => `persist: snapshot at ${m.index} older than ours at ${snap.index}`)
      // entries above the snapshot go now, in this batch; those at or below it become
      // garbage below the new floor, range-deleted after the write
      for (let i = Math.max(floor, m.index) + 1; i <= last; i++) batch.del(writeIndexKey(this.#scratchKey, KeySpace.Entry, i))
      for (const start of starts) batch.del(termRunKey(start))
      batch.put(termRunKey(m.index), encodeTerm(m.term))
      batch.put(SNAPSHOT_META_KEY, encodeSnapshotMeta(m))
      applied = { index: m.index, blob: s.data }
      batch.put(APPLIED_KEY, encodeApplied(applied))
      floor = last = m.index
      starts = [m.index]
      terms = [m.term]
      runsCopied = true
      snap = m
      confLog = []
    }

    const ents = rd.entries
    if (ents.length > 0 && ents[ents.length - 1]!.index > floor) {
      let from = ents[0]!.index
      if (from <= floor) {
        appendSkip = floor + 1 - from // the part at or below the floor is compacted already
        from = floor + 1
      }
      assert(from <= last + 1, () => `persist: gap, entries from ${from} after last ${last}`)
      const newLast = ents[ents.length - 1]!.index
      // a conflicting suffix longer than the new entries: delete the rest
      for (let i = newLast + 1; i <= last; i++) batch.del(writeIndexKey(this.#scratchKey, KeySpace.Entry, i))
      // term runs from `from` on are rewritten (the first run, at the floor < from, stays)
      let keep = starts.length
      while (keep > 1 && starts[keep - 1]! >= from) keep--
      if (keep < starts.length || !runsCopied) {
        for (let k = keep; k < starts.length; k++) batch.del(termRunKey(starts[k]!))
        starts = starts.slice(0, keep)
        terms = terms.slice(0, keep)
      }
      if (confLog.length > 0 && confLog[confLog.length - 1]!.index >= from) confLog = confLog.filter((c) => c.index < from)
      let prevTerm = terms[terms.length - 1]! // the run left last covers from - 1
      for (let k = appendSkip; k < ents.length; k++) {
        const e = ents[k]!
        // plain tests, not assert(cond, () => msg): per entry, so no closure allocation
        if (e.index !== from + k - appendSkip) assert(false, `persist: entries not contiguous at ${e.index}`)
        if (e.term < prevTerm) assert(false, `persist: entry ${e.index} has term ${e.term} below ${prevTerm}`)
        if (e.type === EntryType.ConfChange) {
          const cc = decodeConfChange(e.data)
          assert(cc !== null, () => `persist: entry ${e.index} is a ConfChange that does not decode`)
          if (confLog === this.#confLog) confLog = confLog.slice()
          confLog.push({ index: e.index, conf: cc.conf })
        }
        if (e.term !== prevTerm) {
          starts.push(e.index)
          terms.push(e.term)
          batch.put(termRunKey(e.index), encodeTerm(e.term))
          prevTerm = e.term
        }
        batch.put(writeIndexKey(this.#scratchKey, KeySpace.Entry, e.index), writeEntryValue(this.#scratchFor(entryValueBytes(e)), e))
      }
      last = newLast
      appendFrom = from
    }

    // a newer hard state supersedes the unwritten one (the commit index never goes back)
    if (rd.hardState !== null) batch.put(HARD_STATE_KEY, encodeHardState(rd.hardState))
    else this.#putUnwritten(batch)
    if (extra) addStateMachineOps(batch, extra)

    if (batch.length > 0) {
      // a Ready whose only change is the commit index need not wait for the disk
      await batch.write({ sync: rd.mustSync })
    } else {
      await batch.close()
    }

    this.#floor = floor
    this.#last = last
    this.#runStarts = starts
    this.#runTerms = terms
    this.#confLog = confLog
    if (rd.hardState !== null) this.#hard = rd.hardState
    this.#unwritten = null
    if (s !== null) {
      this.#snap = snap
      this.#applied = applied
      this.#snapshot = null
      this.#cache = []
      this.#cacheHead = 0
      this.#cacheFirst = floor + 1
      this.#cacheBytes = 0
      this.#handedOut = Math.max(this.#handedOut, floor)
    }
    if (appendFrom >= 0) this.#cacheAppend(appendFrom, ents, appendSkip)
    this.#noteHandedOut(rd)
    if (s !== null) void this.#clearBelowFloor()
  }

  #putUnwritten(batch: { put(key: Uint8Array, value: Uint8Array): unknown }): void {
    if (this.#unwritten !== null) batch.put(HARD_STATE_KEY, encodeHardState(this.#unwritten))
  }

  #scratchFor(bytes: number): Buffer {
    if (this.#scratchValue.length < bytes) this.#scratchValue = Buffer.allocUnsafeSlow(Math.max(bytes, 2 * this.#scratchValue.length))
    return this.#scratchValue
  }

  /** Puts ents[skip..] at `from` in the cache, dropping cached entries from `from` on. */
  #cacheAppend(from: number, ents: readonly Entry[], skip: number): void {
    // eviction only takes handed-out (committed) entries and truncation only uncommitted ones
    assert(from >= this.#cacheFirst, () => `persist: entries from ${from} replace evicted entries (cached from ${this.#cacheFirst})`)
    const cache = this.#cache
    const keepLen = this.#cacheHead + (from - this.#cacheFirst)
    for (let k = keepLen; k < cache.length; k++) this.#cacheBytes -= entryBytes(cache[k]!)
    cache.length = keepLen
    for (let k = skip; k < ents.length; k++) {
      cache.push(ents[k]!)
      this.#cacheBytes += entryBytes(ents[k]!)
    }
  }

  #noteHandedOut(rd: Ready): void {
    const c = rd.committedEntries
    if (c.length > 0) this.#handedOut = Math.max(this.#handedOut, c[c.length - 1]!.index)
    this.#evict()
  }

  /** Drops handed-out, unpinned entries from the front of the cache while it is over its budget. */
  #evict(): void {
    if (this.#cacheBytes <= this.#cacheBytesMax) return
    const bound = Math.min(this.#handedOut, this.#pinFrom - 1, this.#last)
    const cache = this.#cache
    let head = this.#cacheHead
    let first = this.#cacheFirst
    while (this.#cacheBytes > this.#cacheBytesMax && first <= bound) {
      this.#cacheBytes -= entryBytes(cache[head]!)
      cache[head] = undefined as unknown as Entry // release it now; the slot goes at the next compaction of the array
      head++
      first++
    }
    this.#cacheFirst = first
    this.#cacheHead = head
    this.#compactCacheArray()
  }

  #dropCachedThrough(index: number): void {
    const cache = this.#cache
    while (this.#cacheFirst <= index && this.#cacheFirst <= this.#last) {
      this.#cacheBytes -= entryBytes(cache[this.#cacheHead]!)
      cache[this.#cacheHead++] = undefined as unknown as Entry
      this.#cacheFirst++
    }
    if (this.#cacheFirst <= index) this.#cacheFirst = index + 1
    this.#compactCacheArray()
  }

  /** Amortised O(1): copy the live part down once the dead prefix is half the array. */
  #compactCacheArray(): void {
    if (this.#cacheHead > 1024 && this.#cacheHead * 2 > this.#cache.length) {
      this.#cache = this.#cache.slice(this.#cacheHead)
      this.#cacheHead = 0
    }
  }

  /** Deletes entry keys at or below the floor (left by compaction or a snapshot install). */
  #clearBelowFloor(): Promise<void> {
    const through = this.#floor
    const p = this.#db.clear({ gte: ENTRY_SPACE_START, lte: entryKey(through) }).catch((e: unknown) => {
      // the floor is durable already, so stale keys below it are harmless and retried at open
      this.#failure ??= e
    })
    this.#background.add(p)
    void p.finally(() => this.#background.delete(p))
    return p
  }
}

function addStateMachineOps(batch: ReturnType<Db['batch']>, ops: readonly StateMachineOp[]): void {
  for (const op of ops) {
    assert(op.key.length > 0 && op.key[0] === KeySpace.StateMachine, 'extra ops may only write the state machine key space (stateMachineKey)')
    if (op.type === 'put') batch.put(op.key, op.value)
    else batch.del(op.key)
  }
}

// ---- open --------------------------------------------------------------------------------

async function load(db: Db, dir: string, voters: readonly NodeId[]): Promise<Result<Loaded, StoreOpenError>> {
  const corrupt = (what: string) => fail('STORE_CORRUPT' as const, `group store ${dir} is damaged: ${what}`)
  let format = await db.get(FORMAT_KEY)
  if (format === undefined) {
    for await (const _ of db.keys({ limit: 1 })) return corrupt('it holds data but no format marker (not a raftmq group store?)')
    const batch = db.batch()
    batch.put(FORMAT_KEY, encodeFormat(FORMAT_VERSION))
    batch.put(SNAPSHOT_META_KEY, encodeSnapshotMeta({ index: 0, term: 0, conf: { voters: [...voters].sort((a, b) => a - b) } }))
    batch.put(termRunKey(0), encodeTerm(0))
    batch.put(HARD_STATE_KEY, encodeHardState({ term: 0, vote: 0, commit: 0 }))
    await batch.write({ sync: true })
    format = encodeFormat(FORMAT_VERSION)
  }
  const version = decodeFormat(format)
  if (version !== FORMAT_VERSION) {
    return fail('STORE_INCOMPATIBLE', `group store ${dir} has format ${version ?? 'unreadable'}, this raftmq reads format ${FORMAT_VERSION}`)
  }
  const hsRaw = await db.get(HARD_STATE_KEY)
  const hard = hsRaw === undefined ? null : decodeHardState(hsRaw)
  if (hard === null) return corrupt('hard state missing or unreadable')
  const snapRaw = await db.get(SNAPSHOT_META_KEY)
  const snap = snapRaw === undefined ? null : decodeSnapshotMeta(snapRaw)
  if (snap === null) return corrupt('snapshot metadata missing or unreadable')
  const appliedRaw = await db.get(APPLIED_KEY)
  const applied = appliedRaw === undefined ? null : decodeApplied(appliedRaw)
  if (appliedRaw !== undefined && applied === null) return corrupt('applied state unreadable')

  const runStarts: number[] = []
  const runTerms: number[] = []
  for await (const [key, value] of db.iterator({ gte: Uint8Array.of(KeySpace.TermRun), lt: spaceEnd(KeySpace.TermRun) })) {
    const start = decodeIndexKey(key, KeySpace.TermRun)
    const term = decodeTerm(value)
    if (start < 0 || term === null) return corrupt('unreadable term run')
    if (runTerms.length > 0 && term < runTerms[runTerms.length - 1]!) return corrupt(`term run at ${start} goes back to term ${term}`)
    runStarts.push(start)
    runTerms.push(term)
  }
  if (runStarts.length === 0) return corrupt('no term runs')
  const floor = runStarts[0]!

  // a crash after a compaction's floor moved but before its range delete finished
  await db.clear({ gte: ENTRY_SPACE_START, lte: entryKey(floor) })
  let last = floor
  for await (const key of db.keys({ gte: ENTRY_SPACE_START, lt: ENTRY_SPACE_END, reverse: true, limit: 1 })) last = decodeIndexKey(key, KeySpace.Entry)
  if (last < 0) return corrupt('unreadable entry key')

  if (runStarts[runStarts.length - 1]! > last) return corrupt(`term run starts at ${runStarts[runStarts.length - 1]} past the last entry ${last}`)
  if (hard.commit > last) return corrupt(`commit ${hard.commit} beyond the last entry ${last}: synced entries were lost`)
  if (snap.index < floor || snap.index > Math.max(hard.commit, floor)) return corrupt(`snapshot at ${snap.index} outside [${floor}, ${hard.commit}]`)
  if (applied !== null && applied.index !== snap.index) return corrupt(`applied state at ${applied.index} but snapshot at ${snap.index}`)

  // the entries the core may ask for: from the snapshot index on (its configuration scan, then applying)
  const termAt = (i: number): number => {
    let k = runStarts.length - 1
    while (runStarts[k]! > i) k--
    return runTerms[k]!
  }
  const cache: Entry[] = []
  const confLog: ConfAt[] = []
  let next = snap.index + 1
  if (next <= last) {
    const it = db.iterator({ gte: entryKey(next), lte: entryKey(last), highWaterMarkBytes: READ_CHUNK_BYTES })
    try {
      for (;;) {
        const chunk = await it.nextv(READ_CHUNK_ENTRIES)
        if (chunk.length === 0) break
        for (const [key, value] of chunk) {
          if (decodeIndexKey(key, KeySpace.Entry) !== next) return corrupt(`entry ${next} missing`)
          const e = decodeEntryValue(next, value)
          if (e === null) return corrupt(`entry ${next} fails its checksum`)
          if (e.term !== termAt(next)) return corrupt(`entry ${next} has term ${e.term}, its term run says ${termAt(next)}`)
          if (e.type === EntryType.ConfChange) {
            const cc = decodeConfChange(e.data)
            if (cc === null) return corrupt(`entry ${next} is a ConfChange that does not decode`)
            confLog.push({ index: next, conf: cc.conf })
          }
          cache.push(e)
          next++
        }
      }
    } finally {
      await it.close()
    }
    if (next <= last) return corrupt(`entry ${next} missing`)
  } else if (last > floor) {
    const raw = await db.get(entryKey(last))
    const e = raw === undefined ? null : decodeEntryValue(last, raw)
    if (e === null || e.term !== termAt(last)) return corrupt(`last entry ${last} unreadable or off its term run`)
  }
  return ok({ hard, snap, confLog, applied, runStarts, runTerms, last, cache })
}

function errorCode(e: unknown): string | undefined {
  const err = e as { code?: unknown; cause?: { code?: unknown } } | null
  const cause = err?.cause?.code
  if (typeof cause === 'string') return cause
  return typeof err?.code === 'string' ? err.code : undefined
}

function describe(e: unknown): string {
  const err = e as { message?: unknown; cause?: { message?: unknown } } | null
  const m = typeof err?.message === 'string' ? err.message : String(e)
  return typeof err?.cause?.message === 'string' ? `${m} (${err.cause.message})` : m
}
