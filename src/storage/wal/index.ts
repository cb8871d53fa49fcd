/**
 * src/storage/wal: the per-worker Raft write-ahead log (DESIGN §4). One Wal per worker
 * thread, shared by all its groups: each loop turn adds every group's records and makes
 * one vectored write and one fdatasync (wal.ts). The on-disk format is in format.ts,
 * recovery's rules in recovery.ts, segment preparation in segment.ts; WalFs (fs.ts) is
 * the file-system seam, with NodeWalFs for real disks and MemoryWalFs, which can crash,
 * tear writes and run out of space, for tests and the simulator.
 *
 * Imports src/base, node:* and @node-rs/crc32 only (through the modules it re-exports).
 */
export { Wal } from './wal.js'
export type { WalOptions, WalWriteError } from './wal.js'
export type { WalOpenError, WalRecoveryReport, WalTornTail } from './recovery.js'
export type { WalRecord } from './format.js'
export { commitDiskBytes } from './format.js'
export type { FsResult, WalFile, WalFs } from './fs.js'
export { NodeWalFs } from './node-fs.js'
export { MemoryWalFs } from './memory-fs.js'
export type { CrashOptions, MemoryFsOp, MemoryWalFsOptions } from './memory-fs.js'
export { walLimits } from './limits.js'
