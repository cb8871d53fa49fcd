/**
 * src/controller: the metadata state machine of the controller group (topics,
 * partition-to-group assignments, nodes, producer ids) and where a new topic's replicas
 * go. Imports base only (and msgpackr).
 */
export { MetadataStateMachine, encodeMetadataCommand } from './metadata.js'
export type { MetadataCommand, MetadataResult, MetadataError, Topic, TopicConfig, PartitionAssignment } from './metadata.js'
export type { NodeRecord, PeerRecord } from './metadata.js'
export { placeReplicas } from './placement.js'
export type { PlacementInput } from './placement.js'
