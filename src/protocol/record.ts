/**
 * One record of a RecordBatch v2, the grammar inside the batch's records section (after
 * decompression). Private to src/protocol: record-batch.ts builds batches from prepared
 * records, checks and reframes them through walkRecords (the broker), and decodes them
 * into consumed messages through readMessages (the client).
 *
 *   Record = length varint | attributes int8 (unused) | timestampDelta varlong
 *            | offsetDelta varint | keyLength varint (-1 null) | key
 *            | valueLength varint (-1 null) | value | headerCount varint
 *            | headerCount × (keyLength varint | utf8 key | valueLength varint (-1 null) | value)
 *
 * Parsing follows Kafka's DefaultRecord: a record's fields must fill its length exactly;
 * negative lengths other than -1, negative header counts and null header keys are corrupt.
 * raftmq adds one rule: record i's offsetDelta must be i (INVALID_RECORD otherwise), so a
 * batch of n records takes exactly the offsets baseOffset … baseOffset + n - 1.
 *
 * Imports base and ./varint.
 */
import { assert, fail } from '../base/index.js'
import type { Failure } from '../base/index.js'
import { ByteReader, varintBytes, varlongBytes, writeVarint, writeVarlong } from './varint.js'

/** attributes, timestampDelta, offsetDelta, keyLength, valueLength, headerCount: a byte each at least. */
export const RECORD_BODY_BYTES_MIN = 6

type Rejected = { readonly ok: false; readonly error: Failure<'CORRUPT_MESSAGE' | 'INVALID_RECORD'> }

const utf8 = new TextEncoder()

/** A record as a producer gives it; strings are encoded as UTF-8. */
export interface RecordInput {
  key?: Uint8Array | string | null
  value: Uint8Array | string | null
  headers?: { key: string; value: Uint8Array | string | null }[]
  /** Milliseconds since the epoch; defaults to the encoder's clock. */
  timestamp?: number
}

/** One record, its strings encoded, its size known. */
export interface PreparedRecord {
  readonly timestampDelta: number
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  readonly headers: readonly { readonly key: Uint8Array; readonly value: Uint8Array | null }[]
}

function bytesOf(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? utf8.encode(v) : v
}

function lengthPrefixedBytes(v: Uint8Array | null): number {
  return v === null ? varintBytes(-1) : varintBytes(v.length) + v.length
}

export function prepareRecord(r: RecordInput, timestampDelta: number): PreparedRecord {
  assert(Number.isSafeInteger(timestampDelta), () => `record batch: timestamp delta ${timestampDelta}`)
  const key = r.key == null ? null : bytesOf(r.key)
  const value = r.value == null ? null : bytesOf(r.value)
  const headers = (r.headers ?? []).map((h) => ({ key: utf8.encode(h.key), value: h.value === null ? null : bytesOf(h.value) }))
  return { timestampDelta, key, value, headers }
}

/** The record's length field, with `offsetDelta` its position in the batch. */
export function recordBodyBytes(r: PreparedRecord, offsetDelta: number): number {
  let size = 1 + varlongBytes(r.timestampDelta) + varintBytes(offsetDelta)
  size += lengthPrefixedBytes(r.key) + lengthPrefixedBytes(r.value) + varintBytes(r.headers.length)
  for (const h of r.headers) size += lengthPrefixedBytes(h.key) + lengthPrefixedBytes(h.value)
  assert(size <= 0x7fffffff, 'record batch: a record over 2 GiB')
  return size
}

function writeLengthPrefixed(out: Uint8Array, pos: number, v: Uint8Array | null): number {
  if (v === null) return writeVarint(out, pos, -1)
  pos = writeVarint(out, pos, v.length)
  out.set(v, pos)
  return pos + v.length
}

function writeRecord(out: Uint8Array, pos: number, r: PreparedRecord, offsetDelta: number, bodyBytes: number): number {
  pos = writeVarint(out, pos, bodyBytes)
  out[pos++] = 0 // record attributes: unused
  pos = writeVarlong(out, pos, r.timestampDelta)
  pos = writeVarint(out, pos, offsetDelta)
  pos = writeLengthPrefixed(out, pos, r.key)
  pos = writeLengthPrefixed(out, pos, r.value)
  pos = writeVarint(out, pos, r.headers.length)
  for (const h of r.headers) {
    pos = writeLengthPrefixed(out, pos, h.key)
    pos = writeLengthPrefixed(out, pos, h.value)
  }
  return pos
}

/** Writes the records into `out` from `pos`; `sizes` holds each body size. */
export function writeRecords(out: Uint8Array, pos: number, records: readonly PreparedRecord[], sizes: readonly number[]): number {
  for (let i = 0; i < records.length; i++) pos = writeRecord(out, pos, records[i]!, i, sizes[i]!)
  return pos
}

/** Where one parsed record's fields lie in the records section; reused from record to record. */
export interface RecordSpan {
  bodyBytes: number
  timestampDelta: number
  keyAt: number
  keyLength: number
  valueAt: number
  valueLength: number
  /** keyAt, keyLength, valueAt, valueLength per header. */
  readonly headerSpans: number[]
}

/**
 * Walks `count` records in `data`, validating each fully, and calls `visit` with each
 * one's span (the same object every time). Never throws or reads out of bounds.
 */
export function walkRecords(data: Uint8Array, count: number, visit: (span: RecordSpan, index: number) => void): Rejected | undefined {
  const r = new ByteReader(data)
  const span = newSpan()
  for (let i = 0; i < count; i++) {
    const bad = parseRecord(r, span, i)
    if (bad !== undefined) return bad
    visit(span, i)
  }
  if (r.pos !== data.length) return fail('CORRUPT_MESSAGE', `${data.length - r.pos} bytes follow the last of ${count} records`)
  return undefined
}

function newSpan(): RecordSpan {
  return { bodyBytes: 0, timestampDelta: 0, keyAt: 0, keyLength: -1, valueAt: 0, valueLength: -1, headerSpans: [] }
}

// module level, not a closure per record: this runs for every record the broker checks
function corrupt(index: number, why: string): Rejected {
  return fail('CORRUPT_MESSAGE' as const, `record ${index}: ${why}`)
}

function parseRecord(r: ByteReader, span: RecordSpan, index: number): Rejected | undefined {
  const bodyBytes = r.varint()
  if (r.bad) return corrupt(index, 'truncated length')
  if (bodyBytes < RECORD_BODY_BYTES_MIN || bodyBytes > r.end - r.pos) return corrupt(index, `length ${bodyBytes} does not fit`)
  const end = r.pos + bodyBytes
  const outerEnd = r.end
  r.end = end // a record's fields must stay inside its declared length
  r.skip(1) // attributes: unused
  span.bodyBytes = bodyBytes
  span.timestampDelta = r.varlong()
  const offsetDelta = r.varint()
  span.keyLength = readLength(r)
  span.keyAt = r.pos
  r.skip(Math.max(span.keyLength, 0))
  span.valueLength = readLength(r)
  span.valueAt = r.pos
  r.skip(Math.max(span.valueLength, 0))
  const bad = parseHeaders(r, span.headerSpans)
  if (r.bad || bad) return corrupt(index, 'malformed fields')
  if (r.pos !== end) return corrupt(index, `fields end ${end - r.pos} bytes before its length`)
  r.end = outerEnd
  if (offsetDelta !== index) return fail('INVALID_RECORD', `record ${index} has offsetDelta ${offsetDelta}: offsets must be dense`)
  return undefined
}

/** A nullable length: -1 for null; anything below that marks the reader bad. */
function readLength(r: ByteReader): number {
  const n = r.varint()
  if (n < -1) r.invalidate()
  return n
}

/** Fills `spans` with the headers' positions; true if the header count is negative. */
function parseHeaders(r: ByteReader, spans: number[]): boolean {
  if (spans.length !== 0) spans.length = 0 // setting length is a runtime call, even to 0 on an empty array
  const count = r.varint()
  if (count < 0) return true
  for (let h = 0; h < count && !r.bad; h++) {
    const keyLength = r.varint()
    if (keyLength < 0) return true // header keys are never null
    const keyAt = r.pos
    r.skip(keyLength)
    const valueLength = readLength(r)
    const valueAt = r.pos
    r.skip(Math.max(valueLength, 0))
    spans.push(keyAt, keyLength, valueAt, valueLength)
  }
  return false
}

// ---------------------------------------------------------------------------------------
// Decoding into consumed messages: the client's read path, one object per message.

/** A record as the consumer hands it out (client/consumer.ts's ConsumedMessage). */
export interface RecordMessage {
  readonly offset: number
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  /** Header key -> value; a key the record repeats keeps its last value. */
  readonly headers: Readonly<Record<string, Uint8Array | null>>
  readonly timestamp: number
}

/**
 * The headers of every record that has none: one shared object instead of one per
 * message, frozen so that a caller writing to one message's headers cannot change another's.
 */
export const NO_HEADERS: Readonly<Record<string, Uint8Array | null>> = Object.freeze({})

/** What readMessages takes from the batch header. */
export interface MessageBatchFields {
  readonly baseOffset: number
  readonly baseTimestamp: number
  /** LogAppendTime batches: every record's timestamp (the batch's maxTimestamp); null for CreateTime. */
  readonly appendTime: number | null
}

/** Makes the view of a key, value or header value over the batch's bytes (Node's client hands out Buffers). */
export type ByteView = (buffer: ArrayBufferLike, byteOffset: number, length: number) => Uint8Array

export const plainView: ByteView = (buffer, byteOffset, length) => new Uint8Array(buffer, byteOffset, length)

const utf8Decoder = new TextDecoder()

/**
 * Appends records `first` … `stop - 1` of the `count` records in `data` to `out`, as
 * messages whose key, value and header values are views into `data`. The records before
 * `first` are stepped over by their length prefix alone (their fields are not parsed, so
 * skipping costs a varint per record), and nothing after `stop - 1` is read. The records
 * it decodes are parsed and checked by parseRecord, as walkRecords checks them, and when
 * `stop` is `count` so is the end of the section: a whole-batch read accepts exactly what
 * walkRecords accepts. Never throws or reads out of bounds; on failure `out` may hold
 * some of the messages.
 */
export function readMessages(
  data: Uint8Array,
  count: number,
  first: number,
  stop: number,
  batch: MessageBatchFields,
  out: RecordMessage[],
  view: ByteView = plainView,
): Rejected | undefined {
  // A plain Uint8Array over the section, whatever `data` is: a Buffer would make the
  // element reads polymorphic. Views are built from the ArrayBuffer directly: subarray()
  // costs a species lookup per call (and of a Buffer would hand out Buffers).
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  const buffer = bytes.buffer
  const byteOffset = bytes.byteOffset
  const r = new ByteReader(bytes)
  for (let i = 0; i < first; i++) {
    const bad = skipRecord(r, i)
    if (bad !== undefined) return bad
  }
  const { baseOffset, baseTimestamp, appendTime } = batch
  const span = newSpan()
  for (let i = first; i < stop; i++) {
    const bad = parseRecord(r, span, i)
    if (bad !== undefined) return bad
    const timestamp = appendTime ?? baseTimestamp + span.timestampDelta
    if (!Number.isSafeInteger(timestamp)) return fail('INVALID_RECORD', `record timestamp ${timestamp} is outside the safe-integer range`)
    const { keyAt, keyLength, valueAt, valueLength, headerSpans } = span
    out.push({
      offset: baseOffset + i,
      key: keyLength < 0 ? null : view(buffer, byteOffset + keyAt, keyLength),
      value: valueLength < 0 ? null : view(buffer, byteOffset + valueAt, valueLength),
      headers: headerSpans.length === 0 ? NO_HEADERS : headersOf(bytes, headerSpans, view),
      timestamp,
    })
  }
  if (stop === count && r.pos !== bytes.length) return fail('CORRUPT_MESSAGE', `${bytes.length - r.pos} bytes follow the last of ${count} records`)
  return undefined
}

/** Steps over one record by its length prefix, which must fit what is left. */
function skipRecord(r: ByteReader, index: number): Rejected | undefined {
  const bodyBytes = r.varint()
  if (r.bad) return corrupt(index, 'truncated length')
  if (bodyBytes < RECORD_BODY_BYTES_MIN || bodyBytes > r.end - r.pos) return corrupt(index, `length ${bodyBytes} does not fit`)
  r.skip(bodyBytes)
  return undefined
}

function headersOf(bytes: Uint8Array, spans: readonly number[], view: ByteView): Record<string, Uint8Array | null> {
  const headers: Record<string, Uint8Array | null> = {}
  for (let h = 0; h < spans.length; h += 4) {
    const keyAt = spans[h]!
    const valueAt = spans[h + 2]!
    const valueLength = spans[h + 3]!
    const key = utf8Decoder.decode(bytes.subarray(keyAt, keyAt + spans[h + 1]!))
    const value = valueLength < 0 ? null : view(bytes.buffer, bytes.byteOffset + valueAt, valueLength)
    // a plain assignment to "__proto__" would set the object's prototype, not a header
    if (key === '__proto__') Object.defineProperty(headers, key, { value, enumerable: true, writable: true, configurable: true })
    else headers[key] = value
  }
  return headers
}
