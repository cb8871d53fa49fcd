/**
 * The bytes of Raft messages between nodes: one buffer carries many groups' messages for
 * one destination node, `[[groupId, message], ...]`, each message a fixed-position array
 * (no field names on the wire) packed with msgpackr. A worker encodes what one turn of
 * its Ready loop sends to a node, the main thread forwards the bytes unread
 * (src/broker/peer), and the receiving node decodes them to route each message to the
 * worker hosting its group.
 *
 * Decoding is checked: the bytes come from the network, so a buffer of another shape is
 * refused as a whole (a coded error), never half-routed; entry data stay views into the
 * buffer (msgpackr), so keeping one entry keeps the buffer alive until it is applied.
 *
 * RaftOutbox collects what a thread's groups send during one turn, one list per
 * destination node, and hands out one buffer per node when drained: a worker's outbox
 * (replica-host.ts) and the main thread's for the metadata group (src/broker/cluster.ts).
 *
 * Imports base, raft (types) and msgpackr only.
 */
import { Packr } from 'msgpackr'
import { fail, limits, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import type { Entry, EntryType, Message, MessageType, Snapshot } from '../raft/index.js'

type WireEntry = [term: number, index: number, type: number, data: Uint8Array]
type WireSnapshot = [index: number, term: number, voters: number[], data: Uint8Array]
type WireMessage = [
  type: number,
  from: number,
  to: number,
  term: number,
  logTerm: number,
  index: number,
  entries: WireEntry[],
  commit: number,
  reject: boolean,
  rejectHint: number,
  snapshot: WireSnapshot | null,
  transfer: boolean,
  quiesce: boolean,
]

/** One group's message. */
export type GroupMessage = readonly [groupId: number, message: Message]

export class RaftOutbox {
  #byNode = new Map<number, GroupMessage[]>()

  get empty(): boolean {
    return this.#byNode.size === 0
  }

  /** Group `gid`'s messages, each for the node it names. */
  add(gid: number, msgs: readonly Message[]): void {
    for (const m of msgs) {
      let list = this.#byNode.get(m.to)
      if (!list) this.#byNode.set(m.to, (list = []))
      list.push([gid, m])
    }
  }

  /**
   * Everything collected, as encodeRaftBatch buffers per node of about `bytesMax` at most
   * each (a message larger than that goes alone), and the outbox empty again. A leader
   * feeding a follower that was away sends hundreds of appends in one turn: one buffer
   * would outgrow the peer transport's frame limit and be dropped whole.
   */
  drain(send: (to: number, bytes: Uint8Array) => void, bytesMax: number = limits.peer.frameBytesMax / 4): void {
    const byNode = this.#byNode
    this.#byNode = new Map()
    for (const [to, items] of byNode) {
      let from = 0
      let bytes = 0
      for (let i = 0; i < items.length; i++) {
        const size = sizeOf(items[i]![1])
        if (i > from && bytes + size > bytesMax) {
          send(to, encodeRaftBatch(items.slice(from, i)))
          from = i
          bytes = 0
        }
        bytes += size
      }
      send(to, encodeRaftBatch(from === 0 ? items : items.slice(from)))
    }
  }
}

/** About how many bytes a message takes encoded: its entries' and snapshot's data, plus room for the fields. */
function sizeOf(m: Message): number {
  let bytes = 64 + (m.snapshot?.data.byteLength ?? 0)
  for (const e of m.entries) bytes += 24 + e.data.byteLength
  return bytes
}

const packr = new Packr({ useRecords: false, moreTypes: false })

function wireOf(m: Message): WireMessage {
  const s = m.snapshot
  return [
    m.type,
    m.from,
    m.to,
    m.term,
    m.logTerm,
    m.index,
    m.entries.map((e): WireEntry => [e.term, e.index, e.type, e.data]),
    m.commit,
    m.reject,
    m.rejectHint,
    s === null ? null : [s.metadata.index, s.metadata.term, [...s.metadata.conf.voters], s.data],
    m.transfer,
    m.quiesce,
  ]
}

/** Packs `items` (every one bound for the same node) into an exact-size buffer that may be transferred. */
export function encodeRaftBatch(items: readonly GroupMessage[]): Uint8Array {
  return new Uint8Array(packr.pack(items.map(([g, m]) => [g, wireOf(m)])))
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array

function entryOf(w: unknown): Entry | null {
  if (!Array.isArray(w) || w.length !== 4) return null
  const [term, index, type, data] = w as unknown[]
  if (!isInt(term) || !isInt(index) || (type !== 0 && type !== 1) || !isBytes(data)) return null
  return { term, index, type: type as EntryType, data }
}

function snapshotOf(w: unknown): Snapshot | null | undefined {
  if (w === null) return null
  if (!Array.isArray(w) || w.length !== 4) return undefined
  const [index, term, voters, data] = w as unknown[]
  if (!isInt(index) || !isInt(term) || !Array.isArray(voters) || !voters.every(isInt) || !isBytes(data)) return undefined
  return { metadata: { index, term, conf: { voters: voters as number[] } }, data }
}

function messageOf(w: unknown): Message | null {
  // 12 fields: a node from before quiescence, which never asks for it
  if (!Array.isArray(w) || (w.length !== 13 && w.length !== 12)) return null
  const [type, from, to, term, logTerm, index, entries, commit, reject, rejectHint, snap, transfer, quiesce = false] = w as unknown[]
  if (!isInt(type) || type < 1 || type > 10 || !isInt(from) || !isInt(to) || !isInt(term) || !isInt(logTerm) || !isInt(index)) return null
  if (!isInt(commit) || typeof reject !== 'boolean' || !isInt(rejectHint) || typeof transfer !== 'boolean' || typeof quiesce !== 'boolean' || !Array.isArray(entries)) return null
  const es: Entry[] = []
  for (const e of entries) {
    const entry = entryOf(e)
    if (entry === null) return null
    es.push(entry)
  }
  const snapshot = snapshotOf(snap)
  if (snapshot === undefined) return null
  return { type: type as MessageType, from, to, term, logTerm, index, entries: es, commit, reject, rejectHint, snapshot, transfer, quiesce }
}

/** The messages of a buffer `encodeRaftBatch` made; MALFORMED when it is anything else. */
export function decodeRaftBatch(bytes: Uint8Array): Result<GroupMessage[], 'MALFORMED'> {
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch (err) {
    return fail('MALFORMED', `raft batch: not msgpack (${err instanceof Error ? err.message : String(err)})`)
  }
  if (!Array.isArray(raw)) return fail('MALFORMED', 'raft batch: not a list')
  const out: GroupMessage[] = []
  for (const item of raw) {
    if (!Array.isArray(item) || item.length !== 2 || !isInt(item[0])) return fail('MALFORMED', 'raft batch: an item is not [group, message]')
    const m = messageOf(item[1])
    if (m === null) return fail('MALFORMED', `raft batch: group ${item[0] as number} has a malformed message`)
    out.push([item[0], m])
  }
  return ok(out)
}
