/**
 * WalFs: the file-system seam under the WAL. Small and synchronous, because the WAL's
 * commit path runs on the worker thread itself (a writev and an fdatasync, no libuv
 * thread-pool round trip); the three async calls exist only for preparing the next
 * segment in the background, off that path.
 *
 * Two implementations: NodeWalFs (node-fs.ts) over node:fs, and MemoryWalFs
 * (memory-fs.ts), which keeps what is durable apart from what is only written so tests
 * and the simulator can crash it.
 *
 * Contract every implementation keeps:
 * - Failures are values carrying the errno code (ENOSPC, EIO, ENOENT, EEXIST, …); none
 *   throws for an operating error.
 * - `writev` writes at an explicit position and may write less than asked (it returns
 *   how much); the caller loops.
 * - Data is durable after `datasync` of its file; a directory entry (create, rename,
 *   remove) only after `syncDir` of its directory, as on Linux ext4.
 * - Paths are joined by the caller; `list` returns bare names.
 *
 * Imports src/base.
 */
import type { Result } from '../../base/index.js'

/** A handle to an open file, valid only with the WalFs that returned it. */
export type WalFile = number

/** A file-system result; a failure's code is the errno code ('ENOSPC', 'EIO', …). */
export type FsResult<T> = Result<T, string>

export interface WalFs {
  /** Creates a file that must not exist yet, open for reading and writing. */
  create(path: string): FsResult<WalFile>
  /** Opens an existing file for reading and writing. */
  open(path: string): FsResult<WalFile>
  /** Writes the buffers, in order, from `position`; returns the bytes written (may be fewer). */
  writev(file: WalFile, buffers: readonly Uint8Array[], position: number): FsResult<number>
  /** Reads up to `into.length` bytes from `position`; returns the bytes read (fewer at the end of the file). */
  read(file: WalFile, into: Uint8Array, position: number): FsResult<number>
  /** fdatasync: the file's data, and its size, become durable. */
  datasync(file: WalFile): FsResult<void>
  size(file: WalFile): FsResult<number>
  close(file: WalFile): void
  list(dir: string): FsResult<string[]>
  /** Creates the directory and its missing parents, durably. */
  mkdirp(dir: string): FsResult<void>
  /** Replaces `to` if it exists. */
  rename(from: string, to: string): FsResult<void>
  remove(path: string): FsResult<void>
  /** Removes an empty directory (durable after syncDir of its parent). */
  removeDir(path: string): FsResult<void>
  /** fsync of the directory: its entries become durable. */
  syncDir(dir: string): FsResult<void>
  exists(path: string): boolean

  /**
   * Background preparation only: writes the buffers from `position` into the file at
   * `path` (created exclusively when `create`), fdatasyncs and closes it.
   */
  writeSyncedAsync(path: string, create: boolean, buffers: readonly Uint8Array[], position: number): Promise<FsResult<void>>
  renameAsync(from: string, to: string): Promise<FsResult<void>>
  /** Removes a file off the calling thread (unlinking a 64 MiB file took ~35 ms here). */
  removeAsync(path: string): Promise<FsResult<void>>
  syncDirAsync(dir: string): Promise<FsResult<void>>
}

/** The buffers left once the first `n` bytes of `buffers` are written (after a short write). */
export function skipBytes(buffers: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let left = n
  for (const b of buffers) {
    if (left >= b.length) {
      left -= b.length
      continue
    }
    out.push(left > 0 ? b.subarray(left) : b)
    left = 0
  }
  return out
}
