/**
 * Kafka's RecordBatch v2 (magic 2): the format records travel and are stored in
 * (DESIGN.md §3). The client encodes and decodes; the broker reads only the fixed header
 * and checks the CRC (checkBatch, on every produce), sets baseOffset at apply, and stores
 * and serves the bytes as sent. All integers are big-endian.
 *
 *   0 baseOffset int64 | 8 batchLength int32 (bytes after this field)
 *   12 partitionLeaderEpoch int32 | 16 magic int8 = 2 | 17 crc uint32
 *   21 attributes int16 | 23 lastOffsetDelta int32 | 27 baseTimestamp int64
 *   35 maxTimestamp int64 | 43 producerId int64 | 51 producerEpoch int16
 *   53 baseSequence int32 | 57 recordCount int32 | 61 records (one compressed block if codec ≠ 0)
 *
 *   then recordCount records, whose grammar is in record.ts.
 *
 * The CRC is CRC-32C (Castagnoli; Node's zlib.crc32 is the IEEE one) over attributes
 * through the end, so baseOffset and partitionLeaderEpoch can change without recomputing
 * it. Attributes: bits 0-2 codec, 3 timestamp type (1 LogAppendTime), 4 transactional,
 * 5 control.
 *
 * Rules this module enforces beyond the layout (codes are the DESIGN.md §5 table's):
 * - CORRUPT_MESSAGE: shorter than the header, truncated (batchLength past the end), a bad
 *   CRC, undecodable compression, any malformed record (truncated or overlong varint,
 *   negative length other than -1, a length past its record, a record whose fields do not
 *   fill its declared length, fewer or more records than recordCount). decodeMessagesInto
 *   checks only the records it returns, and the length prefixes of those it steps over.
 * - INVALID_RECORD: valid framing but not a batch raftmq accepts: bytes after the batch
 *   (Produce carries exactly one batch per partition), magic ≠ 2, codec 5..7, recordCount
 *   < 1 or above limits.produce.batchRecordsMax, lastOffsetDelta ≠ recordCount - 1, an
 *   int64 field outside the safe-integer range, a record whose offsetDelta is not its
 *   position (offsets stay dense: the batch takes baseOffset … baseOffset + count - 1).
 * - BATCH_TOO_LARGE: a batch over limits.produce.batchBytesMax (checkBatch), or records
 *   that decompress past the decode limit (limits.produce.batchDecompressedBytesMax). Both
 *   are properties of the whole batch, so they take errors.ts's batch code;
 *   MESSAGE_TOO_LARGE stays for one record over limits.produce.messageBytesMax, which the
 *   caller judges from recordSizes.
 * - UNSUPPORTED_COMPRESSION: snappy, when the records must be read. readBatchHeader and
 *   checkBatch accept it: they never look inside.
 * checkBatch checks the framing, then the CRC, then the fields the CRC covers, so a bit
 * flipped in transit reads as CORRUPT_MESSAGE and a well-formed but unacceptable batch as
 * INVALID_RECORD.
 *
 * Offsets, timestamps and producer ids are JS numbers, exact as safe integers. The hot
 * paths (readBatchHeader, checkBatch, verifyBatchCrc, setBaseOffset) copy nothing and
 * allocate nothing but their result (and one subarray view for the native CRC call).
 * Decoded keys, values and header values are views into the batch (or into its
 * decompressed records), not copies: keeping one keeps the batch alive.
 *
 * Two decoders: decodeRecordBatch gives the header and every record (tests, reframe);
 * decodeMessagesInto is the consumer's, decoding only the records a fetch returns,
 * straight into the message objects it hands out (one allocation per message besides the
 * views), because reading back is bound by allocation and garbage collection.
 *
 * Imports base, @node-rs/crc32, ./compression, ./record and ./varint.
 */
import { crc32c } from '@node-rs/crc32'
import { assert, fail, limits, ok } from '../base/index.js'
import type { Failure, Result } from '../base/index.js'
import { compress, compressionCodecs, compressionOfCodec, decompress } from './compression.js'
import type { Compression } from './compression.js'
import { RECORD_BODY_BYTES_MIN, prepareRecord, readMessages, recordBodyBytes, walkRecords, writeRecords } from './record.js'
import type { ByteView, PreparedRecord, RecordInput, RecordMessage, RecordSpan } from './record.js'
import { readInt16, readInt32, readInt64, readUint32, varintBytes, writeInt16, writeInt32, writeInt64 } from './varint.js'

export { NO_HEADERS } from './record.js'
export type { RecordInput, RecordMessage } from './record.js'

export const RECORD_BATCH_MAGIC = 2
/** The fixed header; records start here. */
export const BATCH_HEADER_BYTES = 61

const AT_BASE_OFFSET = 0
const AT_BATCH_LENGTH = 8
const AT_PARTITION_LEADER_EPOCH = 12
const AT_MAGIC = 16
const AT_CRC = 17
/** The CRC covers from here to the end. */
const AT_ATTRIBUTES = 21
const AT_LAST_OFFSET_DELTA = 23
const AT_BASE_TIMESTAMP = 27
const AT_MAX_TIMESTAMP = 35
const AT_PRODUCER_ID = 43
const AT_PRODUCER_EPOCH = 51
const AT_BASE_SEQUENCE = 53
const AT_RECORD_COUNT = 57
/** baseOffset and batchLength: the bytes batchLength does not count. */
const LOG_OVERHEAD_BYTES = 12

const ATTR_CODEC_MASK = 0x07
const ATTR_LOG_APPEND_TIME = 0x08
const ATTR_TRANSACTIONAL = 0x10
const ATTR_CONTROL = 0x20

export type BatchErrorCode = 'CORRUPT_MESSAGE' | 'INVALID_RECORD' | 'UNSUPPORTED_COMPRESSION' | 'BATCH_TOO_LARGE'
type HeaderErrorCode = 'CORRUPT_MESSAGE' | 'INVALID_RECORD'
type Rejected<C extends string> = { readonly ok: false; readonly error: Failure<C> }

export interface BatchOptions {
  /** Default 'none'. 'snappy' is refused (see compression.ts). */
  compression?: Compression
  /** Default -1 (not idempotent). */
  producerId?: number
  /** Default -1. */
  producerEpoch?: number
  /** Sequence of the first record; record i carries baseSequence + i. Default -1. */
  baseSequence?: number
  /** Default: the first record's timestamp (Kafka's "first timestamp"), else now. */
  baseTimestamp?: number
}

export interface BatchHeader {
  readonly baseOffset: number
  readonly batchLength: number
  readonly partitionLeaderEpoch: number
  readonly magic: number
  readonly crc: number
  /** The raw int16 attributes, as an unsigned 16-bit value. */
  readonly attributes: number
  readonly compression: Compression
  readonly lastOffsetDelta: number
  readonly baseTimestamp: number
  readonly maxTimestamp: number
  readonly producerId: number
  readonly producerEpoch: number
  readonly baseSequence: number
  readonly recordCount: number
  readonly transactional: boolean
  readonly control: boolean
}

export interface DecodedHeader {
  key: string
  value: Uint8Array | null
}

export interface DecodedRecord {
  offset: number
  timestamp: number
  key: Uint8Array | null
  value: Uint8Array | null
  headers: DecodedHeader[]
}

export interface DecodedBatch {
  header: BatchHeader
  records: DecodedRecord[]
}

export interface DecodeOptions {
  /** Bound on the records section once decompressed. Default limits.produce.batchDecompressedBytesMax. */
  maxBytes?: number
  /** Check the CRC first. Default true; pass false only for bytes checkBatch already passed. */
  verifyCrc?: boolean
  /** decodeMessagesInto: how keys and values are viewed (default plain Uint8Array views). */
  view?: ByteView
}

export interface CheckOptions {
  /** Default limits.produce.batchBytesMax. */
  batchBytesMax?: number
}

// ---------------------------------------------------------------------------------------
// Header and CRC: the broker's hot path.

/** The fixed header of one whole batch, validated as the module header says; the CRC is not checked. */
export function readBatchHeader(bytes: Uint8Array): Result<BatchHeader, HeaderErrorCode> {
  return checkFraming(bytes) ?? checkFields(bytes) ?? ok(headerOf(bytes))
}

/** True when the stored CRC matches the CRC-32C of attributes … end. Requires a full header. */
export function verifyBatchCrc(bytes: Uint8Array): boolean {
  if (bytes.length < BATCH_HEADER_BYTES) return false
  return crc32c(bytes.subarray(AT_ATTRIBUTES)) === readUint32(bytes, AT_CRC)
}

/**
 * What the broker runs on every produce: size (BATCH_TOO_LARGE past `batchBytesMax`),
 * framing, CRC (CORRUPT_MESSAGE), then the header fields.
 */
export function checkBatch(bytes: Uint8Array, opts: CheckOptions = {}): Result<BatchHeader, HeaderErrorCode | 'BATCH_TOO_LARGE'> {
  const batchBytesMax = opts.batchBytesMax ?? limits.produce.batchBytesMax
  if (bytes.length > batchBytesMax) {
    return fail('BATCH_TOO_LARGE', `a record batch of ${bytes.length} bytes exceeds the limit of ${batchBytesMax} bytes`)
  }
  return checkFraming(bytes) ?? checkCrc(bytes) ?? checkFields(bytes) ?? ok(headerOf(bytes))
}

function checkFraming(bytes: Uint8Array): Rejected<HeaderErrorCode> | undefined {
  if (bytes.length < BATCH_HEADER_BYTES) {
    return fail('CORRUPT_MESSAGE', `record batch of ${bytes.length} bytes is shorter than its ${BATCH_HEADER_BYTES}-byte header`)
  }
  const magic = bytes[AT_MAGIC]!
  if (magic !== RECORD_BATCH_MAGIC) return fail('INVALID_RECORD', `record batch magic ${magic}: only magic 2 is accepted`)
  const framedBytes = readInt32(bytes, AT_BATCH_LENGTH) + LOG_OVERHEAD_BYTES
  if (framedBytes > bytes.length || framedBytes < BATCH_HEADER_BYTES) {
    return fail('CORRUPT_MESSAGE', `record batch declares ${framedBytes} bytes but ${bytes.length} are present`)
  }
  if (framedBytes < bytes.length) {
    return fail('INVALID_RECORD', `${bytes.length - framedBytes} bytes follow the record batch: exactly one batch is expected`)
  }
  return undefined
}

function checkCrc(bytes: Uint8Array): Rejected<'CORRUPT_MESSAGE'> | undefined {
  return verifyBatchCrc(bytes) ? undefined : fail('CORRUPT_MESSAGE', 'record batch CRC-32C mismatch')
}

/** The checks on fields inside the CRC's scope (and baseOffset's range). Requires checkFraming. */
function checkFields(bytes: Uint8Array): Rejected<HeaderErrorCode> | undefined {
  const codec = bytes[AT_ATTRIBUTES + 1]! & ATTR_CODEC_MASK
  if (compressionOfCodec(codec) === null) return fail('INVALID_RECORD', `unknown compression codec ${codec}`)
  const count = readInt32(bytes, AT_RECORD_COUNT)
  const recordsMax = limits.produce.batchRecordsMax
  if (count < 1 || count > recordsMax) return fail('INVALID_RECORD', `record count ${count} is outside [1, ${recordsMax}]`)
  const lastOffsetDelta = readInt32(bytes, AT_LAST_OFFSET_DELTA)
  if (lastOffsetDelta !== count - 1) {
    return fail('INVALID_RECORD', `lastOffsetDelta ${lastOffsetDelta} does not match ${count} records`)
  }
  return checkSafe(bytes, AT_BASE_OFFSET) ?? checkSafe(bytes, AT_BASE_TIMESTAMP) ?? checkSafe(bytes, AT_MAX_TIMESTAMP) ?? checkSafe(bytes, AT_PRODUCER_ID)
}

function checkSafe(bytes: Uint8Array, at: number): Rejected<'INVALID_RECORD'> | undefined {
  if (Number.isSafeInteger(readInt64(bytes, at))) return undefined
  return fail('INVALID_RECORD', `the int64 at byte ${at} is outside the safe-integer range`)
}

function headerOf(bytes: Uint8Array): BatchHeader {
  const attributes = readInt16(bytes, AT_ATTRIBUTES) & 0xffff
  return {
    baseOffset: readInt64(bytes, AT_BASE_OFFSET),
    batchLength: readInt32(bytes, AT_BATCH_LENGTH),
    partitionLeaderEpoch: readInt32(bytes, AT_PARTITION_LEADER_EPOCH),
    magic: bytes[AT_MAGIC]!,
    crc: readUint32(bytes, AT_CRC),
    attributes,
    compression: compressionOfCodec(attributes & ATTR_CODEC_MASK)!,
    lastOffsetDelta: readInt32(bytes, AT_LAST_OFFSET_DELTA),
    baseTimestamp: readInt64(bytes, AT_BASE_TIMESTAMP),
    maxTimestamp: readInt64(bytes, AT_MAX_TIMESTAMP),
    producerId: readInt64(bytes, AT_PRODUCER_ID),
    producerEpoch: readInt16(bytes, AT_PRODUCER_EPOCH),
    baseSequence: readInt32(bytes, AT_BASE_SEQUENCE),
    recordCount: readInt32(bytes, AT_RECORD_COUNT),
    transactional: (attributes & ATTR_TRANSACTIONAL) !== 0,
    control: (attributes & ATTR_CONTROL) !== 0,
  }
}

// ---------------------------------------------------------------------------------------
// baseOffset: outside the CRC, so the broker sets it at apply without recomputing.

/** Writes `offset` as the batch's baseOffset, in place. The CRC stays valid. */
export function setBaseOffset(bytes: Uint8Array, offset: number): void {
  assert(Number.isSafeInteger(offset) && offset >= 0, () => `setBaseOffset: bad offset ${offset}`)
  assert(bytes.length >= BATCH_HEADER_BYTES, 'setBaseOffset: not a record batch')
  writeInt64(bytes, AT_BASE_OFFSET, offset)
}

/** A copy of the batch with `offset` as its baseOffset. */
export function withBaseOffset(bytes: Uint8Array, offset: number): Uint8Array {
  const copy = new Uint8Array(bytes)
  setBaseOffset(copy, offset)
  return copy
}

// ---------------------------------------------------------------------------------------
// Encoding (client side, and reframe).

/** The header fields the encoder writes; the rest follow from the records. */
interface BatchFields {
  readonly baseOffset: number
  readonly partitionLeaderEpoch: number
  readonly attributes: number
  readonly baseTimestamp: number
  readonly maxTimestamp: number
  readonly producerId: number
  readonly producerEpoch: number
  readonly baseSequence: number
}

const utf8Decoder = new TextDecoder()

/**
 * A batch of `records` (at least one, at most limits.produce.batchRecordsMax): baseOffset
 * 0, partitionLeaderEpoch -1, CreateTime timestamps, exact-size output. Bad arguments are
 * bugs in the caller and fail assertions.
 */
export function encodeRecordBatch(records: readonly RecordInput[], opts: BatchOptions = {}): Uint8Array {
  const count = records.length
  assert(count >= 1 && count <= limits.produce.batchRecordsMax, () => `encodeRecordBatch: ${count} records`)
  let now: number | undefined
  const timestamps = records.map((r) => r.timestamp ?? (now ??= Date.now()))
  const baseTimestamp = opts.baseTimestamp ?? timestamps[0]!
  const compression = opts.compression ?? 'none'
  const fields: BatchFields = {
    baseOffset: 0,
    partitionLeaderEpoch: -1,
    attributes: compressionCodecs[compression],
    baseTimestamp,
    maxTimestamp: maxOf(timestamps),
    producerId: opts.producerId ?? -1,
    producerEpoch: opts.producerEpoch ?? -1,
    baseSequence: opts.baseSequence ?? -1,
  }
  checkFieldArgs(fields)
  const prepared = records.map((r, i) => prepareRecord(r, timestamps[i]! - baseTimestamp))
  return buildBatch(prepared, fields, compression)
}

/** Math.max without spreading: 100k arguments can overflow the stack. */
function maxOf(ns: readonly number[]): number {
  let max = -Infinity
  for (const n of ns) if (n > max) max = n
  return max
}

function checkFieldArgs(f: BatchFields): void {
  for (const [name, n] of Object.entries(f)) assert(Number.isSafeInteger(n), () => `record batch: ${name} ${n} is not a safe integer`)
  assert(f.producerEpoch >= -1 && f.producerEpoch <= 0x7fff, () => `record batch: producerEpoch ${f.producerEpoch}`)
  assert(f.baseSequence >= -1 && f.baseSequence <= 0x7fffffff, () => `record batch: baseSequence ${f.baseSequence}`)
}

function buildBatch(records: readonly PreparedRecord[], fields: BatchFields, compression: Compression): Uint8Array {
  const sizes = records.map((r, i) => recordBodyBytes(r, i))
  const recordsBytes = sizes.reduce((sum, s) => sum + varintBytes(s) + s, 0)
  let out: Uint8Array
  if (compression === 'none') {
    // the common case writes straight into the batch: one allocation, no copy
    out = new Uint8Array(BATCH_HEADER_BYTES + recordsBytes)
    const end = writeRecords(out, BATCH_HEADER_BYTES, records, sizes)
    assert(end === out.length, 'record batch: size mismatch')
  } else {
    const plain = new Uint8Array(recordsBytes)
    assert(writeRecords(plain, 0, records, sizes) === plain.length, 'record batch: size mismatch')
    const packed = compress(compression, plain)
    out = new Uint8Array(BATCH_HEADER_BYTES + packed.length)
    out.set(packed, BATCH_HEADER_BYTES)
  }
  assert(out.length - LOG_OVERHEAD_BYTES <= 0x7fffffff, 'record batch: over 2 GiB')
  writeHeader(out, fields, records.length)
  return out
}

function writeHeader(out: Uint8Array, f: BatchFields, count: number): void {
  writeInt64(out, AT_BASE_OFFSET, f.baseOffset)
  writeInt32(out, AT_BATCH_LENGTH, out.length - LOG_OVERHEAD_BYTES)
  writeInt32(out, AT_PARTITION_LEADER_EPOCH, f.partitionLeaderEpoch)
  out[AT_MAGIC] = RECORD_BATCH_MAGIC
  writeInt16(out, AT_ATTRIBUTES, f.attributes)
  writeInt32(out, AT_LAST_OFFSET_DELTA, count - 1)
  writeInt64(out, AT_BASE_TIMESTAMP, f.baseTimestamp)
  writeInt64(out, AT_MAX_TIMESTAMP, f.maxTimestamp)
  writeInt64(out, AT_PRODUCER_ID, f.producerId)
  writeInt16(out, AT_PRODUCER_EPOCH, f.producerEpoch)
  writeInt32(out, AT_BASE_SEQUENCE, f.baseSequence)
  writeInt32(out, AT_RECORD_COUNT, count)
  writeInt32(out, AT_CRC, crc32c(out.subarray(AT_ATTRIBUTES)))
}

// ---------------------------------------------------------------------------------------
// Decoding (client side, and the broker's off-thread checks).

const NO_SIZE_LIMIT: CheckOptions = { batchBytesMax: Infinity }

/** The batch's header, its CRC checked unless opts.verifyCrc is false. */
function openHeader(bytes: Uint8Array, opts: DecodeOptions): Result<BatchHeader, BatchErrorCode> {
  return opts.verifyCrc === false ? readBatchHeader(bytes) : checkBatch(bytes, NO_SIZE_LIMIT)
}

/** The batch's header, CRC (unless opts.verifyCrc is false) and records section, decompressed. */
function openRecords(bytes: Uint8Array, opts: DecodeOptions): Result<{ header: BatchHeader; data: Uint8Array }, BatchErrorCode> {
  const checked = openHeader(bytes, opts)
  if (!checked.ok) return checked
  const data = recordsOf(bytes, checked.value, opts)
  return data.ok ? ok({ header: checked.value, data: data.value }) : data
}

/** The records section of a batch whose header is read, decompressed and checked against its record count. */
function recordsOf(bytes: Uint8Array, header: BatchHeader, opts: DecodeOptions): Result<Uint8Array, BatchErrorCode> {
  const maxBytes = opts.maxBytes ?? limits.produce.batchDecompressedBytesMax
  const data = decompress(header.compression, bytes.subarray(BATCH_HEADER_BYTES), maxBytes)
  if (!data.ok) {
    if (data.error.code !== 'MESSAGE_TOO_LARGE') return fail(data.error.code, data.error.message)
    return fail('BATCH_TOO_LARGE', `a record batch's records exceed the limit of ${maxBytes} bytes once decompressed`)
  }
  if (data.value.length < header.recordCount * (RECORD_BODY_BYTES_MIN + 1)) {
    return fail('CORRUPT_MESSAGE', `${data.value.length} bytes cannot hold ${header.recordCount} records`)
  }
  return data
}

/** A view of `length` bytes at `at`, or null for -1. Plain Uint8Array even when `data` is a Buffer. */
function viewOf(data: Uint8Array, at: number, length: number): Uint8Array | null {
  return length < 0 ? null : new Uint8Array(data.buffer, data.byteOffset + at, length)
}

function decodedOf(data: Uint8Array, span: RecordSpan, header: BatchHeader, index: number): DecodedRecord {
  const headers: DecodedHeader[] = []
  const hs = span.headerSpans
  for (let h = 0; h < hs.length; h += 4) {
    headers.push({ key: utf8Decoder.decode(viewOf(data, hs[h]!, hs[h + 1]!)!), value: viewOf(data, hs[h + 2]!, hs[h + 3]!) })
  }
  return {
    offset: header.baseOffset + index,
    timestamp: header.baseTimestamp + span.timestampDelta,
    key: viewOf(data, span.keyAt, span.keyLength),
    value: viewOf(data, span.valueAt, span.valueLength),
    headers,
  }
}

/**
 * The batch's header and records: offset = baseOffset + offsetDelta, timestamp =
 * baseTimestamp + timestampDelta (CreateTime; with LogAppendTime Kafka readers use
 * maxTimestamp, and so does this). Checks the CRC unless opts.verifyCrc is false.
 */
export function decodeRecordBatch(bytes: Uint8Array, opts: DecodeOptions = {}): Result<DecodedBatch, BatchErrorCode> {
  const opened = openRecords(bytes, opts)
  if (!opened.ok) return opened
  const { header, data } = opened.value
  const records: DecodedRecord[] = []
  const bad = walkRecords(data, header.recordCount, (span, i) => records.push(decodedOf(data, span, header, i)))
  if (bad) return bad
  const logAppendTime = (header.attributes & ATTR_LOG_APPEND_TIME) !== 0
  if (logAppendTime) for (const r of records) r.timestamp = header.maxTimestamp
  for (const r of records) {
    if (!Number.isSafeInteger(r.timestamp)) return fail('INVALID_RECORD', `record timestamp ${r.timestamp} is outside the safe-integer range`)
  }
  return ok({ header, records })
}

/**
 * The client's read path: appends to `out` the batch's records at offsets `fromOffset`
 * and after, at most `max` of them, each as one message (offset, key, value, headers,
 * timestamp: decodeRecordBatch's meanings, with the headers as an object) and answers how
 * many it appended. Keys, values and header values are views into `bytes` (or into its
 * decompressed records); records without headers share NO_HEADERS.
 *
 * It does only the work the answer needs: the records before `fromOffset` are stepped over
 * by their length prefix without being parsed, decoding stops after `max` messages, and a
 * batch with nothing wanted is not decompressed. What it skips is still covered by the
 * CRC (checked unless opts.verifyCrc is false), so damage anywhere in the batch is
 * CORRUPT_MESSAGE; only the record-level checks of walkRecords are left out for the
 * records it does not return. Asked for the whole batch, it accepts exactly what
 * decodeRecordBatch accepts. On failure `out` is left as it was.
 */
export function decodeMessagesInto(
  bytes: Uint8Array,
  fromOffset: number,
  max: number,
  out: RecordMessage[],
  opts: DecodeOptions = {},
): Result<number, BatchErrorCode> {
  assert(Number.isSafeInteger(fromOffset) && fromOffset >= 0 && (Number.isSafeInteger(max) || max === Infinity) && max >= 0, 'decodeMessagesInto: bad fromOffset or max')
  const checked = openHeader(bytes, opts)
  if (!checked.ok) return checked
  const header = checked.value
  const count = header.recordCount
  const first = Math.min(count, Math.max(0, fromOffset - header.baseOffset))
  const stop = Math.min(count, first + max)
  if (first === stop) return ok(0)
  const data = recordsOf(bytes, header, opts)
  if (!data.ok) return data
  const appendTime = (header.attributes & ATTR_LOG_APPEND_TIME) !== 0 ? header.maxTimestamp : null
  const start = out.length
  const bad = readMessages(data.value, count, first, stop, { baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp, appendTime }, out, opts.view)
  if (bad === undefined) return ok(out.length - start)
  out.length = start
  return bad
}

/**
 * Each record's size before compression: its length field, i.e. key, value and headers
 * plus their few bytes of varint framing. This is what limits.produce.messageBytesMax
 * bounds; counting the framing means a record of a million empty headers is not "0 bytes".
 */
export function recordSizes(bytes: Uint8Array, opts: DecodeOptions = {}): Result<number[], BatchErrorCode> {
  const opened = openRecords(bytes, opts)
  if (!opened.ok) return opened
  const sizes: number[] = []
  const bad = walkRecords(opened.value.data, opened.value.header.recordCount, (span) => sizes.push(span.bodyBytes))
  return bad ?? ok(sizes)
}

/**
 * A new batch holding only the records at positions `keep` (strictly increasing, at
 * least one), renumbered 0 … keep.length - 1, with the same compression, attributes,
 * producer fields, baseOffset, partitionLeaderEpoch and baseTimestamp, and a fresh CRC.
 * Each record keeps its timestamp. The broker uses it when a batch mixes good and
 * oversized records and `atomic` is off.
 *
 * The result's sequence range (baseSequence … baseSequence + keep.length - 1) is shorter
 * than the original's: idempotence must remember the original batch's range, which is
 * what a retry of it will carry. Control batches are refused (INVALID_RECORD).
 */
export function reframe(bytes: Uint8Array, keep: readonly number[], opts: DecodeOptions = {}): Result<Uint8Array, BatchErrorCode> {
  const decoded = decodeRecordBatch(bytes, opts)
  if (!decoded.ok) return decoded
  const { header, records } = decoded.value
  assert(keep.length >= 1, 'reframe: keep no records? reject the batch instead')
  keep.forEach((k, i) => assert(Number.isInteger(k) && k >= 0 && k < records.length && (i === 0 || k > keep[i - 1]!), () => `reframe: bad position ${k}`))
  if (header.control) return fail('INVALID_RECORD', 'control batches cannot be reframed')
  const kept = keep.map((k) => records[k]!)
  const logAppendTime = (header.attributes & ATTR_LOG_APPEND_TIME) !== 0
  const fields: BatchFields = {
    ...header,
    maxTimestamp: logAppendTime ? header.maxTimestamp : maxOf(kept.map((r) => r.timestamp)),
  }
  const prepared = kept.map((r) => prepareRecord(r, r.timestamp - header.baseTimestamp))
  return ok(buildBatch(prepared, fields, header.compression))
}
