/**
 * piscina task: verifies a compressed RecordBatch off the main thread and off the
 * partition actors — decompresses it (bounded) and measures each record — so a large
 * gzip batch never stalls a thread that serves other work. Logic lives in
 * src/protocol/record-batch.ts; this file only adapts it to a task.
 */
import { limits } from '../src/base/index.js'
import { recordSizes } from '../src/protocol/record-batch.js'
import type { BatchErrorCode } from '../src/protocol/record-batch.js'

export type VerifyResult = { readonly ok: true; readonly sizes: number[] } | { readonly ok: false; readonly error: { readonly code: BatchErrorCode; readonly message: string } }

export default function verify(batch: Uint8Array): VerifyResult {
  const r = recordSizes(batch, { maxBytes: limits.produce.batchDecompressedBytesMax })
  return r.ok ? { ok: true, sizes: r.value } : { ok: false, error: { code: r.error.code, message: r.error.message } }
}
