/**
 * The facts a partition takes from a RecordBatch v2 header, read straight from the batch:
 * the one decoder of them on the apply side. A produce command carries the batch and
 * nothing that repeats its header (./commands), so record count, producer id, epoch,
 * base sequence and max timestamp have one home — the header — and the state machine,
 * retention and idempotence all read them through `readBatchFacts`.
 *
 * The fields, at their RecordBatch v2 offsets (src/protocol/record-batch.ts has the whole
 * layout; src/partition may not import it, so the offsets it needs are repeated here and
 * test/partition/batch-header.test.ts holds the two readers to the same answers):
 *
 *   8 batchLength int32 | 16 magic int8 = 2 | 23 lastOffsetDelta int32
 *   35 maxTimestamp int64 | 43 producerId int64 | 51 producerEpoch int16
 *   53 baseSequence int32 | 57 recordCount int32 | 61 records …
 *
 * Reading never goes out of bounds and never throws: a header that fails the checks is a
 * reason string, which the command decoder turns into MALFORMED_COMMAND. The checks are
 * structure and value domains only (magic 2, exactly one batch, recordCount ≥ 1 and
 * lastOffsetDelta = recordCount − 1, safe integers, a real epoch and sequence for an
 * idempotent producer) — never limits and never the CRC, which the leader checked where
 * the batch entered (checkBatch), so that apply costs a few fixed-offset reads.
 *
 * Imports base and ./bytes.
 */
import { fail, ok } from '../base/index.js'
import type { Failure, Result } from '../base/index.js'
import { INT16_MAX, INT32_MAX, getInt64, viewOf } from './bytes.js'

/** The fixed RecordBatch v2 header; records start here. */
export const BATCH_HEADER_BYTES = 61

const AT_BATCH_LENGTH = 8
const AT_MAGIC = 16
const AT_LAST_OFFSET_DELTA = 23
const AT_MAX_TIMESTAMP = 35
const AT_PRODUCER_ID = 43
const AT_PRODUCER_EPOCH = 51
const AT_BASE_SEQUENCE = 53
const AT_RECORD_COUNT = 57
/** baseOffset and batchLength: the bytes batchLength does not count. */
const LOG_OVERHEAD_BYTES = 12
const MAGIC = 2

/** Kafka's "no producer": the batch is not idempotent and is never checked or deduplicated. */
export const NO_PRODUCER_ID = -1

/** What apply reads from a batch header. protocol's BatchHeader has these fields too, so the leader can pass it to `batchFactsProblem`. */
export interface BatchFacts {
  readonly recordCount: number
  readonly producerId: number
  readonly producerEpoch: number
  readonly baseSequence: number
  /** Largest record timestamp in ms, as the header says: what retention and producer expiry go by. */
  readonly maxTimestamp: number
}

/** The facts of the RecordBatch `batch`, or why its header cannot be applied. */
export function readBatchFacts(batch: Uint8Array): Result<BatchFacts, 'MALFORMED_BATCH'> {
  if (batch.byteLength < BATCH_HEADER_BYTES) return bad(`record batch of ${batch.byteLength} bytes, its header needs ${BATCH_HEADER_BYTES}`)
  const v = viewOf(batch)
  const magic = v.getInt8(AT_MAGIC)
  if (magic !== MAGIC) return bad(`record batch magic ${magic}`)
  const framed = v.getInt32(AT_BATCH_LENGTH, false) + LOG_OVERHEAD_BYTES
  if (framed !== batch.byteLength) return bad(`record batch declares ${framed} bytes, ${batch.byteLength} are present`)
  const recordCount = v.getInt32(AT_RECORD_COUNT, false)
  const lastOffsetDelta = v.getInt32(AT_LAST_OFFSET_DELTA, false)
  if (lastOffsetDelta !== recordCount - 1) return bad(`lastOffsetDelta ${lastOffsetDelta} with ${recordCount} records`)
  const producerId = getInt64(v, AT_PRODUCER_ID)
  const maxTimestamp = getInt64(v, AT_MAX_TIMESTAMP)
  if (producerId === null) return bad('producer id is not a safe integer')
  if (maxTimestamp === null) return bad('max timestamp is not a safe integer')
  const facts: BatchFacts = {
    recordCount,
    producerId,
    producerEpoch: v.getInt16(AT_PRODUCER_EPOCH, false),
    baseSequence: v.getInt32(AT_BASE_SEQUENCE, false),
    maxTimestamp,
  }
  const why = batchFactsProblem(facts)
  return why === null ? ok(facts) : bad(why)
}

/**
 * Why these facts cannot be applied, or null. The leader asks it of the header it already
 * parsed (checkBatch's), so it refuses at the edge exactly what apply would.
 */
export function batchFactsProblem(f: BatchFacts): string | null {
  if (!Number.isInteger(f.recordCount) || f.recordCount < 1 || f.recordCount > INT32_MAX) return `record count ${f.recordCount}`
  if (!Number.isSafeInteger(f.producerId) || f.producerId < NO_PRODUCER_ID) return `producer id ${f.producerId}: -1 or a producer's id`
  if (!Number.isInteger(f.producerEpoch) || f.producerEpoch < -0x8000 || f.producerEpoch > INT16_MAX) return `producer epoch ${f.producerEpoch}`
  if (!Number.isInteger(f.baseSequence) || f.baseSequence < -0x8000_0000 || f.baseSequence > INT32_MAX) return `base sequence ${f.baseSequence}`
  if (!Number.isSafeInteger(f.maxTimestamp)) return `max timestamp ${f.maxTimestamp}`
  // without a producer id, epoch and sequence mean nothing (KafkaJS sends epoch 0, Kafka -1);
  // an idempotent batch carries a real epoch and sequence: the checks do arithmetic on them
  if (f.producerId !== NO_PRODUCER_ID && (f.producerEpoch < 0 || f.baseSequence < 0)) {
    return `idempotent producer ${f.producerId} with epoch ${f.producerEpoch} and base sequence ${f.baseSequence}`
  }
  return null
}

function bad(why: string): { readonly ok: false; readonly error: Failure<'MALFORMED_BATCH'> } {
  return fail('MALFORMED_BATCH', why)
}
