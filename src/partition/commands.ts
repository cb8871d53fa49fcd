/**
 * The commands a partition's Raft entries carry, and their binary encoding.
 *
 * Wire grammar (all integers big-endian; byte 0 is the command type):
 *
 *   produce  [0x01][flags u8][recordCount u32][producerId i64][producerEpoch i16]
 *            [baseSequence i32][maxTimestamp i64][RecordBatch v2 bytes …]
 *            flags: bit 0 atomic, bit 1 single-message path; other bits must be 0.
 *   cleanup  [0x02][logStartOffset i64]
 *   expire   [0x03][idleBefore i64]
 *            forgets the idempotence state of every producer whose last batch's
 *            maxTimestamp is below idleBefore (ms); the leader proposes it, as it does
 *            cleanup, because apply has no clock.
 *
 * DESIGN.md §3's `produce_message` and `produce_batch` are the one produce command, with
 * the single-message flag set or not (`kind` names which). The leader validates the batch
 * (CRC, sizes, compression) and copies the header fields above out of it before
 * proposing, so applying never parses the batch: the RecordBatch is opaque here and
 * `batchOf` hands it back as a view, without a copy.
 *
 * A fixed binary header rather than msgpackr (which DESIGN.md §3 suggested): the produce
 * path is the hot one, the header is 28 bytes of fixed fields, the batch follows with no
 * framing, and src/partition stays free of npm imports.
 *
 * Decoding never reads out of bounds and never throws: a malformed command (a bug in the
 * leader, or a command type from a newer version) is a coded failure, so the state
 * machine can answer it deterministically on every replica instead of wedging the group
 * on an entry that can never be removed. Decoding checks structure and value domains only
 * (sizes, flags, safe integers, ids and sequences in range); limits such as
 * `limits.produce.batchRecordsMax` are enforced by the leader where data enters, never at
 * apply, so that a change of limits between versions cannot make replicas disagree.
 *
 * Imports base and ./bytes.
 */
import { assert, fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { ByteWriter, INT16_MAX, INT32_MAX, UINT32_MAX, getInt64, viewOf } from './bytes.js'

export const CommandType = {
  Produce: 0x01,
  Cleanup: 0x02,
  Expire: 0x03,
} as const
export type CommandType = (typeof CommandType)[keyof typeof CommandType]

export const ProduceFlag = {
  Atomic: 0b01,
  SingleMessage: 0b10,
} as const
const PRODUCE_FLAGS_KNOWN = ProduceFlag.Atomic | ProduceFlag.SingleMessage

/** Bytes before the RecordBatch in a produce command. */
export const PRODUCE_HEADER_BYTES = 28
/** Bytes of a cleanup command. */
export const CLEANUP_BYTES = 9
/** Bytes of an expire command. */
export const EXPIRE_BYTES = 9

/** Kafka's "no producer": the batch is not idempotent and is never checked or deduplicated. */
export const NO_PRODUCER_ID = -1

export type ProduceKind = 'produce_message' | 'produce_batch'

/** What the leader copies from the RecordBatch header (and the request) into the command. */
export interface ProduceFields {
  /** The request asked for all-or-nothing; the leader has already applied it to per-record errors. */
  readonly atomic: boolean
  readonly producerId: number
  readonly producerEpoch: number
  readonly baseSequence: number
  /** Largest record timestamp in ms (CreateTime), or the leader's append time (LogAppendTime). */
  readonly maxTimestamp: number
}

export interface ProduceCommand extends ProduceFields {
  readonly type: 'produce'
  readonly kind: ProduceKind
  readonly recordCount: number
  /** The RecordBatch, a view into the command's bytes. */
  readonly batch: Uint8Array
}

export interface CleanupCommand {
  readonly type: 'cleanup'
  readonly logStartOffset: number
}

export interface ExpireCommand {
  readonly type: 'expire'
  /** Producers whose last batch's maxTimestamp is below this (ms since the epoch) are forgotten. */
  readonly idleBefore: number
}

export type Command = ProduceCommand | CleanupCommand | ExpireCommand

export type CommandDecodeError = 'MALFORMED_COMMAND' | 'UNKNOWN_COMMAND'

/** A produce command of any kind; `kind: 'produce_message'` requires `recordCount` 1. */
export function encodeProduce(
  fields: ProduceFields & { readonly kind: ProduceKind; readonly recordCount: number },
  batch: Uint8Array,
): Uint8Array {
  const single = fields.kind === 'produce_message'
  assert(!single || fields.recordCount === 1, () => `produce_message with ${fields.recordCount} records`)
  const why = checkProduceFields(fields.recordCount, fields.producerId, fields.producerEpoch, fields.baseSequence)
  assert(why === null, () => `encodeProduce: ${why}`)
  // the one copy of the batch on the produce path: into the entry the leader proposes
  const w = new ByteWriter(PRODUCE_HEADER_BYTES + batch.byteLength)
  w.u8(CommandType.Produce)
  w.u8((fields.atomic ? ProduceFlag.Atomic : 0) | (single ? ProduceFlag.SingleMessage : 0))
  w.u32(fields.recordCount)
  w.i64(fields.producerId)
  w.i16(fields.producerEpoch)
  w.i32(fields.baseSequence)
  w.i64(fields.maxTimestamp)
  w.raw(batch)
  return w.finish()
}

/** `produce_message`: a batch of exactly one record, the path a single send takes. */
export function encodeProduceMessage(fields: ProduceFields, batch: Uint8Array): Uint8Array {
  return encodeProduce({ ...fields, kind: 'produce_message', recordCount: 1 }, batch)
}

/** `produce_batch`: a batch of `recordCount` records, one Raft entry. */
export function encodeProduceBatch(fields: ProduceFields & { readonly recordCount: number }, batch: Uint8Array): Uint8Array {
  return encodeProduce({ ...fields, kind: 'produce_batch' }, batch)
}

export function encodeCleanup(logStartOffset: number): Uint8Array {
  assert(Number.isSafeInteger(logStartOffset) && logStartOffset >= 0, () => `cleanup to ${logStartOffset}`)
  return encodeI64Command(CommandType.Cleanup, logStartOffset)
}

export function encodeExpire(idleBefore: number): Uint8Array {
  assert(Number.isSafeInteger(idleBefore), () => `expire before ${idleBefore}`)
  return encodeI64Command(CommandType.Expire, idleBefore)
}

/** A command of one i64 after its type byte (cleanup, expire). */
function encodeI64Command(type: CommandType, value: number): Uint8Array {
  const w = new ByteWriter(9)
  w.u8(type)
  w.i64(value)
  return w.finish()
}

/** Any command; dispatches on byte 0. */
export function decodeCommand(data: Uint8Array): Result<Command, CommandDecodeError> {
  if (data.byteLength === 0) return fail('MALFORMED_COMMAND', 'empty command')
  switch (data[0]) {
    case CommandType.Produce:
      return decodeProduce(data)
    case CommandType.Cleanup:
      return decodeCleanup(data)
    case CommandType.Expire:
      return decodeExpire(data)
    default:
      return fail('UNKNOWN_COMMAND', `unknown command type 0x${data[0]!.toString(16).padStart(2, '0')}`)
  }
}

export function decodeProduce(data: Uint8Array): Result<ProduceCommand, CommandDecodeError> {
  if (data.byteLength < PRODUCE_HEADER_BYTES) {
    return fail('MALFORMED_COMMAND', `produce command of ${data.byteLength} bytes, header needs ${PRODUCE_HEADER_BYTES}`)
  }
  if (data[0] !== CommandType.Produce) return fail('MALFORMED_COMMAND', `not a produce command (type ${data[0]})`)
  const v = viewOf(data)
  const flags = v.getUint8(1)
  if ((flags & ~PRODUCE_FLAGS_KNOWN) !== 0) return fail('MALFORMED_COMMAND', `unknown produce flags 0b${flags.toString(2)}`)
  const recordCount = v.getUint32(2, false)
  const producerId = getInt64(v, 6)
  const producerEpoch = v.getInt16(14, false)
  const baseSequence = v.getInt32(16, false)
  const maxTimestamp = getInt64(v, 20)
  if (producerId === null) return fail('MALFORMED_COMMAND', 'producer id is not a safe integer')
  if (maxTimestamp === null) return fail('MALFORMED_COMMAND', 'max timestamp is not a safe integer')
  const why = checkProduceFields(recordCount, producerId, producerEpoch, baseSequence)
  if (why !== null) return fail('MALFORMED_COMMAND', why)
  const single = (flags & ProduceFlag.SingleMessage) !== 0
  if (single && recordCount !== 1) return fail('MALFORMED_COMMAND', `produce_message with ${recordCount} records`)
  return ok({
    type: 'produce',
    kind: single ? 'produce_message' : 'produce_batch',
    atomic: (flags & ProduceFlag.Atomic) !== 0,
    recordCount,
    producerId,
    producerEpoch,
    baseSequence,
    maxTimestamp,
    batch: data.subarray(PRODUCE_HEADER_BYTES),
  })
}

export function decodeCleanup(data: Uint8Array): Result<CleanupCommand, CommandDecodeError> {
  if (data.byteLength !== CLEANUP_BYTES) return fail('MALFORMED_COMMAND', `cleanup command of ${data.byteLength} bytes, expected ${CLEANUP_BYTES}`)
  if (data[0] !== CommandType.Cleanup) return fail('MALFORMED_COMMAND', `not a cleanup command (type ${data[0]})`)
  const logStartOffset = getInt64(viewOf(data), 1)
  if (logStartOffset === null || logStartOffset < 0) return fail('MALFORMED_COMMAND', 'cleanup offset is negative or not a safe integer')
  return ok({ type: 'cleanup', logStartOffset })
}

export function decodeExpire(data: Uint8Array): Result<ExpireCommand, CommandDecodeError> {
  if (data.byteLength !== EXPIRE_BYTES) return fail('MALFORMED_COMMAND', `expire command of ${data.byteLength} bytes, expected ${EXPIRE_BYTES}`)
  if (data[0] !== CommandType.Expire) return fail('MALFORMED_COMMAND', `not an expire command (type ${data[0]})`)
  const idleBefore = getInt64(viewOf(data), 1)
  if (idleBefore === null) return fail('MALFORMED_COMMAND', 'expire time is not a safe integer')
  return ok({ type: 'expire', idleBefore })
}

/**
 * The RecordBatch inside a produce command, without a copy: what a fetch reads back from
 * the Raft entry that `locate` names. Its baseOffset field still holds what the client
 * sent (0): the reader sets it (see PartitionStateMachine's header).
 */
export function batchOf(data: Uint8Array): Uint8Array {
  assert(data.byteLength >= PRODUCE_HEADER_BYTES && data[0] === CommandType.Produce, 'batchOf: not a produce command')
  return data.subarray(PRODUCE_HEADER_BYTES)
}

/** Why these produce fields cannot be applied, or null. */
function checkProduceFields(recordCount: number, producerId: number, producerEpoch: number, baseSequence: number): string | null {
  if (!Number.isInteger(recordCount) || recordCount < 1 || recordCount > UINT32_MAX) return `record count ${recordCount}`
  if (!Number.isSafeInteger(producerId) || producerId < NO_PRODUCER_ID) return `producer id ${producerId}`
  if (!Number.isInteger(producerEpoch) || producerEpoch < -0x8000 || producerEpoch > INT16_MAX) return `producer epoch ${producerEpoch}`
  if (!Number.isInteger(baseSequence) || baseSequence < -0x8000_0000 || baseSequence > INT32_MAX) return `base sequence ${baseSequence}`
  // without a producer id, epoch and sequence mean nothing (KafkaJS sends epoch 0, Kafka -1);
  // an idempotent batch carries a real epoch and sequence: the checks do arithmetic on them
  if (producerId !== NO_PRODUCER_ID && (producerEpoch < 0 || baseSequence < 0)) {
    return `idempotent producer ${producerId} with epoch ${producerEpoch} and base sequence ${baseSequence}`
  }
  return null
}
