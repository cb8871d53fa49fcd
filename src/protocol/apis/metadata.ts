/**
 * metadata v1: the cluster's nodes and where each partition's leader is. Clients cache
 * it, send to leaders, and ask again on NOT_LEADER or LEADER_NOT_AVAILABLE.
 *
 *   request  = { topics?: [topic name](0..100000) }      absent: every topic
 *   response = { nodes: [{ id: node id, host: string(1..253), port: 1..65535 }],
 *                topics: [{ name, error?: wire error,
 *                           partitions: [{ partition, leader: node id | null, replicas: [node id],
 *                                          target?: [node id] }] }] }
 *
 * A topic asked for by name that does not exist is listed with error UNKNOWN_TOPIC and
 * no partitions (the `error` field is this module's addition to the brief's shape). A
 * partition's leader is null while it has none; `target` is where it is moving
 * (movePartition), while the move is under way.
 *
 * Imports errors.ts and the other modules of src/protocol/apis.
 */
import type { WireError } from '../errors.js'
import { nodeId, partitionIndex, wireError } from './common.js'
import { wireLimits } from './limits.js'
import { array, int, nullable, object, optional, str, topicName } from './schema.js'
import type { Schema } from './schema.js'

export interface MetadataRequest {
  readonly topics?: readonly string[]
}

export interface NodeInfo {
  readonly id: number
  readonly host: string
  readonly port: number
}

export interface PartitionMetadata {
  readonly partition: number
  readonly leader: number | null
  readonly replicas: readonly number[]
  readonly target?: readonly number[]
}

export interface TopicMetadata {
  readonly name: string
  readonly error?: WireError
  readonly partitions: readonly PartitionMetadata[]
}

export interface MetadataResponse {
  readonly nodes: readonly NodeInfo[]
  readonly topics: readonly TopicMetadata[]
}

export const metadataRequest: Schema<MetadataRequest> = object<MetadataRequest>({
  topics: optional(array(topicName, wireLimits.topicsPerRequestMax)),
})

export const metadataResponse: Schema<MetadataResponse> = object<MetadataResponse>({
  nodes: array(
    object<NodeInfo>({ id: nodeId, host: str(1, wireLimits.hostCharsMax), port: int(1, 0xffff) }),
    wireLimits.nodesMax,
  ),
  topics: array(
    object<TopicMetadata>({
      name: topicName,
      error: optional(wireError),
      partitions: array(
        object<PartitionMetadata>({
          partition: partitionIndex,
          leader: nullable(nodeId),
          replicas: array(nodeId, wireLimits.replicationFactorMax),
          target: optional(array(nodeId, wireLimits.replicationFactorMax)),
        }),
        wireLimits.partitionsPerTopicMax,
      ),
    }),
    wireLimits.topicsPerRequestMax,
  ),
})
