/**
 * Hand-made RecordBatch bytes for the protocol tests: records from raw varint fields (so
 * a test can write what no encoder would) and batches around them with a fresh CRC.
 */
import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import { BATCH_HEADER_BYTES, encodeRecordBatch } from '../../src/protocol/record-batch.js'
import { writeVarint } from '../../src/protocol/varint.js'

/** The timestamp every forged batch header carries. */
export const T0 = 1_700_000_000_000

/** Writes a fresh CRC-32C over the batch (after the header's CRC field). */
export function restamp(b: Uint8Array): void {
  new DataView(b.buffer, b.byteOffset).setUint32(17, crc32c(b.subarray(21)))
}

/** The parts, joined in a new buffer (a plain Uint8Array: the decoders must not depend on Buffer). */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

/** One record from raw varint fields (after the attributes byte); the length prefix is computed, off by `lengthDelta`. */
export function rawRecord(fields: (number | Uint8Array)[], lengthDelta = 0): Uint8Array {
  const body = new Uint8Array(256)
  let pos = 0
  body[pos++] = 0 // attributes
  for (const f of fields) {
    if (typeof f === 'number') pos = writeVarint(body, pos, f)
    else {
      body.set(f, pos)
      pos += f.length
    }
  }
  const out = new Uint8Array(5 + pos)
  const at = writeVarint(out, 0, pos + lengthDelta)
  out.set(body.subarray(0, pos), at)
  return out.subarray(0, at + pos)
}

/** An uncompressed batch whose records section is `records`, with header fields forced by `patch` and a fresh CRC. */
export function forge(records: Uint8Array, count: number, patch: (b: Uint8Array, dv: DataView) => void = () => {}): Uint8Array {
  const out = new Uint8Array(BATCH_HEADER_BYTES + records.length)
  out.set(encodeRecordBatch([{ value: 'x', timestamp: T0 }]).subarray(0, BATCH_HEADER_BYTES))
  out.set(records, BATCH_HEADER_BYTES)
  const dv = new DataView(out.buffer)
  dv.setInt32(8, out.length - 12)
  dv.setInt32(23, count - 1)
  dv.setInt32(57, count)
  patch(out, dv)
  restamp(out)
  return out
}
