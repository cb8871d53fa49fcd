/**
 * produce v1: append one RecordBatch to each of several partitions.
 *
 *   request  = { timeoutMs: 0..300000, atomic?: boolean,
 *                partitions: [{ topic, partition, batch: bin }](1..10000) }
 *   response = { partitions: [ { topic, partition, error: wire error }
 *                            | { topic, partition, count, baseOffset?, duplicate?: true,
 *                                errors?: [{ index, error: wire error }] } ] }
 *
 * `batch` is one Kafka RecordBatch v2 (magic 2), opaque at this layer: a view into the
 * frame, so routing it copies no record. Its size and contents (BATCH_TOO_LARGE,
 * CORRUPT_MESSAGE, ...) are the broker's per-partition checks, not request-shape errors:
 * the other partitions of the request go ahead.
 *
 * The response has one entry per request entry, in request order. A partition-level
 * `error` (NOT_LEADER, UNKNOWN_TOPIC, TIMEOUT, BATCH_TOO_LARGE, ...) means nothing of that
 * batch was written. Otherwise the entry summarises the batch's `count` records: the ones
 * listed in `errors` (ascending `index`, 0-based in the batch as sent) were refused, and
 * the others, in order, have the offsets `baseOffset`, `baseOffset + 1`, ... The summary
 * is a range, not one result per record, because a 1000-record batch answered record by
 * record spent more CPU on its answer than on storing it (bench/results/profile.md); the
 * client expands it with `produceResults`. With `atomic: true`, one record's error
 * rejects the whole batch: that record carries its own error and every other record
 * BATCH_REJECTED. Atomicity is per batch (one partition, one Raft group), never across
 * partitions. `duplicate`: an idempotent retry of a stored batch, nothing was stored again
 * and `baseOffset` is the original one.
 *
 * A request names each (topic, partition) at most once: a client coalesces what it sends
 * one partition into one batch, as Kafka's producers do.
 *
 * Imports errors.ts and the other modules of src/protocol/apis.
 */
import type { WireError } from '../errors.js'
import { offset, partitionIndex, wireError } from './common.js'
import { wireLimits } from './limits.js'
import { array, bool, bytes, int, issue, literal, object, optional, topicName, uniquePartitions } from './schema.js'
import type { Issue, Schema } from './schema.js'

export interface ProducePartition {
  readonly topic: string
  readonly partition: number
  readonly batch: Uint8Array
}

export interface ProduceRequest {
  readonly timeoutMs: number
  readonly atomic?: boolean
  readonly partitions: readonly ProducePartition[]
}

/** One record's answer, as `produceResults` expands a summary. */
export interface ProduceOffset {
  readonly offset: number
  /** An idempotent retry of a batch already stored: `offset` is the original one. */
  readonly duplicate?: true
}

export interface ProduceFailure {
  readonly error: WireError
}

export type ProduceResult = ProduceOffset | ProduceFailure

export interface ProduceRecordError<E = WireError> {
  /** The record's position in the batch as sent. */
  readonly index: number
  readonly error: E
}

/** What became of one batch's records (see the header); `E` is the error's type where it is not yet a checked wire error. */
export interface ProduceSummary<E = WireError> {
  readonly count: number
  /** The offset of the first stored record; absent when every record was refused. */
  readonly baseOffset?: number
  readonly duplicate?: true
  /** Refused records, ascending by index. */
  readonly errors?: readonly ProduceRecordError<E>[]
}

export interface ProducePartitionResult {
  readonly topic: string
  readonly partition: number
  /** Nothing of the batch was written; no summary fields. */
  readonly error?: WireError
  readonly count?: number
  readonly baseOffset?: number
  readonly duplicate?: true
  readonly errors?: readonly ProduceRecordError[]
}

export interface ProduceResponse {
  readonly partitions: readonly ProducePartitionResult[]
}

/** One result per record of a summarised batch, in batch order. */
export function produceResults(s: ProduceSummary): ProduceResult[] {
  const out = new Array<ProduceResult>(s.count)
  const errors = s.errors ?? []
  let next = s.baseOffset ?? 0
  let e = 0
  for (let i = 0; i < s.count; i++) {
    if (e < errors.length && errors[e]!.index === i) out[i] = { error: errors[e++]!.error }
    else out[i] = s.duplicate ? { offset: next++, duplicate: true } : { offset: next++ }
  }
  return out
}

/** Why a partition result is not a consistent summary (or error), or undefined. */
function summaryProblem(r: ProducePartitionResult): Issue | undefined {
  if (r.error !== undefined) {
    if (r.count !== undefined || r.baseOffset !== undefined || r.duplicate !== undefined || r.errors !== undefined) {
      return issue('an entry with a partition error carries no summary')
    }
    return undefined
  }
  if (r.count === undefined) return issue('an entry needs an error or a record count')
  const errors = r.errors ?? []
  for (let i = 0; i < errors.length; i++) {
    const index = errors[i]!.index
    if (index >= r.count) return { path: ['errors', i, 'index'], reason: `must be below the count ${r.count}`, code: 'INVALID_REQUEST' }
    if (i > 0 && index <= errors[i - 1]!.index) return { path: ['errors', i, 'index'], reason: 'must be ascending', code: 'INVALID_REQUEST' }
  }
  const stored = errors.length < r.count
  if (stored !== (r.baseOffset !== undefined)) return issue(stored ? 'baseOffset is required when a record was stored' : 'baseOffset without a stored record')
  if (r.duplicate && !stored) return issue('duplicate without a stored record')
  return undefined
}

export const produceRequest: Schema<ProduceRequest> = object<ProduceRequest>(
  {
    timeoutMs: int(0, wireLimits.produceTimeoutMsMax),
    atomic: optional(bool),
    partitions: array(
      object<ProducePartition>({ topic: topicName, partition: partitionIndex, batch: bytes(wireLimits.bytesMax) }),
      wireLimits.partitionsPerRequestMax,
      1,
    ),
  },
  (r) => uniquePartitions(r.partitions),
)

export const produceResponse: Schema<ProduceResponse> = object<ProduceResponse>({
  partitions: array(
    object<ProducePartitionResult>({
      topic: topicName,
      partition: partitionIndex,
      error: optional(wireError),
      count: optional(int(0, wireLimits.produceResultsMax)),
      baseOffset: optional(offset),
      duplicate: optional(literal(true)),
      errors: optional(
        array(object<ProduceRecordError>({ index: int(0, wireLimits.produceResultsMax - 1), error: wireError }), wireLimits.produceResultsMax),
      ),
    }, summaryProblem),
    wireLimits.partitionsPerRequestMax,
  ),
})
