/**
 * listOffsets v1: where a partition's log starts or ends, for a consumer choosing its
 * starting position.
 *
 *   request  = { partitions: [{ topic, partition, spec: "earliest" | "latest" }](1..10000) }
 *   response = { partitions: [{ topic, partition, offset?, error?: wire error }] }
 *
 * "earliest" is the log start offset, "latest" the high watermark (the offset the next
 * committed record will get). Each response entry has exactly one of `offset` and
 * `error`; one entry per request entry, in request order.
 *
 * Imports errors.ts and the other modules of src/protocol/apis.
 */
import type { WireError } from '../errors.js'
import { offset, partitionIndex, wireError } from './common.js'
import { wireLimits } from './limits.js'
import { array, issue, literal, object, optional, topicName, uniquePartitions } from './schema.js'
import type { Schema } from './schema.js'

export type OffsetSpec = 'earliest' | 'latest'

export interface ListOffsetsPartition {
  readonly topic: string
  readonly partition: number
  readonly spec: OffsetSpec
}

export interface ListOffsetsRequest {
  readonly partitions: readonly ListOffsetsPartition[]
}

export interface ListOffsetsPartitionResult {
  readonly topic: string
  readonly partition: number
  readonly offset?: number
  readonly error?: WireError
}

export interface ListOffsetsResponse {
  readonly partitions: readonly ListOffsetsPartitionResult[]
}

export const listOffsetsRequest: Schema<ListOffsetsRequest> = object<ListOffsetsRequest>(
  {
    partitions: array(
      object<ListOffsetsPartition>({ topic: topicName, partition: partitionIndex, spec: literal('earliest', 'latest') }),
      wireLimits.partitionsPerRequestMax,
      1,
    ),
  },
  (r) => uniquePartitions(r.partitions),
)

export const listOffsetsResponse: Schema<ListOffsetsResponse> = object<ListOffsetsResponse>({
  partitions: array(
    object<ListOffsetsPartitionResult>(
      { topic: topicName, partition: partitionIndex, offset: optional(offset), error: optional(wireError) },
      (p) => ((p.offset === undefined) === (p.error === undefined) ? issue('must have exactly one of offset and error') : undefined),
    ),
    wireLimits.partitionsPerRequestMax,
  ),
})
