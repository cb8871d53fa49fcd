/**
 * The raftmq package entry point: the client library (`Client` and friends), and for
 * embedding, `startNode` with its configuration, plus the Raft core under `raft`.
 */
export * from './client/index.js'
export { startNode } from './broker/node.js'
export type { RunningNode } from './broker/node.js'
export { resolveConfig } from './broker/config.js'
export type { BrokerConfig } from './broker/config.js'
export * as raft from './raft/index.js'
export { Prng, limits } from './base/index.js'
