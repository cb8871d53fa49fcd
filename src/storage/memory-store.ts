/**
 * MemoryStoreDisk: partition stores in memory, for the simulator (a PartitionStore per
 * directory, `open` is an OpenStore). Like LevelDB's log, a store's flushes land in
 * order: each unsynced flush is "written" (reads see it), a synced one makes it and every
 * earlier one durable, and `crash` gives the disk a restarted machine would see — the
 * durable state plus, at most, a prefix of the unsynced flushes (`keep` of them; none by
 * default). A store stays in use (STORE_IN_USE) until closed; a crash forgets that.
 * Semantics kept from GroupStore: `mustExist`, `expectApplied` (STORE_MISSING,
 * STORE_CORRUPT), the contiguity of the unapplied entries, entries the applied state
 * covers dropped at open. Faults beyond crashes (full disk, I/O errors) are not modelled.
 *
 * Imports src/base, src/raft types and ./partition-store, ./group-store, ./keys types.
 */
import { assert, fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import type { Entry, HardState } from '../raft/index.js'
import type { GroupStoreOptions, GroupStoreState, StoreOpenError, StoreWriteError } from './group-store.js'
import type { AppliedState } from './keys.js'
import type { OpenStore, PartitionStore } from './partition-store.js'

interface StoreImage {
  records: Map<number, Uint8Array>
  applied: AppliedState | null
  hardState: HardState | null
  entries: Map<number, Entry>
  pendingSnapshot: AppliedState | null
}

type Op =
  | { readonly k: 'record'; readonly offset: number; readonly bytes: Uint8Array }
  | { readonly k: 'clear'; readonly below: number }
  | { readonly k: 'applied'; readonly a: AppliedState }
  | { readonly k: 'pending'; readonly a: AppliedState | null }
  | { readonly k: 'hs'; readonly hs: HardState }
  | { readonly k: 'del'; readonly index: number }
  | { readonly k: 'entry'; readonly e: Entry }

interface DiskStore {
  durable: StoreImage
  current: StoreImage
  /** Flushes written since the last sync, oldest first. */
  unsynced: Op[][]
  open: boolean
}

function emptyImage(): StoreImage {
  return { records: new Map(), applied: null, hardState: null, entries: new Map(), pendingSnapshot: null }
}

function cloneImage(i: StoreImage): StoreImage {
  return { records: new Map(i.records), applied: i.applied, hardState: i.hardState, entries: new Map(i.entries), pendingSnapshot: i.pendingSnapshot }
}

function applyOps(img: StoreImage, ops: readonly Op[]): void {
  for (const op of ops) {
    switch (op.k) {
      case 'record':
        img.records.set(op.offset, op.bytes)
        break
      case 'clear':
        for (const o of [...img.records.keys()]) if (o < op.below) img.records.delete(o)
        break
      case 'applied':
        img.applied = op.a
        break
      case 'pending':
        img.pendingSnapshot = op.a
        break
      case 'hs':
        img.hardState = op.hs
        break
      case 'del':
        img.entries.delete(op.index)
        break
      case 'entry':
        img.entries.set(op.e.index, op.e)
        break
    }
  }
}

export class MemoryStoreDisk {
  readonly #stores = new Map<string, DiskStore>()
  /** Flushes and syncs made, for the simulator's statistics. */
  flushes = 0
  syncs = 0

  /** An OpenStore over this disk. */
  readonly open: OpenStore = (dir, opts) => Promise.resolve(this.#open(dir, opts))

  #open(dir: string, opts: GroupStoreOptions): Result<{ store: PartitionStore; state: GroupStoreState }, StoreOpenError> {
    let s = this.#stores.get(dir)
    if (s === undefined) {
      if (opts.mustExist) return fail('STORE_MISSING', `group store ${dir} is missing, yet the write-ahead log says it was created`)
      s = { durable: emptyImage(), current: emptyImage(), unsynced: [], open: false }
      this.#stores.set(dir, s)
    }
    if (s.open) return fail('STORE_IN_USE', `group store ${dir} is in use`)
    const img = s.current
    const applied = img.applied?.index ?? 0
    if (opts.expectApplied !== undefined && applied < opts.expectApplied) {
      return fail('STORE_CORRUPT', `group store ${dir} holds state up to Raft index ${applied}, but it was synced up to ${opts.expectApplied}: it lost acknowledged data`)
    }
    // entries the applied state covers are garbage left by a crash before their delete
    for (const i of [...img.entries.keys()]) if (i <= applied) img.entries.delete(i)
    const entries: Entry[] = []
    const sorted = [...img.entries.keys()].sort((a, b) => a - b)
    for (const i of sorted) {
      const want = applied + 1 + entries.length
      if (i !== want) return fail('STORE_CORRUPT', `group store ${dir} is damaged: Raft entry ${want} is missing (found ${i})`)
      entries.push(img.entries.get(i)!)
    }
    s.open = true
    return ok({ store: new MemoryStore(dir, s, this), state: { applied: img.applied, hardState: img.hardState, entries, pendingSnapshot: img.pendingSnapshot } })
  }

  /** The disk a restarted machine sees: what was synced, plus the oldest `keep` unsynced flushes of each store. */
  crash(keep: (dir: string, unsynced: number) => number = () => 0): MemoryStoreDisk {
    const next = new MemoryStoreDisk()
    for (const [dir, s] of this.#stores) {
      const img = cloneImage(s.durable)
      const k = Math.min(s.unsynced.length, Math.max(0, keep(dir, s.unsynced.length)))
      for (let j = 0; j < k; j++) applyOps(img, s.unsynced[j]!)
      next.#stores.set(dir, { durable: img, current: cloneImage(img), unsynced: [], open: false })
    }
    return next
  }

  /** The unsynced flushes of the store in `dir` (0: everything written is durable). */
  unsyncedFlushes(dir: string): number {
    return this.#stores.get(dir)?.unsynced.length ?? 0
  }

  /** @internal: a flush of a store on this disk. */
  write(s: DiskStore, ops: Op[], sync: boolean): void {
    this.flushes++
    if (ops.length > 0) {
      applyOps(s.current, ops)
      s.unsynced.push(ops)
    }
    if (sync) {
      this.syncs++
      s.durable = cloneImage(s.current)
      s.unsynced = []
    }
  }
}

class MemoryStore implements PartitionStore {
  readonly dir: string
  readonly #s: DiskStore
  readonly #disk: MemoryStoreDisk
  #staged: Op[] = []
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false
  readonly failure: { readonly code: StoreWriteError; readonly message: string } | null = null

  constructor(dir: string, s: DiskStore, disk: MemoryStoreDisk) {
    this.dir = dir
    this.#s = s
    this.#disk = disk
  }

  putRecord(offset: number, batch: Uint8Array): void {
    // a copy, as LevelDB takes one at the write (the caller may reuse its buffer after)
    this.#staged.push({ k: 'record', offset, bytes: batch.slice() })
  }

  deleteRecordsBelow(offset: number): void {
    this.#staged.push({ k: 'clear', below: offset })
  }

  saveApplied(a: AppliedState): void {
    this.#staged.push({ k: 'applied', a: { ...a, blob: a.blob.slice() } })
  }

  putPendingSnapshot(a: AppliedState | null): void {
    this.#staged.push({ k: 'pending', a: a === null ? null : { ...a, blob: a.blob.slice() } })
  }

  putHardState(hs: HardState): void {
    this.#staged.push({ k: 'hs', hs: { ...hs } })
  }

  replaceEntries(deleteFrom: number, deleteTo: number, entries: readonly Entry[]): void {
    for (let i = deleteFrom; i <= deleteTo; i++) this.#staged.push({ k: 'del', index: i })
    for (const e of entries) this.#staged.push({ k: 'entry', e: { ...e, data: e.data.slice() } })
  }

  flush(opts: { sync: boolean }): Promise<Result<void, StoreWriteError>> {
    assert(!this.#closed, () => `flush of closed group store ${this.dir}`)
    const ops = this.#staged
    this.#staged = []
    // lands on a later microtask, in call order, like GroupStore's chained batches
    const p = this.#queue.then(() => {
      this.#disk.write(this.#s, ops, opts.sync)
      return ok(undefined)
    })
    this.#queue = p
    return p
  }

  async readRecords(from: number, to: number, bytesMax = Infinity): Promise<Result<Array<[number, Uint8Array]>, StoreWriteError>> {
    assert(!this.#closed, () => `read of closed group store ${this.dir}`)
    await null
    const out: Array<[number, Uint8Array]> = []
    let bytes = 0
    const offsets = [...this.#s.current.records.keys()].filter((o) => o >= from && o <= to).sort((a, b) => a - b)
    for (const o of offsets) {
      const v = this.#s.current.records.get(o)!
      out.push([o, v])
      bytes += v.length
      if (bytes >= bytesMax) break
    }
    return ok(out)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#queue
    this.#s.open = false
  }
}
