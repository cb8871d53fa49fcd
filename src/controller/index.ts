/**
 * src/controller: the metadata state machine of the controller group (topics,
 * partition-to-group assignments, producer ids). Imports base only (and msgpackr).
 */
export { MetadataStateMachine, encodeMetadataCommand } from './metadata.js'
export type { MetadataCommand, MetadataResult, MetadataError, Topic, TopicConfig, PartitionAssignment } from './metadata.js'
