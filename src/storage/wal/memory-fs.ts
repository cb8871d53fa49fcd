/**
 * MemoryWalFs: a WalFs in memory that can lie the way a disk does, for the WAL's tests
 * and the deterministic simulator. Every fault is deterministic: randomness, where a
 * fault needs it, comes from a Prng the caller passes.
 *
 * What it models:
 * - Per file, what is durable and what is only written. A write lands in what reads see
 *   at once and becomes durable at the file's next successful datasync.
 * - Directory entries (create, rename, remove) become durable only at syncDir of their
 *   directory, as on Linux ext4. Directories themselves are durable as soon as mkdirp
 *   makes them (a simplification: the WAL creates its directory once, before any data).
 * - crash(opts) returns the file system a restarted machine would see: unsynced writes
 *   dropped (default), or the last one torn after a given or random byte (cut back to a
 *   512-byte sector boundary: disks write sectors whole), or each 512-byte sector of each
 *   unsynced write kept or lost at random (a disk that reorders), or all kept (the OS
 *   flushed them anyway). Unsynced directory entries are lost, except when
 *   everything is kept.
 * - fsyncgate: a datasync that fails (failNext('sync', …)) forgets the file's unsynced
 *   writes: reads still see them, a crash loses them, and a retried datasync "succeeds"
 *   without making them durable, as Linux does after writeback errors.
 * - failNext(op, code, times) fails the next calls of one kind; setCapacity(bytes) makes
 *   any write that grows the files past the capacity fail with ENOSPC (overwrites inside
 *   a file never do, as on a file system without copy-on-write); flipBit(path, offset,
 *   bit) damages a byte in place, durable copy included.
 * - The async calls take effect when called and resolve on a later microtask (mode
 *   'immediate', the default), or wait in a queue until runAsync() (mode 'manual'), so a
 *   test or the simulator decides when background work gets to finish.
 *
 * Imports node:path, src/base and ./fs.
 */
import { posix } from 'node:path'
import { assert, fail, ok } from '../../base/index.js'
import type { Prng } from '../../base/index.js'
import { skipBytes } from './fs.js'
import type { FsResult, WalFile, WalFs } from './fs.js'

export type MemoryFsOp = 'create' | 'open' | 'write' | 'read' | 'sync' | 'syncDir' | 'rename' | 'remove'

export interface CrashOptions {
  /** What becomes of writes no datasync made durable. Default 'drop'. */
  readonly unsynced?: 'drop' | 'keep' | 'tear' | 'sectors'
  /** For 'tear': how many bytes of the last unsynced write survive, cut back to a sector boundary of the file (default: random, from prng). */
  readonly tearAt?: number
  /** Needed by 'sectors', and by 'tear' without tearAt. */
  readonly prng?: Prng
}

export interface MemoryWalFsOptions {
  readonly async?: 'immediate' | 'manual'
}

const SECTOR_BYTES = 512

interface UnsyncedWrite {
  readonly order: number
  readonly position: number
  readonly bytes: Uint8Array
}

class Inode {
  data: Uint8Array = new Uint8Array(0)
  size = 0
  durable: Uint8Array = new Uint8Array(0)
  durableSize = 0
  unsynced: UnsyncedWrite[] = []

  write(position: number, bytes: Uint8Array): void {
    const end = position + bytes.length
    if (end > this.data.length) this.data = grow(this.data, end)
    this.data.set(bytes, position)
    this.size = Math.max(this.size, end)
  }

  /** Applies the unsynced writes to the durable copy. */
  sync(): void {
    if (this.durable.length < this.size) this.durable = grow(this.durable, this.size)
    for (const w of this.unsynced) this.durable.set(w.bytes, w.position)
    this.durableSize = this.size
    this.unsynced = []
  }
}

function grow(b: Uint8Array, atLeast: number): Uint8Array {
  const out = new Uint8Array(Math.max(atLeast, b.length * 2, 4096))
  out.set(b)
  return out
}

interface Dir {
  current: Map<string, Inode>
  durable: Map<string, Inode>
}

interface Fault {
  readonly code: string
  left: number
}

export class MemoryWalFs implements WalFs {
  readonly #dirs = new Map<string, Dir>()
  readonly #handles = new Map<number, Inode>()
  readonly #faults = new Map<MemoryFsOp, Fault>()
  readonly #asyncMode: 'immediate' | 'manual'
  readonly #asyncQueue: (() => void)[] = []
  #nextHandle = 3
  #writeOrder = 0
  #capacityBytes = Infinity
  #shortWrites = 0

  constructor(opts: MemoryWalFsOptions = {}) {
    this.#asyncMode = opts.async ?? 'immediate'
    this.#dirs.set('/', { current: new Map(), durable: new Map() })
  }

  // ---- faults ----

  /** The next `times` calls of `op` fail with `code` (e.g. 'ENOSPC', 'EIO'). */
  failNext(op: MemoryFsOp, code: string, times = 1): void {
    assert(times >= 1, 'failNext: times must be at least 1')
    this.#faults.set(op, { code, left: times })
  }

  /** The next `times` writev calls write only half of what they are given (and say so). */
  shortWriteNext(times = 1): void {
    this.#shortWrites = times
  }

  /** Writes that would grow the files past `bytes` in all fail with ENOSPC; Infinity lifts it. */
  setCapacity(bytes: number): void {
    this.#capacityBytes = bytes
  }

  /** Flips one bit of a file in place, in what reads see and in the durable copy. */
  flipBit(path: string, offset: number, bit: number): void {
    const inode = this.#lookup(path)
    assert(inode !== undefined, () => `flipBit: no file ${path}`)
    assert(offset >= 0 && offset < inode.size && bit >= 0 && bit < 8, () => `flipBit: offset ${offset} bit ${bit} outside ${path}`)
    inode.data[offset]! ^= 1 << bit
    if (offset < inode.durableSize) inode.durable[offset]! ^= 1 << bit
    for (const w of inode.unsynced) {
      if (offset >= w.position && offset < w.position + w.bytes.length) w.bytes[offset - w.position]! ^= 1 << bit
    }
  }

  /** The file system a restarted machine would see; this one is left as it was. */
  crash(opts: CrashOptions = {}): MemoryWalFs {
    const mode = opts.unsynced ?? 'drop'
    let last: UnsyncedWrite | undefined
    if (mode === 'tear') {
      for (const inode of this.#inodes()) for (const w of inode.unsynced) if (last === undefined || w.order > last.order) last = w
    }
    const tearAt = last === undefined ? 0 : (opts.tearAt ?? requirePrng(opts.prng, 'tear').int(last.bytes.length))
    const rebuilt = new Map<Inode, Inode>()
    const rebuild = (old: Inode): Inode => {
      const known = rebuilt.get(old)
      if (known !== undefined) return known
      const fresh = new Inode()
      fresh.write(0, old.durable.subarray(0, old.durableSize))
      for (const w of old.unsynced) {
        if (mode === 'keep' || (mode === 'tear' && w !== last)) fresh.write(w.position, w.bytes)
        else if (mode === 'tear') fresh.write(w.position, w.bytes.subarray(0, tornPrefix(w, tearAt)))
        else if (mode === 'sectors') keepSomeSectors(fresh, w, requirePrng(opts.prng, 'sectors'))
      }
      fresh.durable = fresh.data.slice()
      fresh.durableSize = fresh.size
      rebuilt.set(old, fresh)
      return fresh
    }
    const next = new MemoryWalFs({ async: this.#asyncMode })
    next.#dirs.clear()
    for (const [path, dir] of this.#dirs) {
      const entries = new Map<string, Inode>()
      for (const [name, inode] of mode === 'keep' ? dir.current : dir.durable) entries.set(name, rebuild(inode))
      next.#dirs.set(path, { current: entries, durable: new Map(entries) })
    }
    return next
  }

  /** Async calls waiting in 'manual' mode. */
  get pendingAsync(): number {
    return this.#asyncQueue.length
  }

  /**
   * Runs up to `n` queued async calls, oldest first ('manual' mode), letting the code
   * awaiting each one go on (and perhaps queue the next) before running the next.
   */
  async runAsync(n = Infinity): Promise<void> {
    for (let k = 0; k < n && this.#asyncQueue.length > 0; k++) {
      this.#asyncQueue.shift()!()
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  // ---- inspection, for tests ----

  /** A copy of what a read of the whole file would return. */
  readAll(path: string): Uint8Array {
    const inode = this.#lookup(path)
    assert(inode !== undefined, () => `readAll: no file ${path}`)
    return inode.data.slice(0, inode.size)
  }

  /** Bytes held by all named files. */
  get usedBytes(): number {
    let n = 0
    for (const inode of this.#inodes()) n += inode.size
    return n
  }

  // ---- WalFs ----

  create(path: string): FsResult<WalFile> {
    const f = this.#fault('create')
    if (f !== null) return f
    const { dir, name } = this.#split(path)
    if (dir === undefined) return fail('ENOENT', `no directory for ${path}`)
    if (dir.current.has(name)) return fail('EEXIST', `${path} exists`)
    const inode = new Inode()
    dir.current.set(name, inode)
    return ok(this.#handle(inode))
  }

  open(path: string): FsResult<WalFile> {
    const f = this.#fault('open')
    if (f !== null) return f
    const inode = this.#lookup(path)
    if (inode === undefined) return fail('ENOENT', `no file ${path}`)
    return ok(this.#handle(inode))
  }

  writev(file: WalFile, buffers: readonly Uint8Array[], position: number): FsResult<number> {
    const inode = this.#handles.get(file)
    assert(inode !== undefined, () => `writev: bad handle ${file}`)
    const f = this.#fault('write')
    if (f !== null) return f
    let total = 0
    for (const b of buffers) total += b.length
    if (this.#shortWrites > 0 && total > 1) {
      this.#shortWrites--
      total = Math.floor(total / 2)
    }
    const growth = Math.max(0, position + total - inode.size)
    if (growth > 0 && this.usedBytes + growth > this.#capacityBytes) return fail('ENOSPC', 'no space left on device')
    const bytes = new Uint8Array(total)
    let at = 0
    for (const b of buffers) {
      if (at >= total) break
      const part = b.subarray(0, total - at)
      bytes.set(part, at)
      at += part.length
    }
    inode.write(position, bytes)
    inode.unsynced.push({ order: this.#writeOrder++, position, bytes })
    return ok(total)
  }

  read(file: WalFile, into: Uint8Array, position: number): FsResult<number> {
    const inode = this.#handles.get(file)
    assert(inode !== undefined, () => `read: bad handle ${file}`)
    const f = this.#fault('read')
    if (f !== null) return f
    const n = Math.max(0, Math.min(into.length, inode.size - position))
    into.set(inode.data.subarray(position, position + n))
    return ok(n)
  }

  datasync(file: WalFile): FsResult<void> {
    const inode = this.#handles.get(file)
    assert(inode !== undefined, () => `datasync: bad handle ${file}`)
    const f = this.#fault('sync')
    if (f !== null) {
      inode.unsynced = [] // fsyncgate: the failed pages are marked clean, never written
      return f
    }
    inode.sync()
    return ok(undefined)
  }

  size(file: WalFile): FsResult<number> {
    const inode = this.#handles.get(file)
    assert(inode !== undefined, () => `size: bad handle ${file}`)
    return ok(inode.size)
  }

  close(file: WalFile): void {
    this.#handles.delete(file)
  }

  list(dir: string): FsResult<string[]> {
    const d = this.#dirs.get(posix.normalize(dir))
    if (d === undefined) return fail('ENOENT', `no directory ${dir}`)
    const names = [...d.current.keys()]
    const prefix = posix.normalize(dir).replace(/\/?$/, '/')
    for (const p of this.#dirs.keys()) {
      if (p !== prefix && p.startsWith(prefix) && !p.slice(prefix.length).includes('/')) names.push(p.slice(prefix.length))
    }
    return ok(names.sort())
  }

  mkdirp(dir: string): FsResult<void> {
    let p = posix.normalize(dir)
    assert(p.startsWith('/'), () => `MemoryWalFs paths are absolute: ${dir}`)
    for (; !this.#dirs.has(p); p = posix.dirname(p)) this.#dirs.set(p, { current: new Map(), durable: new Map() })
    return ok(undefined)
  }

  rename(from: string, to: string): FsResult<void> {
    const f = this.#fault('rename')
    if (f !== null) return f
    const src = this.#split(from)
    const dst = this.#split(to)
    const inode = src.dir?.current.get(src.name)
    if (inode === undefined) return fail('ENOENT', `no file ${from}`)
    if (dst.dir === undefined) return fail('ENOENT', `no directory for ${to}`)
    src.dir!.current.delete(src.name)
    dst.dir.current.set(dst.name, inode)
    return ok(undefined)
  }

  remove(path: string): FsResult<void> {
    const f = this.#fault('remove')
    if (f !== null) return f
    const { dir, name } = this.#split(path)
    if (dir === undefined || !dir.current.delete(name)) return fail('ENOENT', `no file ${path}`)
    return ok(undefined)
  }

  removeDir(path: string): FsResult<void> {
    const f = this.#fault('remove')
    if (f !== null) return f
    const key = posix.normalize(path)
    const d = this.#dirs.get(key)
    if (d === undefined) return fail('ENOENT', `no directory ${path}`)
    const children = this.list(path)
    if (!children.ok || children.value.length > 0) return fail('ENOTEMPTY', `directory ${path} is not empty`)
    this.#dirs.delete(key)
    return ok(undefined)
  }

  syncDir(dir: string): FsResult<void> {
    const f = this.#fault('syncDir')
    if (f !== null) return f
    const d = this.#dirs.get(posix.normalize(dir))
    if (d === undefined) return fail('ENOENT', `no directory ${dir}`)
    d.durable = new Map(d.current)
    return ok(undefined)
  }

  exists(path: string): boolean {
    return this.#lookup(path) !== undefined || this.#dirs.has(posix.normalize(path))
  }

  writeSyncedAsync(path: string, create: boolean, buffers: readonly Uint8Array[], position: number): Promise<FsResult<void>> {
    return this.#async(() => {
      const h = create ? this.create(path) : this.open(path)
      if (!h.ok) return h
      try {
        let rest = buffers.slice()
        let at = position
        while (rest.length > 0) {
          const w = this.writev(h.value, rest, at)
          if (!w.ok) return w
          at += w.value
          rest = skipBytes(rest, w.value)
        }
        return this.datasync(h.value)
      } finally {
        this.close(h.value)
      }
    })
  }

  renameAsync(from: string, to: string): Promise<FsResult<void>> {
    return this.#async(() => this.rename(from, to))
  }

  syncDirAsync(dir: string): Promise<FsResult<void>> {
    return this.#async(() => this.syncDir(dir))
  }

  removeAsync(path: string): Promise<FsResult<void>> {
    return this.#async(() => this.remove(path))
  }

  // ---- internals ----

  #async<T>(op: () => FsResult<T>): Promise<FsResult<T>> {
    if (this.#asyncMode === 'immediate') return Promise.resolve(op())
    return new Promise((resolve) => this.#asyncQueue.push(() => resolve(op())))
  }

  #fault(op: MemoryFsOp): { readonly ok: false; readonly error: { readonly code: string; readonly message: string } } | null {
    const f = this.#faults.get(op)
    if (f === undefined) return null
    if (--f.left <= 0) this.#faults.delete(op)
    return fail(f.code, `injected ${f.code} on ${op}`)
  }

  #handle(inode: Inode): WalFile {
    const h = this.#nextHandle++
    this.#handles.set(h, inode)
    return h
  }

  #split(path: string): { readonly dir: Dir | undefined; readonly name: string } {
    const p = posix.normalize(path)
    return { dir: this.#dirs.get(posix.dirname(p)), name: posix.basename(p) }
  }

  #lookup(path: string): Inode | undefined {
    const { dir, name } = this.#split(path)
    return dir?.current.get(name)
  }

  *#inodes(): Generator<Inode> {
    const seen = new Set<Inode>()
    for (const d of this.#dirs.values()) {
      for (const inode of d.current.values()) {
        if (!seen.has(inode)) {
          seen.add(inode)
          yield inode
        }
      }
    }
  }
}

function requirePrng(prng: Prng | undefined, mode: string): Prng {
  assert(prng !== undefined, () => `crash({ unsynced: '${mode}' }) needs a prng`)
  return prng
}

/**
 * How much of write `w` a tear after `tearAt` bytes leaves: that prefix, cut back to the
 * last sector boundary of the file it falls in (a disk writes a sector whole or not at all).
 */
function tornPrefix(w: UnsyncedWrite, tearAt: number): number {
  if (tearAt >= w.bytes.length) return w.bytes.length
  return Math.max(0, Math.floor((w.position + tearAt) / SECTOR_BYTES) * SECTOR_BYTES - w.position)
}

/** A disk that reorders: each 512-byte sector of the write survives on its own, with probability 1/2. */
function keepSomeSectors(inode: Inode, w: UnsyncedWrite, prng: Prng): void {
  const end = w.position + w.bytes.length
  for (let s = w.position; s < end; ) {
    const next = Math.min(end, (Math.floor(s / SECTOR_BYTES) + 1) * SECTOR_BYTES)
    if (prng.chance(0.5)) inode.write(s, w.bytes.subarray(s - w.position, next - w.position))
    s = next
  }
}
