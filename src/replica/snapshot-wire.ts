/**
 * The messages of a partition snapshot transfer (snapshot-sender.ts, snapshot-receiver.ts)
 * and their bytes. They ride Raft's own InstallSnapshot message (MessageType.Snap) between
 * the two replicas: its `snapshot.metadata` is the snapshot's (index, term, configuration
 * at that index) and its `snapshot.data` is one transfer item below, so they travel the
 * per-node RAFT channel as any Raft message does (raft-wire.ts, src/broker/cluster.ts),
 * batched with the group's other traffic, and nothing on the way needs to know them. The
 * Raft paper's InstallSnapshot is chunked the same way (Figure 13: offset, data, done);
 * here the follower pulls, one chunk at a time, instead of the leader pushing.
 *
 * A partition replica never steps such a message into its Raft core: the only Snap its
 * core sees is the one a receiver builds itself once the whole snapshot is stored
 * (`installMessage`), with empty data.
 *
 * Items (msgpackr, fixed-position arrays, no field names on the wire):
 *
 *   offer   = [1, id, stateBytes, firstOffset, endOffset, recordBytes, batches]  leader -> follower
 *   ask     = [2, id, what (0: state bytes, 1: records), at]                     follower -> leader
 *   state   = [3, id, at, bytes]                                                 leader -> follower
 *   records = [4, id, at, [batch bytes, ...]]                                    leader -> follower
 *   end     = [5, id, done: bool, reason]                                        either way
 *
 * `id` names one offer of one leader (with the sender's node id); `at` is a byte position
 * in the state machine's bytes, or the base offset of the first record batch. An offer's
 * records are [firstOffset, endOffset): every batch the partition retains as of the
 * snapshot's index, `recordBytes` bytes in `batches` batches.
 *
 * Decoding is checked: the bytes come from the network, so anything of another shape is a
 * coded error value, never a throw.
 *
 * Imports base, raft (types) and msgpackr only.
 */
import { Packr } from 'msgpackr'
import { fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { MessageType, blankMessage } from '../raft/index.js'
import type { Message, NodeId, SnapshotMetadata } from '../raft/index.js'

export const TransferTag = { Offer: 1, Ask: 2, State: 3, Records: 4, End: 5 } as const

export type TransferItem =
  | { readonly kind: 'offer'; readonly id: number; readonly stateBytes: number; readonly firstOffset: number; readonly endOffset: number; readonly recordBytes: number; readonly batches: number }
  | { readonly kind: 'ask'; readonly id: number; readonly what: 'state' | 'records'; readonly at: number }
  | { readonly kind: 'state'; readonly id: number; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'records'; readonly id: number; readonly at: number; readonly batches: readonly Uint8Array[] }
  | { readonly kind: 'end'; readonly id: number; readonly done: boolean; readonly reason: string }

/** Characters of an end item's reason kept on the wire. */
export const REASON_CHARS_MAX = 200
/** Batches one records item may carry (the limits table's chunk bound, with room). */
const RECORDS_ITEM_BATCHES_MAX = 100_000

const packr = new Packr({ useRecords: false, moreTypes: false })

export function encodeTransferItem(item: TransferItem): Uint8Array {
  let wire: unknown[]
  switch (item.kind) {
    case 'offer':
      wire = [TransferTag.Offer, item.id, item.stateBytes, item.firstOffset, item.endOffset, item.recordBytes, item.batches]
      break
    case 'ask':
      wire = [TransferTag.Ask, item.id, item.what === 'state' ? 0 : 1, item.at]
      break
    case 'state':
      wire = [TransferTag.State, item.id, item.at, item.bytes]
      break
    case 'records':
      wire = [TransferTag.Records, item.id, item.at, item.batches]
      break
    case 'end':
      wire = [TransferTag.End, item.id, item.done, item.reason.slice(0, REASON_CHARS_MAX)]
      break
  }
  // an exact-size copy: pack() answers a view into a buffer it reuses
  return new Uint8Array(packr.pack(wire))
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array

/** The item `bytes` holds; MALFORMED when they are anything else. */
export function decodeTransferItem(bytes: Uint8Array): Result<TransferItem, 'MALFORMED'> {
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch (err) {
    return fail('MALFORMED', `snapshot transfer item: not msgpack (${err instanceof Error ? err.message : String(err)})`)
  }
  const bad = (why: string) => fail('MALFORMED' as const, `snapshot transfer item: ${why}`)
  if (!Array.isArray(raw) || raw.length < 2) return bad('not a list')
  const [tag, id] = raw as unknown[]
  if (!isInt(id)) return bad('no transfer id')
  switch (tag) {
    case TransferTag.Offer: {
      if (raw.length !== 7) return bad(`an offer of ${raw.length} fields`)
      const [, , stateBytes, firstOffset, endOffset, recordBytes, batches] = raw as unknown[]
      if (!isInt(stateBytes) || !isInt(firstOffset) || !isInt(endOffset) || !isInt(recordBytes) || !isInt(batches)) return bad('an offer with a field that is no count')
      if (firstOffset > endOffset) return bad(`an offer of records [${firstOffset}, ${endOffset})`)
      if ((batches === 0) !== (firstOffset === endOffset)) return bad(`an offer of ${batches} batches for records [${firstOffset}, ${endOffset})`)
      return ok({ kind: 'offer', id, stateBytes, firstOffset, endOffset, recordBytes, batches })
    }
    case TransferTag.Ask: {
      if (raw.length !== 4) return bad(`an ask of ${raw.length} fields`)
      const [, , what, at] = raw as unknown[]
      if ((what !== 0 && what !== 1) || !isInt(at)) return bad('an ask of unknown shape')
      return ok({ kind: 'ask', id, what: what === 0 ? 'state' : 'records', at })
    }
    case TransferTag.State: {
      if (raw.length !== 4) return bad(`a state chunk of ${raw.length} fields`)
      const [, , at, data] = raw as unknown[]
      if (!isInt(at) || !isBytes(data)) return bad('a state chunk of unknown shape')
      return ok({ kind: 'state', id, at, bytes: data })
    }
    case TransferTag.Records: {
      if (raw.length !== 4) return bad(`a records chunk of ${raw.length} fields`)
      const [, , at, batches] = raw as unknown[]
      if (!isInt(at) || !Array.isArray(batches) || batches.length > RECORDS_ITEM_BATCHES_MAX || !batches.every(isBytes)) return bad('a records chunk of unknown shape')
      return ok({ kind: 'records', id, at, batches: batches as Uint8Array[] })
    }
    case TransferTag.End: {
      if (raw.length !== 4) return bad(`an end of ${raw.length} fields`)
      const [, , done, reason] = raw as unknown[]
      if (typeof done !== 'boolean' || typeof reason !== 'string' || reason.length > REASON_CHARS_MAX) return bad('an end of unknown shape')
      return ok({ kind: 'end', id, done, reason })
    }
    default:
      return bad(`unknown item tag ${String(tag)}`)
  }
}

/** A Raft Snap message from `from` to `to` at `term` carrying `item` for the snapshot `meta` describes. */
export function transferMessage(from: NodeId, to: NodeId, term: number, meta: SnapshotMetadata, item: TransferItem): Message {
  return snapMessage(from, to, term, meta, encodeTransferItem(item))
}

/**
 * The Snap a receiver steps into its own Raft core once the snapshot is stored whole and
 * synced: as if `leader` had sent it at `term`, with no data (the state is in the store).
 */
export function installMessage(leader: NodeId, self: NodeId, term: number, meta: SnapshotMetadata): Message {
  return snapMessage(leader, self, term, meta, new Uint8Array(0))
}

function snapMessage(from: NodeId, to: NodeId, term: number, meta: SnapshotMetadata, data: Uint8Array): Message {
  return { ...blankMessage(MessageType.Snap, from, to, term), snapshot: { metadata: meta, data } }
}
