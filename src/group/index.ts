/**
 * src/group: the Raft group actor, against injected storage and state machine, so the
 * same code runs in a worker thread and in tests. Imports base and raft only.
 */
export { GroupActor } from './actor.js'
export type { ActorStorage, ActorStateMachine, ActorLogger, GroupActorOptions, ActorProposeError, Committed } from './actor.js'
