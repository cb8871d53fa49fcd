/**
 * src/group: the Raft group actor and the worker's Ready loop, against an injected log
 * engine and state machine, so the same code runs in a worker thread, in tests and in
 * the simulator. Imports base and raft only.
 */
export { GroupActor } from './actor.js'
export type { ActorStateMachine, ActorLogger, ActorLoop, LoopActor, GroupActorOptions, ActorProposeError, Committed } from './actor.js'
export { WorkerLoop } from './worker-loop.js'
export type { LoopEngine, WorkerLoopOptions } from './worker-loop.js'
