/**
 * describeCluster v1: what one node knows of the cluster, for `raftmq cluster status`.
 * Every node answers for itself; a caller asks each node and merges (each partition as
 * its leader reports it).
 *
 *   request  = {}
 *   response = { nodeId, nodes: [{ id, host, port, up: bool }],   (groups: `quiet` below)
 *                controller: { leader: node id (0: none), voters: [node id] },
 *                groups: [{ topic, partition, groupId, role, leader, term, commit, applied,
 *                           lastIndex, behind: bool, snapshotBytes, snapshotBytesTotal,
 *                           followers: [{ id, match, active: bool }] }] }
 *
 * `nodes` are the registered nodes, `up` whether this node's peer link to it is up (this
 * node itself is up). `groups` are the partition replicas this node hosts; `followers`
 * is filled in only by a leader: how far each other replica's log is known to match, and
 * whether it answered within the last election timeout. `behind`: the replica is catching
 * up by snapshot (its leader's log no longer reaches back to it), and has received
 * `snapshotBytes` of about `snapshotBytesTotal` (both 0 when not behind).
 *
 * electPreferredLeaders v1 (Kafka's ElectLeaders, preferred): this node hands the
 * leadership of every partition it leads back to the partition's preferred replica (its
 * first) where that replica is answering and nearly caught up, at once, instead of on
 * its leaders' own schedule. A caller asks every node (`raftmq cluster rebalance`).
 *
 *   request  = {}
 *   response = { started: u32 }     transfers this node started
 *
 * movePartition v1 (Kafka's AlterPartitionReassignments, one partition): the partition is
 * to move to `replicas` (distinct registered nodes, the preferred leader first). Answered
 * once the move is recorded; the partition's leader then adds the new replicas and removes
 * the old ones one configuration change at a time, and `metadata` shows the partition's
 * `target` until it is done. The same replicas as now cancel a move in progress.
 *
 *   request  = { topic, partition, replicas: [node id](1..255) }
 *   response = {}
 *
 * addNode v1: node `id` joins the running cluster; the other nodes reach it at `host:port`
 * (its `--peer-listen`). Answered once the metadata records it: every node then dials it,
 * it receives the metadata, registers its client address and can hold replicas (moves,
 * new topics). Refused (INVALID_NODE) for a node started with `--peers` (already a
 * member), an id not above the metadata group's voters, or on a single node. Again for
 * an added node: its address changes.
 *
 *   request  = { id, host, port }
 *   response = {}
 *
 * removeNode v1: an added node leaves the cluster (every node stops dialing it and closes
 * its connection). Refused (INVALID_NODE) while a partition's replicas or move target name
 * it (drain it first), and for a node started with `--peers`.
 *
 *   request  = { id }
 *   response = {}
 *
 * `quiet`: the group is idle and neither ticks nor heartbeats (RaftOptions.quiesce).
 *
 * Imports the other modules of src/protocol/apis.
 */
import { emptyBody, nodeId, partitionIndex } from './common.js'
import type { EmptyBody } from './common.js'
import { wireLimits } from './limits.js'
import { array, bool, int, literal, object, str, topicName } from './schema.js'
import type { Schema } from './schema.js'

export type DescribeClusterRequest = EmptyBody

export interface ClusterNode {
  readonly id: number
  readonly host: string
  readonly port: number
  readonly up: boolean
}

export interface FollowerProgress {
  readonly id: number
  readonly match: number
  readonly active: boolean
}

export interface GroupReport {
  readonly topic: string
  readonly partition: number
  readonly groupId: number
  readonly role: 'leader' | 'follower' | 'candidate' | 'pre-candidate'
  readonly quiet: boolean
  readonly leader: number
  readonly term: number
  readonly commit: number
  readonly applied: number
  readonly lastIndex: number
  readonly behind: boolean
  readonly snapshotBytes: number
  readonly snapshotBytesTotal: number
  readonly followers: readonly FollowerProgress[]
}

export interface DescribeClusterResponse {
  readonly nodeId: number
  readonly nodes: readonly ClusterNode[]
  readonly controller: { readonly leader: number; readonly voters: readonly number[] }
  readonly groups: readonly GroupReport[]
}

const index: Schema<number> = int(0, Number.MAX_SAFE_INTEGER)

export const describeClusterRequest: Schema<DescribeClusterRequest> = emptyBody

export const describeClusterResponse: Schema<DescribeClusterResponse> = object<DescribeClusterResponse>({
  nodeId,
  nodes: array(object<ClusterNode>({ id: nodeId, host: str(1, wireLimits.hostCharsMax), port: int(1, 0xffff), up: bool }), wireLimits.nodesMax),
  controller: object<DescribeClusterResponse['controller']>({ leader: nodeId, voters: array(nodeId, wireLimits.nodesMax) }),
  groups: array(
    object<GroupReport>({
      topic: topicName,
      partition: partitionIndex,
      groupId: index,
      role: literal('leader', 'follower', 'candidate', 'pre-candidate'),
      quiet: bool,
      leader: nodeId,
      term: index,
      commit: index,
      applied: index,
      lastIndex: index,
      behind: bool,
      snapshotBytes: index,
      snapshotBytesTotal: index,
      followers: array(object<FollowerProgress>({ id: nodeId, match: index, active: bool }), wireLimits.replicationFactorMax),
    }),
    wireLimits.groupsPerNodeMax,
  ),
})

export interface MovePartitionRequest {
  readonly topic: string
  readonly partition: number
  readonly replicas: readonly number[]
}

export type MovePartitionResponse = EmptyBody

export const movePartitionRequest: Schema<MovePartitionRequest> = object<MovePartitionRequest>({
  topic: topicName,
  partition: partitionIndex,
  replicas: array(nodeId, wireLimits.replicationFactorMax, 1),
})

export const movePartitionResponse: Schema<MovePartitionResponse> = emptyBody

export interface AddNodeRequest {
  readonly id: number
  readonly host: string
  readonly port: number
}

export type AddNodeResponse = EmptyBody

export const addNodeRequest: Schema<AddNodeRequest> = object<AddNodeRequest>({ id: nodeId, host: str(1, wireLimits.hostCharsMax), port: int(1, 0xffff) })
export const addNodeResponse: Schema<AddNodeResponse> = emptyBody

export interface RemoveNodeRequest {
  readonly id: number
}

export type RemoveNodeResponse = EmptyBody

export const removeNodeRequest: Schema<RemoveNodeRequest> = object<RemoveNodeRequest>({ id: nodeId })
export const removeNodeResponse: Schema<RemoveNodeResponse> = emptyBody

export type ElectPreferredLeadersRequest = EmptyBody

export interface ElectPreferredLeadersResponse {
  readonly started: number
}

export const electPreferredLeadersRequest: Schema<ElectPreferredLeadersRequest> = emptyBody
export const electPreferredLeadersResponse: Schema<ElectPreferredLeadersResponse> = object<ElectPreferredLeadersResponse>({ started: int(0, wireLimits.groupsPerNodeMax) })
