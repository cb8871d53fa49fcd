/**
 * The data path between the main thread and a worker hosting partition replicas: plain
 * objects, many per post, packed with msgpackr into one buffer that is transferred
 * (not copied) across the MessagePort — one post per event-loop turn per worker, not
 * one per request. Control (open, close, status, shutdown) goes through comlink; see
 * the worker's control API.
 *
 * Grammar: a post is `pack(WorkerRequest[])` one way and `pack(WorkerReply[])` the
 * other; every request has a request id `rid` unique per worker, and exactly one reply
 * carries it back.
 *
 * Imports msgpackr and the protocol's types.
 */
import { Packr } from 'msgpackr'
import type { ProduceSummary as WireProduceSummary } from '../protocol/api.js'

export interface WireErrorLike {
  readonly code: string
  readonly message: string
  readonly leader?: number
  readonly details?: Record<string, unknown>
}

export type WorkerRequest =
  | {
      readonly t: 'produce'
      readonly rid: number
      readonly gid: number
      readonly atomic: boolean
      readonly batch: Uint8Array
      /** Record sizes, when the codec pool already verified (decompressed) the batch. */
      readonly sizes?: readonly number[]
    }
  | {
      readonly t: 'fetch'
      readonly rid: number
      readonly gid: number
      readonly offset: number
      readonly maxBytes: number
      readonly maxMessages: number
      readonly maxWaitMs: number
    }
  | { readonly t: 'offsets'; readonly rid: number; readonly gid: number }
  /** Ends a parked long-poll fetch early (its reply then comes at once). */
  | { readonly t: 'cancel'; readonly rid: number }

/** What became of a batch's records: the wire's summary (protocol/apis/produce.ts), errors as WireErrorLike. */
export type ProduceSummary = WireProduceSummary<WireErrorLike>

export type WorkerReply =
  | { readonly rid: number; readonly ok: false; readonly error: WireErrorLike }
  | { readonly rid: number; readonly ok: true; readonly t: 'produce'; readonly summary: ProduceSummary }
  | {
      readonly rid: number
      readonly ok: true
      readonly t: 'fetch'
      readonly batches: readonly Uint8Array[]
      readonly highWatermark: number
      readonly logStartOffset: number
    }
  | { readonly rid: number; readonly ok: true; readonly t: 'offsets'; readonly highWatermark: number; readonly logStartOffset: number }

const packr = new Packr({ useRecords: false, moreTypes: false })

/** Packs a list of messages into an exact-size buffer that may be transferred. */
export function packPost<T>(items: readonly T[]): Uint8Array {
  // pack() returns a view into a reused buffer: copy it out before giving its memory away
  return new Uint8Array(packr.pack(items))
}

export function unpackPost<T>(bytes: Uint8Array): T[] {
  return packr.unpack(bytes) as T[]
}
