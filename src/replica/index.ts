/**
 * src/replica: the partition service (batch checks, reframing, fetch waiters, retention,
 * catch-up by snapshot for a follower behind its leader's log) over a group actor and the
 * partition state machine, with storage injected through a GroupRuntime (one WAL and one
 * Ready loop per thread); and the worker's host of them.
 *
 * Imports base, raft, protocol, storage, partition and group.
 */
export { GroupRuntime } from './group-runtime.js'
export type { GroupRuntimeOptions, RuntimeGroup } from './group-runtime.js'
export { HostedGroup } from './hosted-group.js'
export type { HostedGroupOptions, HostedGroupError, HostOptions } from './hosted-group.js'
export { realClock } from './clock.js'
export type { ReplicaClock } from './clock.js'
export { PartitionReplica } from './partition-replica.js'
export type { ReplicaSpec, ProduceOutcome, FetchOutcome, PartitionHostOptions } from './partition-replica.js'
export { ReplicaHost } from './replica-host.js'
export type { DataPort, ReplicaControl, ReplicaHostOptions } from './replica-host.js'
export { proposeError } from './errors.js'
export type { GroupWhere } from './errors.js'
export { packPost, unpackPost } from './worker-messages.js'
export type { ReplicaAssignment, WorkerEvent, WorkerPost, WorkerReply, WorkerRequest, ProduceSummary, WireErrorLike } from './worker-messages.js'
export { RaftOutbox, decodeRaftBatch, encodeRaftBatch } from './raft-wire.js'
export type { GroupMessage } from './raft-wire.js'
export { SnapshotSender, TransferSlots, THREAD_SLOTS, TRANSFER_TIMING } from './snapshot-sender.js'
export type { SenderHost, SnapshotCapture, TransferTiming } from './snapshot-sender.js'
export { SnapshotReceiver } from './snapshot-receiver.js'
export type { ReceiverHost } from './snapshot-receiver.js'
export { decodeTransferItem, encodeTransferItem, installMessage, transferMessage } from './snapshot-wire.js'
export type { TransferItem } from './snapshot-wire.js'
