/**
 * src/storage: durable state of a node (DESIGN §4). A data directory (data-dir.ts); per
 * worker thread, one Raft write-ahead log (wal/) shared by its groups, under the log
 * engine (log-engine.ts) that keeps each group's in-memory view; per group, one LevelDB
 * partition store (group-store.ts, key layout in keys.ts) behind the PartitionStore
 * interface (partition-store.ts; an in-memory one for the simulator, memory-store.ts); recovery at start
 * (recovery.ts).
 *
 * Imports src/base, src/raft, classic-level, @node-rs/crc32 and node:* modules.
 */
export { DataDir, DATA_DIR_FORMAT_VERSION } from './data-dir.js'
export type { DataDirError, DataDirMeta, DataDirOptions, GroupId, QuarantinedGroup } from './data-dir.js'
export { GroupStore, GROUP_STORE_LEVELDB } from './group-store.js'
export type { GroupStoreOptions, GroupStoreState, StoreOpenError, StoreWriteError } from './group-store.js'
export type { PartitionStore, OpenStore } from './partition-store.js'
export { openGroupStore } from './partition-store.js'
export { MemoryStoreDisk } from './memory-store.js'
export type { AppliedState } from './keys.js'
export { FORMAT_VERSION } from './keys.js'
export { LogEngine, WalRecordType } from './log-engine.js'
export { recoverWals, removeGenerations, listGenerations, replayRecord, newerHardState } from './recovery.js'
export type { GroupReplay, RecoveryError, RecoveryReport, RecoveryLogger } from './recovery.js'
export { Wal, NodeWalFs, MemoryWalFs, commitDiskBytes } from './wal/index.js'
export type { WalFs, WalRecord, WalOpenError, WalWriteError } from './wal/index.js'
