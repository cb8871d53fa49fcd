/**
 * src/raft: the pure Raft core. A host creates a RaftNode over a Storage, drives it with
 * tick/step/propose, and follows each Ready (see `Ready` in types.ts for the contract).
 * Imports only src/base.
 */
export { RaftNode } from './node.js'
export type { Status } from './node.js'
export type { RaftOptions, UnsafeRules, ProposeError, Proposed } from './raft.js'
export { MemoryStorage, TERM_UNAVAILABLE, emptySnapshot, entryBytes } from './storage.js'
export type { Storage, InitialState } from './storage.js'
export { ConfChangeOp, encodeConfChange, decodeConfChange, applyConfChange } from './config.js'
export type { ConfChange } from './config.js'
export { ProgressState } from './progress.js'
export { EntryType, MessageType, NONE, Role, blankMessage, messageTypeName } from './types.js'
export type { ConfState, Entry, HardState, Message, MutableMessage, NodeId, Ready, Snapshot, SnapshotMetadata, SoftState } from './types.js'
