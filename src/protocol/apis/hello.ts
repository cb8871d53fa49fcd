/**
 * hello v1: the first request on every connection. It negotiates the protocol version
 * and tells the client the server's size limits, so a client can split its batches
 * before the server would refuse them.
 *
 *   request  = { clientId: string(0..256), versionMin: u16, versionMax: u16 }
 *              versionMin <= versionMax
 *   response = { version: u16, nodeId: node id, server: string(0..256),
 *                limits: { frameBytesMax: u32, messageBytesMax: u32, batchBytesMax: u32 } }
 *
 * The chosen version is the highest in both the client's [versionMin, versionMax] and the
 * server's [PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX]; with no overlap the answer is
 * UNSUPPORTED_VERSION and the server closes the connection. hello's own shape is frozen:
 * its envelope version is 1 in every protocol version, so any client can negotiate with
 * any server. Every later request on the connection carries the negotiated version.
 *
 * Imports base, errors.ts and the other modules of src/protocol/apis.
 */
import { fail, ok } from '../../base/index.js'
import type { Result } from '../../base/index.js'
import { formatMessage } from '../errors.js'
import { nodeId } from './common.js'
import { wireLimits } from './limits.js'
import { int, issue, object, str } from './schema.js'
import type { Schema } from './schema.js'

export const PROTOCOL_VERSION_MIN = 1
export const PROTOCOL_VERSION_MAX = 1

export interface HelloRequest {
  readonly clientId: string
  readonly versionMin: number
  readonly versionMax: number
}

export interface HelloLimits {
  readonly frameBytesMax: number
  readonly messageBytesMax: number
  readonly batchBytesMax: number
}

export interface HelloResponse {
  readonly version: number
  readonly nodeId: number
  readonly server: string
  readonly limits: HelloLimits
}

const version = int(0, wireLimits.versionMax)
const byteLimit = int(1, 0xffff_ffff)

export const helloRequest: Schema<HelloRequest> = object<HelloRequest>(
  {
    clientId: str(0, wireLimits.clientIdCharsMax),
    versionMin: version,
    versionMax: version,
  },
  (h) => (h.versionMin <= h.versionMax ? undefined : issue(`versionMin ${h.versionMin} is above versionMax ${h.versionMax}`)),
)

export const helloResponse: Schema<HelloResponse> = object<HelloResponse>({
  version,
  nodeId,
  server: str(0, wireLimits.serverCharsMax),
  limits: object<HelloLimits>({ frameBytesMax: byteLimit, messageBytesMax: byteLimit, batchBytesMax: byteLimit }),
})

/** The version both sides speak: the highest in both ranges, or UNSUPPORTED_VERSION. */
export function negotiateVersion(
  versionMin: number,
  versionMax: number,
  serverMin: number = PROTOCOL_VERSION_MIN,
  serverMax: number = PROTOCOL_VERSION_MAX,
): Result<number, 'UNSUPPORTED_VERSION'> {
  const chosen = Math.min(versionMax, serverMax)
  if (chosen < Math.max(versionMin, serverMin)) {
    const reason = `the client speaks ${versionMin}..${versionMax}, this server ${serverMin}..${serverMax}`
    return fail('UNSUPPORTED_VERSION', formatMessage('UNSUPPORTED_VERSION', { reason }))
  }
  return ok(chosen)
}
