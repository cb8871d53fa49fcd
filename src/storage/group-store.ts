/**
 * GroupStore: one group replica's partition store, its own LevelDB under
 * `<data-dir>/groups/<group-id>/` (the design the user asked for, DESIGN §4). The group
 * applies committed entries into it: record batches by offset, the state machine's saved
 * state with the applied index, and — only when a WAL segment is retired or the node
 * stops — the hard state and the Raft entries the applied state does not cover yet.
 *
 * It is written WITHOUT sync on the produce path: the Raft WAL (wal/) is what makes an
 * acknowledged entry durable. A synced write here (`flush({ sync: true })`) also makes
 * every earlier unsynced write durable (LevelDB's log is sequential), which is what lets
 * the log engine retire a WAL segment once each group with entries in it has made one.
 *
 * Writes are staged (`putRecord`, `saveApplied`, ...) and go out as ONE chained batch per
 * `flush`, one flush at a time in call order: two batches in flight at once could be
 * reordered by libuv's pool. A failed write fails the store (every later flush fails with
 * the same error, fail-stop), except ENOSPC, which leaves the staged ops staged so that a
 * later flush retries them (disk full is retriable, DESIGN §4).
 *
 * Reads (`readRecords`) return the values as stored; the replica checks each batch's CRC
 * and its offset against the key, so a damaged record is reported, never served.
 *
 * Open handles are a budget, not one per group: a LevelDB holds at least four file
 * descriptors (LOCK, LOG, MANIFEST, its log file), so 10,000 partitions open at once would
 * need 40,000. A thread keeps at most `setOpenBudget(n)` databases open (least recently
 * used closed first, never one in use) and reopens a closed one when it is next written
 * or read: an idle partition costs no descriptor. The budget bounds opens too: a store that
 * must (re)open waits for a slot, so thousands of groups checkpointing or closing at once
 * (WAL retirement, shutdown) never hold more databases open than it (they hit EMFILE at
 * 10,000 partitions before).
 *
 * Opening: a directory that already holds a LevelDB (its CURRENT file) but no format key
 * is damaged, not new (LevelDB skips a corrupt log record silently, so a store can come
 * back looking empty); the caller may also insist the store exists (`mustExist`), when
 * the WAL vouches that it was created.
 *
 * Imports classic-level, node:fs, src/base, src/raft types and ./keys.
 */
import { access, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { assert, fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import type { Entry, HardState } from '../raft/index.js'
import {
  APPLIED_KEY,
  FORMAT_KEY,
  FORMAT_VERSION,
  HARD_STATE_KEY,
  KeySpace,
  PENDING_SNAPSHOT_KEY,
  decodeApplied,
  decodeEntryValue,
  decodeFormat,
  decodeHardState,
  decodeIndexKey,
  encodeApplied,
  encodeEntryValue,
  encodeFormat,
  encodeHardState,
  entryKey,
  indexKey,
  recordKey,
  spaceEnd,
} from './keys.js'
import type { AppliedState } from './keys.js'

type Db = ClassicLevel<Uint8Array, Uint8Array>
type Op = { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array } | { readonly type: 'del'; readonly key: Uint8Array }

export type StoreOpenError = 'STORE_IN_USE' | 'STORE_CORRUPT' | 'STORE_INCOMPATIBLE' | 'STORE_MISSING' | 'STORE_IO'
export type StoreWriteError = 'STORE_FULL' | 'STORE_FAILED'

export interface GroupStoreOptions {
  /** Refuse to create: the WAL says this store was created, so a missing one was lost. */
  readonly mustExist?: boolean
  /** The applied index the store was last synced at (its newest checkpoint in the WAL): a store behind it lost synced data. */
  readonly expectApplied?: number
  /** LevelDB tuning (README: storage, and bench/results/storage.md for the measurements). */
  readonly leveldb?: { readonly cacheSize?: number; readonly writeBufferSize?: number; readonly compression?: boolean }
}

/** What a store holds at open. */
export interface GroupStoreState {
  readonly applied: AppliedState | null
  readonly hardState: HardState | null
  /** Raft entries after the applied index, contiguous, oldest first. */
  readonly entries: readonly Entry[]
  /** A leader's snapshot received whole and not installed yet (keys.ts PENDING_SNAPSHOT_KEY), or null. */
  readonly pendingSnapshot: AppliedState | null
}

/** LevelDB defaults for a partition store; chosen in bench/results/storage.md. */
export const GROUP_STORE_LEVELDB = { cacheSize: 1 << 20, writeBufferSize: 4 << 20, compression: false } as const

const READ_CHUNK_BYTES = 1 << 20
const READ_CHUNK_ITEMS = 1000

/**
 * The databases this thread keeps open, least recently used first. Over the budget, idle
 * ones are closed (a closed one reopens on its next use).
 */
class OpenBudget {
  max = 256
  readonly #lru = new Set<GroupStore>()
  /** Opens in progress that hold a slot. */
  #reserved = 0
  /** Opens waiting for a slot: thousands of groups checkpointing or closing at once must not all open. */
  readonly #waiters: Array<() => void> = []

  touch(s: GroupStore): void {
    this.#lru.delete(s)
    this.#lru.add(s)
  }

  forget(s: GroupStore): void {
    this.#lru.delete(s)
  }

  get open(): number {
    return this.#lru.size
  }

  /** Waits until a database may open (a slot under `max`), parking idle ones to make room. */
  async slot(): Promise<void> {
    for (;;) {
      if (this.#lru.size + this.#reserved < this.max) {
        this.#reserved++
        return
      }
      const wait = new Promise<void>((resolve) => this.#waiters.push(resolve))
      this.trim()
      await wait
    }
  }

  /** An open that held a slot has finished (its store is in the LRU now, or it failed). */
  opened(): void {
    this.#reserved--
    this.#wake()
  }

  /** A database has closed: its slot is free. */
  closed(): void {
    this.#wake()
  }

  #wake(): void {
    while (this.#waiters.length > 0 && this.#lru.size + this.#reserved < this.max) this.#waiters.shift()!()
    if (this.#waiters.length > 0) this.trim()
  }

  trim(): void {
    const want = this.max - this.#reserved - (this.#waiters.length > 0 ? 1 : 0)
    if (this.#lru.size <= want) return
    for (const s of this.#lru) {
      if (this.#lru.size <= want) return
      if (s.idle) {
        this.#lru.delete(s)
        void s.park()
      }
    }
  }
}

const budget = new OpenBudget()

export class GroupStore {
  readonly dir: string
  readonly #db: Db
  /** Operations using the database now (it is not parked while any runs). */
  #inUse = 0
  /** Closing (parking) or reopening, in progress. */
  #transition: Promise<void> | null = null
  #staged: Op[] = []
  #stagedClear: number | null = null
  #queue: Promise<unknown> = Promise.resolve()
  #failure: { code: StoreWriteError; message: string } | null = null
  #closed = false

  private constructor(dir: string, db: Db) {
    this.dir = dir
    this.#db = db
    budget.touch(this)
    budget.trim()
  }

  /** How many databases this thread may keep open at once (the rest are parked: closed until used). */
  static setOpenBudget(max: number): void {
    assert(Number.isSafeInteger(max) && max >= 1, () => `open budget ${max}`)
    budget.max = max
    budget.trim()
  }

  /** Databases open in this thread now. */
  static get openCount(): number {
    return budget.open
  }

  /** True when nothing uses the database (the budget may park it). */
  get idle(): boolean {
    return this.#inUse === 0 && this.#transition === null && !this.#closed && this.#db.status === 'open'
  }

  /** Closes the database until its next use (the budget's call). */
  park(): Promise<void> {
    if (!this.idle) return Promise.resolve()
    const t = this.#db.close().finally(() => {
      this.#transition = null
      budget.closed()
    })
    this.#transition = t
    return t
  }

  async #closeForReopen(): Promise<void> {
    while (this.#transition) await this.#transition
    if (this.#db.status !== 'open') return
    budget.forget(this)
    const t = this.#db.close().catch(() => undefined).finally(() => {
      this.#transition = null
      budget.closed()
    })
    this.#transition = t
    await t
  }

  /** Runs `fn` on the open database, reopening it if it was parked. */
  async #use<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    this.#inUse++
    try {
      while (this.#transition) await this.#transition
      if (this.#db.status !== 'open') {
        await budget.slot()
        while (this.#transition) await this.#transition
        // another use of this store may have reopened it while this one waited for a slot
        if ((this.#db.status as string) !== 'open') {
          const t = this.#db.open({ createIfMissing: false }).finally(() => (this.#transition = null))
          this.#transition = t
          let opened = false
          try {
            await t
            opened = true
          } finally {
            if (opened) budget.touch(this)
            budget.opened()
          }
        } else {
          budget.opened()
        }
      }
      budget.touch(this)
      return await fn(this.#db)
    } finally {
      this.#inUse--
      budget.trim()
    }
  }

  static async open(dir: string, opts: GroupStoreOptions = {}): Promise<Result<{ store: GroupStore; state: GroupStoreState }, StoreOpenError>> {
    await budget.slot()
    try {
      return await GroupStore.#open(dir, opts)
    } finally {
      budget.opened()
    }
  }

  static async #open(dir: string, opts: GroupStoreOptions): Promise<Result<{ store: GroupStore; state: GroupStoreState }, StoreOpenError>> {
    const existed = await exists(join(dir, 'CURRENT'))
    if (!existed && opts.mustExist) return fail('STORE_MISSING', `group store ${dir} is missing, yet the write-ahead log says it was created: restore it from a replica or a backup`)
    const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view', ...GROUP_STORE_LEVELDB, ...opts.leveldb })
    try {
      await db.open({ createIfMissing: !existed })
    } catch (e) {
      if (errorCode(e) === 'LEVEL_LOCKED') return fail('STORE_IN_USE', `group store ${dir} is in use: its LevelDB LOCK is held by another process, or it is open in this one`)
      return fail('STORE_IO', `cannot open group store ${dir}: ${describe(e)}`)
    }
    try {
      const state = await load(db, dir, existed)
      if (!state.ok) {
        await db.close()
        return state
      }
      const applied = state.value.applied?.index ?? 0
      if (opts.expectApplied !== undefined && applied < opts.expectApplied) {
        await db.close()
        return fail('STORE_CORRUPT', `group store ${dir} holds state up to Raft index ${applied}, but it was synced up to ${opts.expectApplied}: it lost acknowledged data; restore it from a replica or a backup`)
      }
      return ok({ store: new GroupStore(dir, db), state: state.value })
    } catch (e) {
      await db.close()
      return fail('STORE_IO', `cannot read group store ${dir}: ${describe(e)}`)
    }
  }

  /** Why the store stopped taking writes, if it did. */
  get failure(): { readonly code: StoreWriteError; readonly message: string } | null {
    return this.#failure
  }

  // ---- staging (no I/O) -----------------------------------------------------------------

  /** A record batch stored at `offset` (the value is referenced until the flush that carries it). */
  putRecord(offset: number, batch: Uint8Array): void {
    this.#staged.push({ type: 'put', key: recordKey(offset), value: batch })
  }

  /** Records below `offset` go, after the next flush (retention). */
  deleteRecordsBelow(offset: number): void {
    this.#stagedClear = Math.max(this.#stagedClear ?? 0, offset)
  }

  saveApplied(a: AppliedState): void {
    this.#staged.push({ type: 'put', key: APPLIED_KEY, value: encodeApplied(a) })
  }

  /** A received snapshot, kept apart from the applied state until it is installed (null: none any more). */
  putPendingSnapshot(a: AppliedState | null): void {
    this.#staged.push(a === null ? { type: 'del', key: PENDING_SNAPSHOT_KEY } : { type: 'put', key: PENDING_SNAPSHOT_KEY, value: encodeApplied(a) })
  }

  putHardState(hs: HardState): void {
    this.#staged.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardState(hs) })
  }

  /** The Raft entries after the applied state become exactly `entries` (deleting stored ones in `[from, to]` first). */
  replaceEntries(deleteFrom: number, deleteTo: number, entries: readonly Entry[]): void {
    for (let i = deleteFrom; i <= deleteTo; i++) this.#staged.push({ type: 'del', key: entryKey(i) })
    for (const e of entries) this.#staged.push({ type: 'put', key: entryKey(e.index), value: encodeEntryValue(e) })
  }

  // ---- writing ---------------------------------------------------------------------------

  /**
   * Writes everything staged so far as one batch, after any flush in flight. `sync` makes
   * it, and every earlier write, durable. An empty unsynced flush writes nothing.
   */
  flush(opts: { sync: boolean }): Promise<Result<void, StoreWriteError>> {
    assert(!this.#closed, () => `flush of closed group store ${this.dir}`)
    const run = async (): Promise<Result<void, StoreWriteError>> => {
      if (this.#failure) return fail(this.#failure.code, this.#failure.message)
      const ops = this.#staged
      const clear = this.#stagedClear
      this.#staged = []
      this.#stagedClear = null
      try {
        if (ops.length === 0 && !opts.sync && clear === null) return ok(undefined)
        await this.#use(async (db) => {
          if (ops.length > 0 || opts.sync) {
            const batch = db.batch()
            for (const op of ops) {
              if (op.type === 'put') batch.put(op.key, op.value)
              else batch.del(op.key)
            }
            // a synced empty batch still syncs LevelDB's log: the earlier writes become durable
            if (batch.length === 0) batch.put(FORMAT_KEY, encodeFormat(FORMAT_VERSION))
            await batch.write({ sync: opts.sync })
          }
          if (clear !== null) await db.clear({ gte: recordKey(0), lt: recordKey(clear) })
        })
        return ok(undefined)
      } catch (e) {
        if (isFull(e)) {
          // keep them for the next try, ahead of whatever was staged meanwhile. LevelDB refuses
          // every write after a failed compaction until it is reopened, and reopening needs
          // space too: so reopen only once the disk has room again (reads go on meanwhile)
          this.#staged = ops.concat(this.#staged)
          if (await hasRoom(this.dir)) await this.#closeForReopen()
          if (clear !== null) this.#stagedClear = Math.max(this.#stagedClear ?? 0, clear)
          return fail('STORE_FULL', `group store ${this.dir}: the disk is full (${describe(e)})`)
        }
        this.#failure = { code: 'STORE_FAILED', message: `group store ${this.dir} failed a write: ${describe(e)}` }
        return fail(this.#failure.code, this.#failure.message)
      }
    }
    const p = this.#queue.then(run)
    this.#queue = p
    return p
  }

  // ---- reading ---------------------------------------------------------------------------

  /**
   * Stored record batches with offsets in [from, to], oldest first, up to about
   * `bytesMax` (always the first one), as [offset, bytes] pairs straight from the store.
   * A store that cannot be read (reopened on a full disk, an I/O error) is a coded failure.
   */
  async readRecords(from: number, to: number, bytesMax = Infinity): Promise<Result<Array<[number, Uint8Array]>, StoreWriteError>> {
    assert(!this.#closed, () => `read of closed group store ${this.dir}`)
    try {
      return ok(await this.#read(from, to, bytesMax))
    } catch (e) {
      return fail(isFull(e) ? 'STORE_FULL' : 'STORE_FAILED', `group store ${this.dir} cannot be read: ${describe(e)}`)
    }
  }

  #read(from: number, to: number, bytesMax: number): Promise<Array<[number, Uint8Array]>> {
    return this.#use(async (db) => {
      const out: Array<[number, Uint8Array]> = []
      const it = db.iterator({ gte: recordKey(from), lte: recordKey(to), highWaterMarkBytes: READ_CHUNK_BYTES })
      let bytes = 0
      try {
        for (;;) {
          const chunk = await it.nextv(READ_CHUNK_ITEMS)
          if (chunk.length === 0) break
          for (const [key, value] of chunk) {
            out.push([decodeIndexKey(key, KeySpace.Record), value])
            bytes += value.length
            if (bytes >= bytesMax) return out
          }
        }
      } finally {
        await it.close()
      }
      return out
    })
  }

  /** Waits for flushes in flight and closes the database. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#queue
    while (this.#transition) await this.#transition
    budget.forget(this)
    if (this.#db.status === 'open') await this.#db.close()
    budget.closed()
  }
}

async function load(db: Db, dir: string, existed: boolean): Promise<Result<GroupStoreState, StoreOpenError>> {
  const corrupt = (what: string) => fail('STORE_CORRUPT' as const, `group store ${dir} is damaged: ${what}`)
  const format = await db.get(FORMAT_KEY)
  if (format === undefined) {
    // LevelDB drops a damaged log record silently: an existing store without its marker lost data
    if (existed) return corrupt('it has no format marker (a damaged or foreign LevelDB)')
    const batch = db.batch()
    batch.put(FORMAT_KEY, encodeFormat(FORMAT_VERSION))
    await batch.write({ sync: true })
    return ok({ applied: null, hardState: null, entries: [], pendingSnapshot: null })
  }
  const version = decodeFormat(format)
  if (version !== FORMAT_VERSION) return fail('STORE_INCOMPATIBLE', `group store ${dir} has format ${version ?? 'unreadable'}, this raftmq reads format ${FORMAT_VERSION}`)
  const appliedRaw = await db.get(APPLIED_KEY)
  const applied = appliedRaw === undefined ? null : decodeApplied(appliedRaw)
  if (appliedRaw !== undefined && applied === null) return corrupt('its applied state fails its checksum')
  const hsRaw = await db.get(HARD_STATE_KEY)
  const hardState = hsRaw === undefined ? null : decodeHardState(hsRaw)
  if (hsRaw !== undefined && hardState === null) return corrupt('its hard state fails its checksum')
  const pendingRaw = await db.get(PENDING_SNAPSHOT_KEY)
  const pendingSnapshot = pendingRaw === undefined ? null : decodeApplied(pendingRaw)
  if (pendingRaw !== undefined && pendingSnapshot === null) return corrupt('its received snapshot fails its checksum')

  const after = applied?.index ?? 0
  // entries the applied state covers are garbage left by a crash before their delete
  await db.clear({ gte: indexKey(KeySpace.Entry, 0), lte: entryKey(after) })
  const entries: Entry[] = []
  for await (const [key, value] of db.iterator({ gt: entryKey(after), lt: spaceEnd(KeySpace.Entry) })) {
    const index = decodeIndexKey(key, KeySpace.Entry)
    const want = after + 1 + entries.length
    if (index !== want) return corrupt(`Raft entry ${want} is missing (found ${index})`)
    const e = decodeEntryValue(index, value)
    if (e === null) return corrupt(`Raft entry ${index} fails its checksum`)
    entries.push(e)
  }
  return ok({ applied, hardState, entries, pendingSnapshot })
}

/** Free space from which a store refused for a full disk is reopened (LevelDB's own recovery writes a table). */
const REOPEN_FREE_BYTES = 64 << 20

async function hasRoom(dir: string): Promise<boolean> {
  try {
    const s = await statfs(dir)
    return s.bavail * s.bsize >= REOPEN_FREE_BYTES
  } catch {
    return false
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}

/** LevelDB reports a full disk in its message, node in its code. */
function isFull(e: unknown): boolean {
  return errorCode(e) === 'ENOSPC' || /No space left/i.test(describe(e))
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
