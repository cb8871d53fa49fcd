/**
 * The commands a partition's Raft entries carry, and their binary encoding.
 *
 * Wire grammar, command format 2 (all integers big-endian; byte 0 is the command type):
 *
 *   produce  [0x04][flags u8][RecordBatch v2 bytes …]
 *            flags: bit 0 atomic; other bits must be 0.
 *   cleanup  [0x02][logStartOffset i64]
 *   expire   [0x03][idleBefore i64]
 *            forgets the idempotence state of every producer whose last batch's
 *            maxTimestamp is below idleBefore (ms); the leader proposes it, as it does
 *            cleanup, because apply has no clock.
 *
 * A produce command repeats nothing of the batch it carries: record count, producer id,
 * epoch, base sequence and max timestamp live in the batch header alone, and decoding
 * reads them from there (./batch-header, the one reader of them on this side), so a
 * batch the leader re-framed can never be applied with the facts of the batch it came
 * from. What is the command's own stays in it: `atomic`, what the request asked for (the
 * leader has already applied it to per-record errors; apply stores a batch whole either
 * way). DESIGN.md §3's `produce_message` and `produce_batch` are this one command: a
 * single message is a batch whose header says one record.
 *
 * Format 1 (type 0x01) is still read, never written: [0x01][flags u8: bit 0 atomic, bit 1
 * single message][recordCount u32][producerId i64][producerEpoch i16][baseSequence i32]
 * [maxTimestamp i64][RecordBatch v2 bytes …]. Raft entries outlive a build — a restart
 * re-applies the WAL and the partition store's unapplied entries — and refusing one
 * would drop an acknowledged batch (apply answers a command it cannot decode `invalid`
 * and stores nothing). Its 26 bytes of copies are skipped: the facts are read from its
 * batch, as in format 2. Every build that wrote format 1 into a store this build can open
 * (store format 2) copied them from that very batch, so both readings agree; where they
 * did not, the batch is what was stored and what a consumer reads.
 *
 * A fixed binary layout rather than msgpackr (which DESIGN.md §3 suggested): the produce
 * path is the hot one, the batch follows a 2-byte prefix with no framing, and
 * src/partition stays free of npm imports. Encoding copies the batch once (into the entry)
 * and parses nothing: the leader has checked the header where the batch entered
 * (checkBatch) and asks `batchFactsProblem` of the header it parsed there.
 *
 * Decoding never reads out of bounds and never throws: a malformed command (a bug in the
 * leader, or a command type from a newer version) is a coded failure, so the state
 * machine can answer it deterministically on every replica instead of wedging the group
 * on an entry that can never be removed. Decoding checks structure and value domains only
 * (sizes, flags, the batch header's framing, safe integers, ids and sequences in range);
 * limits such as `limits.produce.batchRecordsMax` are enforced by the leader where data
 * enters, never at apply, so that a change of limits between versions cannot make
 * replicas disagree.
 *
 * Imports base, ./bytes and ./batch-header.
 */
import { assert, fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { BATCH_HEADER_BYTES, readBatchFacts } from './batch-header.js'
import type { BatchFacts } from './batch-header.js'
import { ByteWriter, getInt64, viewOf } from './bytes.js'

export const CommandType = {
  /** Format 1's produce: read, never written (see the header). */
  ProduceV1: 0x01,
  Cleanup: 0x02,
  Expire: 0x03,
  Produce: 0x04,
} as const
export type CommandType = (typeof CommandType)[keyof typeof CommandType]

export const ProduceFlag = {
  Atomic: 0b01,
} as const
const PRODUCE_FLAGS_KNOWN = ProduceFlag.Atomic
/** Format 1 also had bit 1, "single message", which nothing read. */
const PRODUCE_V1_FLAGS_KNOWN = 0b11

/** Bytes before the RecordBatch in a produce command. */
export const PRODUCE_PREFIX_BYTES = 2
/** Bytes before the RecordBatch in a format 1 produce command. */
const PRODUCE_V1_PREFIX_BYTES = 28
/** Bytes of a cleanup command. */
export const CLEANUP_BYTES = 9
/** Bytes of an expire command. */
export const EXPIRE_BYTES = 9

/** What a produce command says beside its batch. */
export interface ProduceOptions {
  /** The request asked for all-or-nothing; the leader has already applied it to per-record errors. */
  readonly atomic: boolean
}

export interface ProduceCommand extends ProduceOptions {
  readonly type: 'produce'
  /** The RecordBatch, a view into the command's bytes. */
  readonly batch: Uint8Array
  /** What `batch`'s header says, read from it at decode (the command holds no copy). */
  readonly header: BatchFacts
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

/**
 * A produce command for `batch`, a RecordBatch whose header the caller has checked
 * (checkBatch, then `batchFactsProblem`); a header apply cannot read is answered
 * `invalid` by every replica, and nothing is stored.
 */
export function encodeProduce(opts: ProduceOptions, batch: Uint8Array): Uint8Array {
  assert(batch.byteLength >= BATCH_HEADER_BYTES, () => `encodeProduce: ${batch.byteLength} bytes are no record batch`)
  // the one copy of the batch on the produce path: into the entry the leader proposes
  const w = new ByteWriter(PRODUCE_PREFIX_BYTES + batch.byteLength)
  w.u8(CommandType.Produce)
  w.u8(opts.atomic ? ProduceFlag.Atomic : 0)
  w.raw(batch)
  return w.finish()
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
    case CommandType.ProduceV1:
      return decodeProduce(data)
    case CommandType.Cleanup:
      return decodeCleanup(data)
    case CommandType.Expire:
      return decodeExpire(data)
    default:
      return fail('UNKNOWN_COMMAND', `unknown command type 0x${data[0]!.toString(16).padStart(2, '0')}`)
  }
}

/** A produce command of either format; the header facts come from the batch (see the module header). */
export function decodeProduce(data: Uint8Array): Result<ProduceCommand, CommandDecodeError> {
  const v1 = data[0] === CommandType.ProduceV1
  if (!v1 && data[0] !== CommandType.Produce) return fail('MALFORMED_COMMAND', `not a produce command (type ${data[0]})`)
  const prefix = v1 ? PRODUCE_V1_PREFIX_BYTES : PRODUCE_PREFIX_BYTES
  if (data.byteLength < prefix + BATCH_HEADER_BYTES) {
    return fail('MALFORMED_COMMAND', `produce command of ${data.byteLength} bytes, its prefix and a batch header need ${prefix + BATCH_HEADER_BYTES}`)
  }
  const flags = data[1]!
  if ((flags & ~(v1 ? PRODUCE_V1_FLAGS_KNOWN : PRODUCE_FLAGS_KNOWN)) !== 0) return fail('MALFORMED_COMMAND', `unknown produce flags 0b${flags.toString(2)}`)
  const batch = data.subarray(prefix)
  const header = readBatchFacts(batch)
  if (!header.ok) return fail('MALFORMED_COMMAND', header.error.message)
  return ok({ type: 'produce', atomic: (flags & ProduceFlag.Atomic) !== 0, batch, header: header.value })
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
 * The RecordBatch inside a produce command (either format), without a copy: what apply
 * stamps with its baseOffset and stores. Its baseOffset field still holds what the client
 * sent (0) until then.
 */
export function batchOf(data: Uint8Array): Uint8Array {
  const prefix = data[0] === CommandType.Produce ? PRODUCE_PREFIX_BYTES : data[0] === CommandType.ProduceV1 ? PRODUCE_V1_PREFIX_BYTES : -1
  assert(prefix > 0 && data.byteLength >= prefix + BATCH_HEADER_BYTES, 'batchOf: not a produce command')
  return data.subarray(prefix)
}
