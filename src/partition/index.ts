/**
 * src/partition: the deterministic partition state machine (DESIGN.md §3). The leader
 * encodes commands (./commands) into Raft entries; every replica applies the committed
 * ones to a PartitionStateMachine and gets the same offsets and results. Pure: no I/O,
 * clock or randomness. Imports only src/base.
 */
export { NO_PRODUCER_ID, batchFactsProblem, readBatchFacts } from './batch-header.js'
export type { BatchFacts } from './batch-header.js'
export {
  CLEANUP_BYTES,
  CommandType,
  EXPIRE_BYTES,
  PRODUCE_PREFIX_BYTES,
  ProduceFlag,
  batchOf,
  decodeCleanup,
  decodeCommand,
  decodeExpire,
  decodeProduce,
  encodeCleanup,
  encodeExpire,
  encodeProduce,
} from './commands.js'
export type { CleanupCommand, Command, CommandDecodeError, ExpireCommand, ProduceCommand, ProduceOptions } from './commands.js'
export { ProducerState, lastSequenceOf, nextSequence } from './producer-state.js'
export type { ProducerEntry, RememberedBatch, SequenceCheck, SequenceErrorCode } from './producer-state.js'
export { LOCATE_BATCHES_MAX_DEFAULT, PartitionStateMachine } from './state-machine.js'
export type {
  ApplyResult,
  CleanupApplied,
  CommandInvalid,
  ExpireApplied,
  LocateResult,
  Noop,
  ProduceAccepted,
  ProduceErrorCode,
  ProduceRejected,
  RetentionPolicy,
  StoredBatch,
} from './state-machine.js'
