/**
 * src/broker/peer: the node-to-node transport. One TCP connection per node pair carries
 * every Raft group's traffic between the two nodes, on numbered channels, as opaque bytes.
 *
 * Imports only src/base and node built-ins (never raft, group or replica), so the Raft
 * hosts depend on it and not the other way round.
 */
export { PeerTransport } from './transport.js'
export type { PeerAddress, PeerTransportOptions, PeerTransportStats } from './transport.js'
export type { PeerLog } from './log.js'
export { CHANNEL_MAX, PEER_VERSION_MAX, PEER_VERSION_MIN, REFUSAL_CODES } from './wire.js'
export type { RefusalCode } from './wire.js'
