/**
 * initProducerId v1: a producer id and epoch for an idempotent producer (DESIGN §3). The
 * producer stamps them, with per-partition sequences, into every RecordBatch it sends.
 *
 *   request  = {}
 *   response = { producerId: 0..2^53-1, producerEpoch: 0..32767 }
 *
 * Imports the other modules of src/protocol/apis.
 */
import { emptyBody } from './common.js'
import type { EmptyBody } from './common.js'
import { wireLimits } from './limits.js'
import { int, object } from './schema.js'
import type { Schema } from './schema.js'

export type InitProducerIdRequest = EmptyBody

export interface InitProducerIdResponse {
  readonly producerId: number
  readonly producerEpoch: number
}

export const initProducerIdRequest: Schema<InitProducerIdRequest> = emptyBody

export const initProducerIdResponse: Schema<InitProducerIdResponse> = object<InitProducerIdResponse>({
  producerId: int(0, wireLimits.producerIdMax),
  producerEpoch: int(0, wireLimits.producerEpochMax),
})
