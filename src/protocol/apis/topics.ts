/**
 * The topic admin APIs, v1: createTopic, deleteTopic, listTopics, describeTopic, alterTopic.
 *
 *   createTopic   request  = { name: topic name, partitions: 1..10000, replicationFactor: 1..255,
 *                              retentionMs?: 1..2^53-1 | null, retentionBytes?: 1..2^53-1 | null }
 *                 response = { name, partitions }
 *   deleteTopic   request  = { name }                        response = {}
 *   listTopics    request  = {}                              response = { topics: [{ name, partitions }] }
 *   describeTopic request  = { name }
 *                 response = { name, retentionMs: u53 | null, retentionBytes: u53 | null,
 *                              partitions: [{ partition, leader: node id | null,
 *                                             logStartOffset, highWatermark }] }
 *   alterTopic    request  = { name, retentionMs?: 1..2^53-1 | null, retentionBytes?: 1..2^53-1 | null,
 *                              partitions?: 1..10000 }      (absent: unchanged)
 *                 response = { name, partitions, retentionMs, retentionBytes }   (as it is now)
 *
 * alterTopic changes retention from the partitions' next check on, and adds partitions
 * (each a new Raft group placed like a new topic's, with the topic's replication factor);
 * a count below the current one is INVALID_CONFIG, as partitions are never removed.
 * Adding partitions moves where keys hash to, as in Kafka.
 *
 * A topic name is 1..249 of [a-zA-Z0-9._-], not "." or ".." (Kafka's rule); a string
 * breaking it is INVALID_TOPIC, anything not a string INVALID_REQUEST. Retention: absent
 * means the broker's default, null unlimited. A replication factor above the number of
 * nodes is the controller's INVALID_CONFIG, not a malformed request.
 *
 * Imports the other modules of src/protocol/apis.
 */
import { emptyBody, nodeId, offset, partitionCount, partitionIndex } from './common.js'
import type { EmptyBody } from './common.js'
import { wireLimits } from './limits.js'
import { array, int, nullable, object, optional, topicName } from './schema.js'
import type { Schema } from './schema.js'

export interface CreateTopicRequest {
  readonly name: string
  readonly partitions: number
  readonly replicationFactor: number
  readonly retentionMs?: number | null
  readonly retentionBytes?: number | null
}

export interface CreateTopicResponse {
  readonly name: string
  readonly partitions: number
}

export interface DeleteTopicRequest {
  readonly name: string
}

export type DeleteTopicResponse = EmptyBody
export type ListTopicsRequest = EmptyBody

export interface TopicListing {
  readonly name: string
  readonly partitions: number
}

export interface ListTopicsResponse {
  readonly topics: readonly TopicListing[]
}

export interface AlterTopicRequest {
  readonly name: string
  readonly retentionMs?: number | null
  readonly retentionBytes?: number | null
  readonly partitions?: number
}

export interface AlterTopicResponse {
  readonly name: string
  readonly partitions: number
  readonly retentionMs: number | null
  readonly retentionBytes: number | null
}

export interface DescribeTopicRequest {
  readonly name: string
}

export interface PartitionDescription {
  readonly partition: number
  readonly leader: number | null
  readonly logStartOffset: number
  readonly highWatermark: number
}

export interface DescribeTopicResponse {
  readonly name: string
  readonly partitions: readonly PartitionDescription[]
  readonly retentionMs: number | null
  readonly retentionBytes: number | null
}

const retentionMs = nullable(int(1, wireLimits.retentionMsMax))
const retentionBytes = nullable(int(1, wireLimits.retentionBytesMax))

export const createTopicRequest: Schema<CreateTopicRequest> = object<CreateTopicRequest>({
  name: topicName,
  partitions: partitionCount,
  replicationFactor: int(1, wireLimits.replicationFactorMax),
  retentionMs: optional(retentionMs),
  retentionBytes: optional(retentionBytes),
})

export const alterTopicRequest: Schema<AlterTopicRequest> = object<AlterTopicRequest>({
  name: topicName,
  retentionMs: optional(retentionMs),
  retentionBytes: optional(retentionBytes),
  partitions: optional(partitionCount),
})

export const alterTopicResponse: Schema<AlterTopicResponse> = object<AlterTopicResponse>({
  name: topicName,
  partitions: partitionCount,
  retentionMs: nullable(int(0, Number.MAX_SAFE_INTEGER)),
  retentionBytes: nullable(int(0, Number.MAX_SAFE_INTEGER)),
})

export const createTopicResponse: Schema<CreateTopicResponse> = object<CreateTopicResponse>({
  name: topicName,
  partitions: partitionCount,
})

export const deleteTopicRequest: Schema<DeleteTopicRequest> = object<DeleteTopicRequest>({ name: topicName })
export const deleteTopicResponse: Schema<DeleteTopicResponse> = emptyBody
export const listTopicsRequest: Schema<ListTopicsRequest> = emptyBody

export const listTopicsResponse: Schema<ListTopicsResponse> = object<ListTopicsResponse>({
  topics: array(object<TopicListing>({ name: topicName, partitions: partitionCount }), wireLimits.topicsPerRequestMax),
})

export const describeTopicRequest: Schema<DescribeTopicRequest> = object<DescribeTopicRequest>({ name: topicName })

export const describeTopicResponse: Schema<DescribeTopicResponse> = object<DescribeTopicResponse>({
  name: topicName,
  partitions: array(
    object<PartitionDescription>({
      partition: partitionIndex,
      leader: nullable(nodeId),
      logStartOffset: offset,
      highWatermark: offset,
    }),
    wireLimits.partitionsPerTopicMax,
  ),
  retentionMs,
  retentionBytes,
})
