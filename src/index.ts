/**
 * The raftmq package entry point. For now it exposes the Raft core and the base layer;
 * the client API joins it when the broker lands.
 */
export * as raft from './raft/index.js'
export { Prng, limits } from './base/index.js'
