/**
 * SnapshotReceiver: a partition follower's side of catch-up by snapshot (the leader's is
 * snapshot-sender.ts, the items snapshot-wire.ts). Offered a snapshot it needs (its index
 * beyond this replica's commit index), it pulls, one request out at a time, first the
 * state machine's bytes, then the record batches, writing each batch into the partition
 * store as it comes (unsynced); with all of them stored it syncs the store with the
 * snapshot kept as received (the store's pending snapshot, keys.ts), and only then steps
 * a Snap with the snapshot's metadata into its own Raft core. The core installs it
 * (its log replaced), the WAL records that (a Snapshot record), and the actor's restore
 * hook asks `takeInstalled` for the new state machine: the partition replica swaps it in
 * and the store's applied state becomes the snapshot's.
 *
 * Which records it fetches: from max(its own nextOffset, the offer's first offset). The
 * committed prefix it already holds stays: what an applied entry stored at an offset is
 * the same batch, byte for byte, on every replica (offsets are assigned at apply, in
 * commit order, and the stamped baseOffset is the only byte apply changes), so fetching
 * it again would only cost the transfer its length; and a follower that is behind by a
 * little more than the leader's log view (the usual case: a restart, a pause) fetches
 * only what it lacks. What the new state no longer retains is deleted at the install.
 * Every batch received is checked against the snapshot's own index of batches (size,
 * CRC-32C, base offset) before it is stored: one that fails ends the transfer.
 *
 * Crash safety (a kill -9 at any moment):
 *   - before the synced write of the pending snapshot: the batches written so far lie
 *     beyond this replica's nextOffset, where nothing reads (fetch goes by the state
 *     machine's index); they are the same bytes the log would apply there, so a restart
 *     is the replica as it was before the transfer;
 *   - after it, before the WAL's Snapshot record: the pending snapshot is dropped at the
 *     next open (the WAL never vouched for it): again as before;
 *   - after the WAL's record, before the store's applied state moved: recovery
 *     (src/storage/recovery.ts) finds the Snapshot record ahead of the store's applied
 *     index and makes the pending snapshot the applied state: as after.
 * It never serves what it does not hold: until the install its state machine (and so
 * fetch, on a leader; reads go to leaders only) is the old one, whose records it has.
 * And it cannot lead with a partial store: a replica whose log lacks committed entries
 * loses every election (Raft's up-to-date check), and its state is its own log's.
 *
 * Abandoned (the leader is told where it can be): when another leader or term appears,
 * the leader ends it, a chunk fails its checks, the store fails, or nothing moved for
 * limits.snapshot.idleTimeoutMs; a request unanswered for requestRetryMs is sent again.
 * The next offer starts afresh (records already stored are fetched again: simple, and
 * still correct). At most receivesPerThreadMax transfers run in one thread at once.
 *
 * Imports base, raft (types), group (types), storage (types), partition and ./ modules.
 */
import { limits } from '../base/index.js'
import type { Message, NodeId, SnapshotMetadata } from '../raft/index.js'
import type { ActorLogger } from '../group/index.js'
import type { PartitionStore } from '../storage/index.js'
import { PartitionStateMachine } from '../partition/index.js'
import { installMessage, transferMessage } from './snapshot-wire.js'
import { THREAD_SLOTS, TRANSFER_TIMING } from './snapshot-sender.js'
import type { TransferSlots, TransferTiming } from './snapshot-sender.js'
import type { TransferItem } from './snapshot-wire.js'
import { checkStored } from './stored-check.js'

export interface ReceiverHost {
  readonly self: NodeId
  readonly where: object
  readonly log: ActorLogger
  readonly store: Pick<PartitionStore, 'putRecord' | 'putPendingSnapshot' | 'flush'>
  now(): number
  send(m: Message): void
  /** What the Raft core says now. */
  raft(): { readonly term: number; readonly leader: NodeId; readonly commit: number }
  /** The partition's nextOffset now. */
  nextOffset(): number
  /** Steps the Snap `m` into the Raft core; true when the core took the snapshot (it installs it next). */
  install(m: Message): boolean
  readonly timing?: TransferTiming
  readonly slots?: TransferSlots
  /** Test-only wrong rule (HostOptions.unsafe): the received snapshot is not synced before the core gets it. */
  readonly unsyncedSnapshot?: boolean
}

type Phase = 'state' | 'records' | 'syncing' | 'installing'

type Offer = Extract<TransferItem, { kind: 'offer' }>

interface Transfer {
  readonly leader: NodeId
  readonly term: number
  readonly meta: SnapshotMetadata
  readonly offer: Offer
  /** The first record offset fetched (see the header). */
  readonly start: number
  phase: Phase
  stateParts: Uint8Array[]
  stateAt: number
  /** The snapshot's state machine, once its bytes are all here. */
  sm: PartitionStateMachine | null
  state: Uint8Array | null
  cursor: number
  /** Bytes received, and what the whole transfer takes (estimated until the state is here). */
  bytes: number
  total: number
  batches: number
  readonly startedAt: number
  activeAt: number
  askedAt: number
  ask: TransferItem | null
}


export class SnapshotReceiver {
  readonly #host: ReceiverHost
  readonly #slots: TransferSlots
  #t: Transfer | null = null
  #closed = false

  constructor(host: ReceiverHost) {
    this.#host = host
    this.#slots = host.slots ?? THREAD_SLOTS
  }

  /** The transfer in progress: bytes received of how many, or null. */
  progress(): { readonly bytes: number; readonly total: number } | null {
    const t = this.#t
    return t === null ? null : { bytes: t.bytes, total: Math.max(t.total, t.bytes) }
  }

  /** An item from node `from`, in a Snap message of `term` for the snapshot `meta` describes. */
  onItem(from: NodeId, term: number, meta: SnapshotMetadata, item: TransferItem): void {
    if (this.#closed) return
    const t = this.#t
    const current = t !== null && t.leader === from && t.term === term && t.offer.id === item.id && t.meta.index === meta.index
    switch (item.kind) {
      case 'offer':
        if (!current) this.#offered(from, term, meta, item)
        return
      case 'state':
        if (current && t.phase === 'state' && item.at === t.stateAt) this.#state(t, item.bytes)
        return
      case 'records':
        if (current && t.phase === 'records' && item.at === t.cursor) this.#records(t, item.batches)
        return
      case 'end':
        if (current && (t.phase === 'state' || t.phase === 'records')) this.#abort(t, `the leader ended it: ${item.reason}`, false)
        return
      case 'ask':
        return // asks go the other way
    }
  }

  #offered(from: NodeId, term: number, meta: SnapshotMetadata, offer: Offer): void {
    const h = this.#host
    const raft = h.raft()
    if (term < raft.term) return // an old leader's
    const t = this.#t
    if (t !== null) {
      if (t.phase === 'syncing' || t.phase === 'installing') return // the next offer comes after it
      this.#abort(t, `superseded by an offer from ${from} at term ${term}`, true)
    }
    if (meta.index <= raft.commit) {
      // nothing to fetch: the core answers with what it has, and the leader moves on
      h.install(installMessage(from, h.self, term, meta))
      return
    }
    const reply = (reason: string): void => h.send(transferMessage(h.self, from, term, meta, { kind: 'end', id: offer.id, done: false, reason }))
    const next = h.nextOffset()
    if (offer.endOffset < next) {
      h.log.error({ ...h.where, from, index: meta.index, endOffset: offer.endOffset, nextOffset: next }, 'a snapshot offer ends before what this replica holds; refused')
      return reply(`the snapshot ends at offset ${offer.endOffset}, this replica holds up to ${next}`)
    }
    if (this.#slots.receiving >= limits.snapshot.receivesPerThreadMax) return reply('busy: this thread receives as many snapshots as it may')
    const now = h.now()
    const start = Math.max(next, offer.firstOffset)
    const nt: Transfer = {
      leader: from,
      term,
      meta,
      offer,
      start,
      phase: 'state',
      stateParts: [],
      stateAt: 0,
      sm: null,
      state: null,
      cursor: start,
      bytes: 0,
      total: offer.stateBytes + offer.recordBytes,
      batches: 0,
      startedAt: now,
      activeAt: now,
      askedAt: now,
      ask: null,
    }
    this.#t = nt
    this.#slots.receiving++
    h.log.info(
      { ...h.where, from, index: meta.index, term: meta.term, stateBytes: offer.stateBytes, firstOffset: offer.firstOffset, endOffset: offer.endOffset, fetchFrom: start, recordBytes: offer.recordBytes },
      'catching up by snapshot: transfer started',
    )
    this.#ask(nt, { kind: 'ask', id: offer.id, what: 'state', at: 0 })
  }

  #ask(t: Transfer, item: TransferItem): void {
    t.ask = item
    t.askedAt = this.#host.now()
    this.#host.send(transferMessage(this.#host.self, t.leader, t.term, t.meta, item))
  }

  #state(t: Transfer, bytes: Uint8Array): void {
    t.activeAt = this.#host.now()
    if (bytes.length === 0 && t.stateAt < t.offer.stateBytes) return this.#abort(t, 'an empty state chunk', true)
    if (t.stateAt + bytes.length > t.offer.stateBytes) return this.#abort(t, `state chunks past the ${t.offer.stateBytes} bytes offered`, true)
    // a copy: the chunk is a view into the whole network buffer it came in
    t.stateParts.push(bytes.slice())
    t.stateAt += bytes.length
    t.bytes += bytes.length
    if (t.stateAt < t.offer.stateBytes) return this.#ask(t, { kind: 'ask', id: t.offer.id, what: 'state', at: t.stateAt })
    const state = concat(t.stateParts, t.stateAt)
    t.stateParts = []
    const r = PartitionStateMachine.restore(state)
    if (!r.ok) return this.#abort(t, `the state does not restore: ${r.error.message}`, true)
    const sm = r.value
    const o = t.offer
    const first = sm.batchCount === 0 ? sm.nextOffset : firstBase(sm)
    if (sm.appliedIndex !== t.meta.index || sm.nextOffset !== o.endOffset || first !== o.firstOffset) {
      return this.#abort(t, `the state (applied ${sm.appliedIndex}, records [${first}, ${sm.nextOffset})) is not the one offered (index ${t.meta.index}, records [${o.firstOffset}, ${o.endOffset}))`, true)
    }
    t.sm = sm
    t.state = state
    // what is left to fetch, now that the index of batches is known
    t.total = t.bytes + bytesFrom(sm, t.start)
    t.phase = 'records'
    this.#nextRecords(t)
  }

  #nextRecords(t: Transfer): void {
    if (t.cursor >= t.offer.endOffset) return this.#complete(t)
    this.#ask(t, { kind: 'ask', id: t.offer.id, what: 'records', at: t.cursor })
  }

  #records(t: Transfer, batches: readonly Uint8Array[]): void {
    const h = this.#host
    t.activeAt = h.now()
    if (batches.length === 0) return this.#abort(t, `no records at offset ${t.cursor}`, true)
    // the first batch may begin below the log start (retention cuts through batches): locate by the start
    const sm = t.sm!
    const loc = sm.locate(Math.max(t.cursor, sm.logStartOffset), Infinity, batches.length)
    if (loc.kind !== 'ok' || loc.batches.length !== batches.length || loc.batches[0]!.baseOffset !== t.cursor) return this.#abort(t, `records at ${t.cursor} the snapshot's index does not hold`, true)
    for (let i = 0; i < batches.length; i++) {
      const want = loc.batches[i]!
      const why = checkStored(batches[i]!, want)
      if (why !== null) {
        h.log.error({ ...h.where, from: t.leader, offset: want.baseOffset, reason: why }, 'a record batch of a snapshot failed its checks')
        return this.#abort(t, `the batch at ${want.baseOffset}: ${why}`, true)
      }
    }
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i]!
      h.store.putRecord(loc.batches[i]!.baseOffset, b)
      t.bytes += b.length
    }
    t.batches += batches.length
    t.cursor = loc.batches[batches.length - 1]!.lastOffset + 1
    // unsynced: what matters is synced once, before the install (see the header)
    void h.store.flush({ sync: false }).then((r) => {
      if (!r.ok && this.#t === t) this.#abort(t, `the partition store failed: ${r.error.message}`, true)
    })
    this.#nextRecords(t)
  }

  /** Everything is here: the store is synced with the snapshot kept as received, then the core is given it. */
  #complete(t: Transfer): void {
    const h = this.#host
    t.phase = 'syncing'
    t.ask = null
    h.store.putPendingSnapshot({ index: t.meta.index, term: t.meta.term, conf: t.meta.conf, blob: t.state! })
    void h.store.flush({ sync: h.unsyncedSnapshot !== true }).then((r) => {
      if (this.#t !== t || this.#closed) return
      if (!r.ok) return this.#abort(t, `the partition store failed: ${r.error.message}`, true)
      t.phase = 'installing'
      if (h.install(installMessage(t.leader, h.self, t.term, t.meta))) return // takeInstalled comes with the restore
      // the core no longer needs it (a newer leader's entries reached it meanwhile): nothing changes
      h.store.putPendingSnapshot(null)
      h.log.info({ ...h.where, from: t.leader, index: t.meta.index }, 'a snapshot received whole was not needed any more; dropped')
      this.#end(t, true, 'not needed')
    })
  }

  /**
   * The core installed the snapshot at `index` (durable in the WAL): the state machine it
   * carries, and its bytes. Only for the transfer this receiver gave the core.
   */
  takeInstalled(index: number): { readonly sm: PartitionStateMachine; readonly state: Uint8Array } | null {
    const t = this.#t
    if (t === null || t.phase !== 'installing' || t.meta.index !== index) return null
    const h = this.#host
    h.log.info({ ...h.where, from: t.leader, index, term: t.meta.term, bytes: t.bytes, batches: t.batches, fetchedFrom: t.start, endOffset: t.offer.endOffset, ms: h.now() - t.startedAt }, 'caught up by snapshot: transfer finished and installed')
    this.#end(t, true, 'installed')
    return { sm: t.sm!, state: t.state! }
  }

  /** Re-asks what went unanswered; abandons a transfer whose leader changed or that stalled. */
  tick(): void {
    const t = this.#t
    if (t === null || t.phase === 'syncing' || t.phase === 'installing') return
    const h = this.#host
    const now = h.now()
    const raft = h.raft()
    if (raft.term > t.term || (raft.leader !== 0 && raft.leader !== t.leader)) return this.#abort(t, `the leader changed (now ${raft.leader} at term ${raft.term})`, true)
    const timing = h.timing ?? TRANSFER_TIMING
    if (now - t.activeAt > timing.idleTimeoutMs) return this.#abort(t, `nothing arrived for ${timing.idleTimeoutMs} ms`, true)
    if (t.ask !== null && now - t.askedAt >= timing.requestRetryMs) this.#ask(t, t.ask)
  }

  close(): void {
    this.#closed = true
    if (this.#t !== null) this.#release()
  }

  #abort(t: Transfer, reason: string, tellLeader: boolean): void {
    const h = this.#host
    h.log.warn({ ...h.where, from: t.leader, index: t.meta.index, bytes: t.bytes, batches: t.batches, ms: h.now() - t.startedAt, reason }, 'catching up by snapshot: transfer aborted; the next offer starts again')
    if (tellLeader) this.#end(t, false, reason)
    else this.#release()
  }

  #end(t: Transfer, done: boolean, reason: string): void {
    this.#host.send(transferMessage(this.#host.self, t.leader, t.term, t.meta, { kind: 'end', id: t.offer.id, done, reason }))
    this.#release()
  }

  #release(): void {
    this.#t = null
    this.#slots.receiving--
  }
}

function concat(parts: readonly Uint8Array[], bytes: number): Uint8Array {
  if (parts.length === 1) return parts[0]!
  const out = new Uint8Array(bytes)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

function firstBase(sm: PartitionStateMachine): number {
  const loc = sm.locate(sm.logStartOffset, 0, 1)
  return loc.kind === 'ok' ? loc.batches[0]!.baseOffset : sm.nextOffset
}

/** Bytes of the batches from offset `from` on. */
function bytesFrom(sm: PartitionStateMachine, from: number): number {
  if (from >= sm.nextOffset) return 0
  const loc = sm.locate(Math.max(from, sm.logStartOffset), Infinity, Math.max(1, sm.batchCount))
  if (loc.kind !== 'ok') return 0
  let bytes = 0
  for (const b of loc.batches) bytes += b.bytes
  return bytes
}
