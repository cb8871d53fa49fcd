/**
 * src/storage: durable state of a node. A data directory (data-dir.ts) holds one LevelDB
 * per group replica; in it, LevelRaftStorage (raft-log-store.ts) keeps the Raft log —
 * which is also the record store — hard state, snapshot metadata and the state
 * machine's applied state, under the key layout of keys.ts.
 *
 * Imports src/base, src/raft, classic-level and node:* modules.
 */
export { LevelRaftStorage, ENTRY_CACHE_BYTES_DEFAULT } from './raft-log-store.js'
export type { AppliedState, EntryCacheInfo, LevelRaftStorageOptions, ReadEntriesError, StateMachineOp, StoreOpenError } from './raft-log-store.js'
export { DataDir, DATA_DIR_FORMAT_VERSION } from './data-dir.js'
export type { DataDirError, DataDirMeta, DataDirOptions, GroupId } from './data-dir.js'
export { FORMAT_VERSION, KeySpace, stateMachineKey } from './keys.js'
