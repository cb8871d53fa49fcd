/**
 * The bounds of protocol version 1's fields: every string, array and number a client
 * sends has one, checked by the validators where the message enters. They are part of
 * the protocol (a client that respects them is never refused for size), unlike the
 * operating limits in src/base/limits.ts that a node may be configured with; where one
 * follows from an operating limit, it is derived from it. (Candidates to join
 * `limits.protocol` in src/base/limits.ts, the one table of limits.)
 *
 * Imports base.
 */
import { limits } from '../../base/index.js'

export const wireLimits = {
  /** hello.clientId: a name for logs and quotas, not a payload. */
  clientIdCharsMax: 256,
  /** hello response: the server's name and version. */
  serverCharsMax: 256,
  /** A DNS name is at most 253 characters. */
  hostCharsMax: 253,
  /** Node ids are Kafka's int32 broker ids, never negative. */
  nodeIdMax: 0x7fff_ffff,
  /** Partitions of one topic: each is a Raft group, so thousands per node are already many. */
  partitionsPerTopicMax: 10_000,
  /** Replicas of a partition: a protocol bound only; the controller refuses more than the live nodes (INVALID_REPLICATION_FACTOR). */
  replicationFactorMax: 255,
  /** Topics named in one metadata request, or listed in one response. */
  topicsPerRequestMax: 100_000,
  /** Nodes listed in one metadata response. */
  nodesMax: 10_000,
  /** Partition replicas one node reports in a describeCluster response (--max-partitions' ceiling). */
  groupsPerNodeMax: 1_000_000,
  /** (topic, partition) entries of one produce, fetch or listOffsets request. */
  partitionsPerRequestMax: 10_000,
  /** Offsets, high watermarks: Kafka's int64, as far as a JS number is exact. */
  offsetMax: Number.MAX_SAFE_INTEGER,
  /** Producer ids: Kafka's int64, as far as a JS number is exact. */
  producerIdMax: Number.MAX_SAFE_INTEGER,
  /** Producer epochs: Kafka's int16. */
  producerEpochMax: 0x7fff,
  /** Retention settings; `null` in the protocol means unlimited. */
  retentionMsMax: Number.MAX_SAFE_INTEGER,
  retentionBytesMax: Number.MAX_SAFE_INTEGER,
  /** A produce's wait for replication: long enough for a slow election, short enough to notice a hang. */
  produceTimeoutMsMax: 300_000,
  /** A fetch's long-poll. */
  fetchMaxWaitMsMax: limits.fetch.maxWaitMsMax,
  /** A fetch's byte budget as asked (Kafka's int32); the broker clamps it to limits.fetch.responseBytesMax. */
  fetchBytesMax: 0x7fff_ffff,
  /** A fetch's message budget for one partition. */
  fetchMessagesMax: limits.produce.batchRecordsMax,
  /** Batches of one partition in one fetch response. */
  fetchBatchesMax: 1_000_000,
  /** Per-message results of one produced batch. */
  produceResultsMax: limits.produce.batchRecordsMax,
  /** Human messages in errors. */
  errorMessageCharsMax: 4096,
  /** Protocol versions are u16. */
  versionMax: 0xffff,
  /** Byte fields are bounded by the frame that carries them. */
  bytesMax: limits.protocol.frameBytesMax,
} as const
