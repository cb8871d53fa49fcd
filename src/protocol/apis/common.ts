/**
 * Field schemas several APIs share: the wire error, partitions, offsets, node ids and the
 * empty body. Each API module (hello.ts, produce.ts, ...) builds on these and schema.ts.
 *
 *   wire error = { code: ErrorCode, message: string(0..4096), leader?: node id, details?: map }
 *   partition  = u32 below partitionsPerTopicMax
 *   offset     = 0..2^53-1
 *   node id    = 0..2^31-1
 *
 * Imports errors.ts and the other modules of src/protocol/apis.
 */
import { isErrorCode } from '../errors.js'
import type { WireError } from '../errors.js'
import { wireLimits } from './limits.js'
import { anyMap, int, member, object, optional, str } from './schema.js'
import type { Schema } from './schema.js'

export const nodeId: Schema<number> = int(0, wireLimits.nodeIdMax)
export const partitionIndex: Schema<number> = int(0, wireLimits.partitionsPerTopicMax - 1)
export const partitionCount: Schema<number> = int(1, wireLimits.partitionsPerTopicMax)
export const offset: Schema<number> = int(0, wireLimits.offsetMax)
/** A high watermark or log start offset in a response; -1 when an error means it is unknown. */
export const offsetOrUnknown: Schema<number> = int(-1, wireLimits.offsetMax)

export const wireError: Schema<WireError> = object<WireError>({
  code: member(isErrorCode, 'an error code of protocol version 1'),
  message: str(0, wireLimits.errorMessageCharsMax),
  leader: optional(nodeId),
  details: optional(anyMap),
})

/** The body of requests and responses that carry nothing. */
export type EmptyBody = Readonly<Record<string, never>>
export const emptyBody: Schema<EmptyBody> = object<EmptyBody>({})
