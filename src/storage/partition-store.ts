/**
 * PartitionStore: what a hosted group (src/replica) and recovery need of a group's
 * partition store — staged writes, one ordered flush at a time (a synced one makes every
 * earlier write durable), record reads — so that the same code runs over the LevelDB
 * store (GroupStore, group-store.ts; `openGroupStore`, the default everywhere) and over
 * the in-memory one the simulator uses (MemoryStoreDisk, memory-store.ts).
 *
 * Imports src/base, src/raft types and ./group-store, ./keys types.
 */
import type { Result } from '../base/index.js'
import type { Entry, HardState } from '../raft/index.js'
import { GroupStore } from './group-store.js'
import type { GroupStoreOptions, GroupStoreState, StoreOpenError, StoreWriteError } from './group-store.js'
import type { AppliedState } from './keys.js'

export interface PartitionStore {
  readonly dir: string
  /** Why the store stopped taking writes, if it did (fail-stop). */
  readonly failure: { readonly code: StoreWriteError; readonly message: string } | null
  putRecord(offset: number, batch: Uint8Array): void
  deleteRecordsBelow(offset: number): void
  saveApplied(a: AppliedState): void
  /** A leader's snapshot received whole, kept apart from the applied state until the WAL says it was installed (null: drop it). */
  putPendingSnapshot(a: AppliedState | null): void
  putHardState(hs: HardState): void
  replaceEntries(deleteFrom: number, deleteTo: number, entries: readonly Entry[]): void
  flush(opts: { sync: boolean }): Promise<Result<void, StoreWriteError>>
  readRecords(from: number, to: number, bytesMax?: number): Promise<Result<Array<[number, Uint8Array]>, StoreWriteError>>
  close(): Promise<void>
}

/** Opens (or creates) the store in `dir`, with what it holds. */
export type OpenStore = (dir: string, opts: GroupStoreOptions) => Promise<Result<{ store: PartitionStore; state: GroupStoreState }, StoreOpenError>>

/** The production store: one LevelDB per group. */
export const openGroupStore: OpenStore = (dir, opts) => GroupStore.open(dir, opts)
