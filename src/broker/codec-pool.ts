/**
 * CodecPool: a piscina pool for CPU-heavy, stateless batch work — verifying (bounded
 * decompression and record sizes of) large compressed batches — so neither the main
 * thread nor a partition actor stalls on it. Small batches are not worth a task's fixed
 * cost (≈24 µs, 32 µs of main-thread time, DESIGN §9) and stay with the actor.
 *
 * Imports protocol and piscina.
 */
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import { BATCH_HEADER_BYTES } from '../protocol/record-batch.js'
import type { BatchErrorCode } from '../protocol/record-batch.js'

/** Compressed batches from this size on are verified in the pool. */
export const POOL_BATCH_BYTES_MIN = 64 << 10

export type VerifyResult = { readonly ok: true; readonly sizes: number[] } | { readonly ok: false; readonly error: { readonly code: BatchErrorCode; readonly message: string } }

function taskFile(): { filename: string; workerData?: unknown } {
  const here = import.meta.url
  if (!here.endsWith('.ts')) return { filename: fileURLToPath(new URL('../../workers/codec-worker.js', here)) }
  return {
    filename: fileURLToPath(new URL('../../workers/ts-task-shim.mjs', here)),
    workerData: { taskModule: new URL('../../workers/codec-worker.ts', here).href },
  }
}

/** Whether a batch should be verified in the pool: compressed (attribute bits 0-2) and large. */
export function wantsPool(batch: Uint8Array): boolean {
  return batch.byteLength >= POOL_BATCH_BYTES_MIN && batch.byteLength >= BATCH_HEADER_BYTES && (batch[22]! & 0x07) !== 0
}

export class CodecPool {
  readonly #pool: Piscina

  constructor(threads = Math.max(1, Math.min(4, availableParallelism()))) {
    this.#pool = new Piscina({ ...taskFile(), maxThreads: threads, minThreads: 0, idleTimeout: 30_000 })
  }

  verify(batch: Uint8Array): Promise<VerifyResult> {
    return this.#pool.run(batch) as Promise<VerifyResult>
  }

  async close(): Promise<void> {
    await this.#pool.destroy()
  }
}
