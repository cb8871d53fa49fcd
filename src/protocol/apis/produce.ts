/**
 * produce v1: append one RecordBatch to each of several partitions.
 *
 *   request  = { timeoutMs: 0..300000, atomic?: boolean,
 *                partitions: [{ topic, partition, batch: bin }](1..10000) }
 *   response = { partitions: [{ topic, partition, error?: wire error,
 *                               results: [{ offset, duplicate?: true } | { error: wire error }] }] }
 *
 * `batch` is one Kafka RecordBatch v2 (magic 2), opaque at this layer: a view into the
 * frame, so routing it copies no record. Its size and contents (BATCH_TOO_LARGE,
 * CORRUPT_MESSAGE, ...) are the broker's per-partition checks, not request-shape errors:
 * the other partitions of the request go ahead.
 *
 * The response has one entry per request entry, in request order. A partition-level
 * `error` (NOT_LEADER, UNKNOWN_TOPIC, TIMEOUT, BATCH_TOO_LARGE, ...) means nothing of that
 * batch was written and `results` is empty; otherwise `results` has one entry per record
 * of the batch, in order. With `atomic: true`, one record's error rejects the whole batch:
 * that record carries its own error and every other record BATCH_REJECTED. Atomicity is
 * per batch (one partition, one Raft group), never across partitions.
 *
 * A request names each (topic, partition) at most once: a client coalesces what it sends
 * one partition into one batch, as Kafka's producers do.
 *
 * Imports errors.ts and the other modules of src/protocol/apis.
 */
import type { WireError } from '../errors.js'
import { offset, partitionIndex, wireError } from './common.js'
import { wireLimits } from './limits.js'
import { array, bool, bytes, int, literal, object, optional, topicName, union, uniquePartitions } from './schema.js'
import type { Schema } from './schema.js'

export interface ProducePartition {
  readonly topic: string
  readonly partition: number
  readonly batch: Uint8Array
}

export interface ProduceRequest {
  readonly timeoutMs: number
  readonly atomic?: boolean
  readonly partitions: readonly ProducePartition[]
}

export interface ProduceOffset {
  readonly offset: number
  /** An idempotent retry of a batch already stored: `offset` is the original one. */
  readonly duplicate?: true
}

export interface ProduceFailure {
  readonly error: WireError
}

export type ProduceResult = ProduceOffset | ProduceFailure

export interface ProducePartitionResult {
  readonly topic: string
  readonly partition: number
  readonly error?: WireError
  readonly results: readonly ProduceResult[]
}

export interface ProduceResponse {
  readonly partitions: readonly ProducePartitionResult[]
}

export const produceRequest: Schema<ProduceRequest> = object<ProduceRequest>(
  {
    timeoutMs: int(0, wireLimits.produceTimeoutMsMax),
    atomic: optional(bool),
    partitions: array(
      object<ProducePartition>({ topic: topicName, partition: partitionIndex, batch: bytes(wireLimits.bytesMax) }),
      wireLimits.partitionsPerRequestMax,
      1,
    ),
  },
  (r) => uniquePartitions(r.partitions),
)

export const produceResponse: Schema<ProduceResponse> = object<ProduceResponse>({
  partitions: array(
    object<ProducePartitionResult>({
      topic: topicName,
      partition: partitionIndex,
      error: optional(wireError),
      results: array(
        union(
          object<ProduceOffset>({ offset, duplicate: optional(literal(true)) }),
          object<ProduceFailure>({ error: wireError }),
        ),
        wireLimits.produceResultsMax,
      ),
    }),
    wireLimits.partitionsPerRequestMax,
  ),
})
