/**
 * NodeWalFs: WalFs over node:fs. The synchronous calls (writevSync, fdatasyncSync, …)
 * run on the calling thread: node documents that only the explicitly synchronous fs
 * calls stay off the libuv pool, whose 4 threads every worker's async fs calls would
 * share (SHARED-LOG §3). fs.promises serves only the background preparation of the next
 * segment, where a pool hop costs nothing that waits.
 *
 * Every error comes back as a value with its errno code (ENOSPC, EIO, …); an error
 * without one (which node does not produce for these calls) reads as EIO so the WAL
 * stops rather than retries.
 *
 * Failpoints (failpoints.ts): only when RAFTMQ_FAILPOINTS arms `wal.datasync` does it
 * remember which path each open file has, and fail the fdatasyncs named there; without
 * it, datasync is the bare call.
 *
 * Imports node:fs, node:path, src/base, ./fs and ./failpoints.
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmdirSync, unlinkSync, writevSync } from 'node:fs'
import { open as openAsync, rename as renameAsyncFs, unlink as unlinkAsyncFs } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fail, ok } from '../../base/index.js'
import { envFailpoints } from './failpoints.js'
import type { Failpoints } from './failpoints.js'
import { skipBytes } from './fs.js'
import type { FsResult, WalFile, WalFs } from './fs.js'

function failure(e: unknown): { readonly ok: false; readonly error: { readonly code: string; readonly message: string } } {
  const err = e as NodeJS.ErrnoException
  return fail(typeof err?.code === 'string' ? err.code : 'EIO', err instanceof Error ? err.message : String(e))
}

function attempt<T>(f: () => T): FsResult<T> {
  try {
    return ok(f())
  } catch (e) {
    return failure(e)
  }
}

export class NodeWalFs implements WalFs {
  /** Armed failpoints (null: none, the normal case), and the path of each open file, for them. */
  readonly #failpoints: Failpoints | null
  readonly #paths: Map<WalFile, string> | null

  /** `failpoints`: default, this thread's from RAFTMQ_FAILPOINTS (none unless it is set). */
  constructor(opts: { readonly failpoints?: Failpoints | null } = {}) {
    const fp = opts.failpoints === undefined ? envFailpoints() : opts.failpoints
    this.#failpoints = fp !== null && fp.armed('wal.datasync') ? fp : null
    this.#paths = this.#failpoints === null ? null : new Map()
  }

  create(path: string): FsResult<WalFile> {
    return this.#opened(path, attempt(() => openSync(path, 'wx+')))
  }

  open(path: string): FsResult<WalFile> {
    return this.#opened(path, attempt(() => openSync(path, 'r+')))
  }

  #opened(path: string, r: FsResult<WalFile>): FsResult<WalFile> {
    if (r.ok) this.#paths?.set(r.value, path)
    return r
  }

  writev(file: WalFile, buffers: readonly Uint8Array[], position: number): FsResult<number> {
    return attempt(() => writevSync(file, buffers, position))
  }

  read(file: WalFile, into: Uint8Array, position: number): FsResult<number> {
    return attempt(() => readSync(file, into, 0, into.length, position))
  }

  datasync(file: WalFile): FsResult<void> {
    if (this.#failpoints !== null) {
      const injected = this.#failpoints.hit('wal.datasync', this.#paths!.get(file) ?? '')
      if (injected !== null) return fail(injected.code, injected.message)
    }
    return attempt(() => fdatasyncSync(file))
  }

  size(file: WalFile): FsResult<number> {
    return attempt(() => fstatSync(file).size)
  }

  close(file: WalFile): void {
    this.#paths?.delete(file)
    try {
      closeSync(file)
    } catch {
      // Nothing written through this handle is left to lose: every write was synced.
    }
  }

  list(dir: string): FsResult<string[]> {
    return attempt(() => readdirSync(dir))
  }

  mkdirp(dir: string): FsResult<void> {
    const first = attempt(() => mkdirSync(dir, { recursive: true }))
    if (!first.ok) return first
    // Make each new directory's own entry durable: sync the parents of those created.
    if (first.value === undefined) return ok(undefined)
    for (let d = dir; ; d = dirname(d)) {
      const r = this.syncDir(dirname(d))
      if (!r.ok) return r
      if (d === first.value || dirname(d) === d) break
    }
    return ok(undefined)
  }

  rename(from: string, to: string): FsResult<void> {
    return attempt(() => renameSync(from, to))
  }

  remove(path: string): FsResult<void> {
    return attempt(() => unlinkSync(path))
  }

  removeDir(path: string): FsResult<void> {
    return attempt(() => rmdirSync(path))
  }

  syncDir(dir: string): FsResult<void> {
    return attempt(() => {
      const fd = openSync(dir, 'r')
      try {
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
    })
  }

  exists(path: string): boolean {
    return existsSync(path)
  }

  async writeSyncedAsync(path: string, create: boolean, buffers: readonly Uint8Array[], position: number): Promise<FsResult<void>> {
    try {
      const handle = await openAsync(path, create ? 'wx+' : 'r+')
      try {
        let rest = buffers.slice()
        let at = position
        while (rest.length > 0) {
          const { bytesWritten } = await handle.writev(rest.slice(0, 1024), at)
          if (bytesWritten === 0) return fail('EIO', `writev to ${path} wrote nothing`)
          at += bytesWritten
          rest = skipBytes(rest, bytesWritten)
        }
        await handle.datasync()
      } finally {
        await handle.close()
      }
      return ok(undefined)
    } catch (e) {
      return failure(e)
    }
  }

  async renameAsync(from: string, to: string): Promise<FsResult<void>> {
    try {
      await renameAsyncFs(from, to)
      return ok(undefined)
    } catch (e) {
      return failure(e)
    }
  }

  async removeAsync(path: string): Promise<FsResult<void>> {
    try {
      await unlinkAsyncFs(path)
      return ok(undefined)
    } catch (e) {
      return failure(e)
    }
  }

  async syncDirAsync(dir: string): Promise<FsResult<void>> {
    try {
      const handle = await openAsync(dir, 'r')
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
      return ok(undefined)
    } catch (e) {
      return failure(e)
    }
  }
}
