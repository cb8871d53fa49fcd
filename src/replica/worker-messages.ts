/**
 * The data path between the main thread and a worker hosting partition replicas: plain
 * objects, many per post, packed with msgpackr into one buffer that is transferred
 * (not copied) across the MessagePort — one post per event-loop turn per worker, not
 * one per request. Control (open, close, status, shutdown) goes through comlink; see
 * the worker's control API.
 *
 * Grammar: a post is `pack(WorkerRequest[])` one way and `pack(WorkerPost[])` the
 * other; every request but `raft` and `cancel` has a request id `rid` unique per worker,
 * and exactly one reply carries it back. Raft traffic between nodes rides the same posts
 * without ids: `raft` requests carry what peers sent to this worker's groups, `raft`
 * events what its groups send to one node (raft-wire.ts bytes, forwarded unread by the
 * main thread), and `leader` events say who a group's leader is now, for routing.
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

/** What the metadata says of a hosted partition beyond its identity: where it is going, and its retention. */
export interface ReplicaAssignment {
  readonly target: readonly number[] | null
  readonly retentionMs: number | null
  readonly retentionBytes: number | null
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
  /** Raft messages from peers for groups of this worker (raft-wire.ts bytes); no reply. */
  | { readonly t: 'raft'; readonly bytes: Uint8Array }
  /** The node's failure detector lost peer `node` (a quiet group that depends on it wakes); no reply. */
  | { readonly t: 'peerDown'; readonly node: number }
  /**
   * What the metadata says of group `gid` now: where it is moving (null: it is not;
   * partition-move.ts) and its topic's retention (changed by alterTopic); no reply.
   */
  | { readonly t: 'assignment'; readonly gid: number; readonly assignment: ReplicaAssignment }

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

/** What a worker says without being asked. */
export type WorkerEvent =
  /** Raft messages its groups send to node `to` (raft-wire.ts bytes). */
  | { readonly ev: 'raft'; readonly to: number; readonly bytes: Uint8Array }
  /** Group `gid` knows its leader now (0: none) as of `term`. */
  | { readonly ev: 'leader'; readonly gid: number; readonly leader: number; readonly term: number }
  /** Group `gid`'s configuration as of applied index `index` (partition-move.ts: for the controller). */
  | { readonly ev: 'conf'; readonly gid: number; readonly index: number; readonly voters: readonly number[] }

/** One item of a post from a worker. */
export type WorkerPost = WorkerReply | WorkerEvent

const packr = new Packr({ useRecords: false, moreTypes: false })

/** Packs a list of messages into an exact-size buffer that may be transferred. */
export function packPost<T>(items: readonly T[]): Uint8Array {
  // pack() returns a view into a reused buffer: copy it out before giving its memory away
  return new Uint8Array(packr.pack(items))
}

export function unpackPost<T>(bytes: Uint8Array): T[] {
  return packr.unpack(bytes) as T[]
}
