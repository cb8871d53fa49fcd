/**
 * The accepting side's decision on a HELLO: which version to speak, or which refusal to
 * answer. Pure, so every refusal is tested without a socket; link.ts sends the answer.
 *
 * Checks run from the most basic up, so the code names the first thing that is wrong:
 * the bytes (BAD_HANDSHAKE) and the version (UNSUPPORTED_VERSION) in decodeHello, then
 * the cluster, then whether the dialer reached the node it meant (WRONG_NODE), then
 * whether it is one of ours (UNKNOWN_NODE). Finally the direction: the lower id dials
 * the higher, so a known peer with a higher id dialing us would open a second connection
 * for the pair; it is refused as BAD_HANDSHAKE (only a foreign or broken dialer does it).
 *
 * Imports base and ./wire.
 */
import { fail, ok } from '../../base/index.js'
import type { Result } from '../../base/index.js'
import { PEER_VERSION_MAX, decodeHello } from './wire.js'
import type { RefusalCode } from './wire.js'

export interface LocalIdentity {
  readonly nodeId: number
  readonly clusterId: string
  readonly peers: ReadonlyMap<number, unknown>
}

export interface Accepted {
  /** The dialing node's id. */
  readonly peer: number
  readonly version: number
}

/** What to answer the HELLO in `payload` (a channel-0 payload, type byte included). */
export function answerHello(payload: Uint8Array, local: LocalIdentity): Result<Accepted, RefusalCode> {
  const hello = decodeHello(payload)
  if (!hello.ok) return hello
  const { clusterId, from, to, versionMax } = hello.value
  if (clusterId !== local.clusterId) {
    return fail('WRONG_CLUSTER', `node ${from} belongs to cluster ${JSON.stringify(clusterId)}; this is ${JSON.stringify(local.clusterId)}`)
  }
  if (to !== local.nodeId) return fail('WRONG_NODE', `node ${from} meant to reach node ${to}; this is node ${local.nodeId}`)
  if (from === local.nodeId || !local.peers.has(from)) return fail('UNKNOWN_NODE', `node ${from} is not in node ${local.nodeId}'s peer list`)
  if (from > local.nodeId) return fail('BAD_HANDSHAKE', `node ${from} dialed node ${local.nodeId}: the lower id dials the higher`)
  return ok({ peer: from, version: Math.min(versionMax, PEER_VERSION_MAX) })
}
