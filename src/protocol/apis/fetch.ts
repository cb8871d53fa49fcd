/**
 * fetch v1: read committed record batches from several partitions, long-polling until
 * data arrives or maxWaitMs passes.
 *
 *   request  = { maxWaitMs: 0..30000, maxBytes: 1..2^31-1,
 *                partitions: [{ topic, partition, offset, maxBytes?: 1..2^31-1,
 *                               maxMessages?: 1..100000 }](1..10000) }
 *   response = { partitions: [{ topic, partition, error?: wire error,
 *                               highWatermark: -1..2^53-1, logStartOffset: -1..2^53-1,
 *                               batches: [bin] }] }
 *
 * Byte budgets are requests, not contracts: the broker clamps them to its own limits
 * (limits.fetch.responseBytesMax, and below frameBytesMax so the response fits a frame)
 * and, as Kafka does, returns at least the first batch at `offset` even when it alone is
 * over budget, so a consumer can always make progress. `batches` are RecordBatch v2 as
 * stored; the first may start before `offset` (batches are not split), and the client
 * skips records below it. One entry per request entry, in request order; with `error`
 * set, `batches` is empty and the offsets are -1 when unknown (OFFSET_OUT_OF_RANGE carries
 * them in its details).
 *
 * Imports errors.ts and the other modules of src/protocol/apis.
 */
import type { WireError } from '../errors.js'
import { offset, offsetOrUnknown, partitionIndex, wireError } from './common.js'
import { wireLimits } from './limits.js'
import { array, bytes, int, object, optional, topicName, uniquePartitions } from './schema.js'
import type { Schema } from './schema.js'

export interface FetchPartition {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly maxBytes?: number
  readonly maxMessages?: number
}

export interface FetchRequest {
  readonly maxWaitMs: number
  readonly maxBytes: number
  readonly partitions: readonly FetchPartition[]
}

export interface FetchPartitionResult {
  readonly topic: string
  readonly partition: number
  readonly error?: WireError
  readonly highWatermark: number
  readonly logStartOffset: number
  readonly batches: readonly Uint8Array[]
}

export interface FetchResponse {
  readonly partitions: readonly FetchPartitionResult[]
}

const byteBudget = int(1, wireLimits.fetchBytesMax)

export const fetchRequest: Schema<FetchRequest> = object<FetchRequest>(
  {
    maxWaitMs: int(0, wireLimits.fetchMaxWaitMsMax),
    maxBytes: byteBudget,
    partitions: array(
      object<FetchPartition>({
        topic: topicName,
        partition: partitionIndex,
        offset,
        maxBytes: optional(byteBudget),
        maxMessages: optional(int(1, wireLimits.fetchMessagesMax)),
      }),
      wireLimits.partitionsPerRequestMax,
      1,
    ),
  },
  (r) => uniquePartitions(r.partitions),
)

export const fetchResponse: Schema<FetchResponse> = object<FetchResponse>({
  partitions: array(
    object<FetchPartitionResult>({
      topic: topicName,
      partition: partitionIndex,
      error: optional(wireError),
      highWatermark: offsetOrUnknown,
      logStartOffset: offsetOrUnknown,
      batches: array(bytes(wireLimits.bytesMax), wireLimits.fetchBatchesMax),
    }),
    wireLimits.partitionsPerRequestMax,
  ),
})
