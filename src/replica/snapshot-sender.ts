/**
 * SnapshotSender: a partition leader's side of catch-up by snapshot. When its Raft core
 * would send a follower InstallSnapshot (the follower needs entries the leader's log view
 * no longer holds), the replica does not send the core's snapshot — the view's, metadata
 * only, no records — but offers a partition snapshot as of its applied index: the
 * snapshot metadata (that index, its term, the configuration there), the state machine's
 * bytes, and the record range the partition retains, [first retained batch, nextOffset).
 * The follower pulls it in bounded chunks (snapshot-receiver.ts; the items are in
 * snapshot-wire.ts).
 *
 * Why the records need no copy taken at the offer: applied record batches never change,
 * so they are read later, by offset, through the replica's own read path (recent batches,
 * then the store), bounded by the offer's end offset; the only thing that removes them is
 * retention, and a chunk retention has dropped meanwhile ends the transfer (RANGE_GONE):
 * the core is told the snapshot failed and offers a newer one later. The state bytes are
 * the one copy kept, for the transfer's life.
 *
 * Bounds (src/base/limits.ts `snapshot`): one answer per request, of at most
 * chunkBytesMax / chunkBatchesMax; sendsPerThreadMax offers at once across this thread's
 * replicas (past it the core is told the snapshot failed: it tries again later); an offer
 * nothing asked for within idleTimeoutMs is dropped (and the core told). Losing the
 * leadership drops every offer.
 *
 * The core resends its Snap while the follower is in its snapshot state (each election
 * timeout): the same offer goes again then, so a follower that restarted or lost the
 * offer starts (again) at the next one. After a transfer to a follower failed, the next
 * offer to it waits half a request retry (1 s), doubling up to 8 of them (16 s) while they keep failing
 * (a follower whose thread is busy receiving others would otherwise be offered one, and
 * refuse it, at every heartbeat); until then the core is told at once that it failed.
 *
 * Imports base, raft (types), group (types) and ./snapshot-wire.
 */
import { limits } from '../base/index.js'
import type { Result } from '../base/index.js'
import type { Message, NodeId, SnapshotMetadata } from '../raft/index.js'
import type { ActorLogger } from '../group/index.js'
import { transferMessage } from './snapshot-wire.js'
import type { TransferItem } from './snapshot-wire.js'

/** The partition as of its applied index, for an offer. */
export interface SnapshotCapture {
  readonly meta: SnapshotMetadata
  readonly state: Uint8Array
  readonly firstOffset: number
  readonly endOffset: number
  readonly recordBytes: number
  readonly batches: number
}

export type ChunkReadError = 'RANGE_GONE' | 'STORE_FAILED'

/** How long a transfer may stall, and how long a request waits for its answer (defaults: limits.snapshot). */
export interface TransferTiming {
  readonly idleTimeoutMs: number
  readonly requestRetryMs: number
}

export const TRANSFER_TIMING: TransferTiming = { idleTimeoutMs: limits.snapshot.idleTimeoutMs, requestRetryMs: limits.snapshot.requestRetryMs }

export interface SenderHost {
  readonly self: NodeId
  /** Group, topic and partition, for the logs. */
  readonly where: object
  readonly log: ActorLogger
  now(): number
  send(m: Message): void
  /** This replica's term while it leads, else null. */
  leadingTerm(): number | null
  reportSnapshot(to: NodeId, succeeded: boolean): void
  capture(): SnapshotCapture
  /** Record batches from base offset `at` on, below `end`: at most one chunk, the first at `at`. */
  readChunk(at: number, end: number): Promise<Result<Uint8Array[], ChunkReadError>>
  readonly timing?: TransferTiming
  readonly slots?: TransferSlots
}

interface Offer {
  readonly id: number
  readonly to: NodeId
  readonly term: number
  readonly capture: SnapshotCapture
  readonly startedAt: number
  activeAt: number
  sentBytes: number
  sentBatches: number
}

/**
 * Transfers under way in one thread, sent and received (limits.snapshot
 * sendsPerThreadMax, receivesPerThreadMax). Each replica gives back what it took when a
 * transfer ends or it closes; `THREAD_SLOTS` is the thread's (a host that runs several
 * nodes in one thread, as the simulator does, gives each node its own).
 */
export class TransferSlots {
  sending = 0
  receiving = 0
}

export const THREAD_SLOTS = new TransferSlots()

export class SnapshotSender {
  readonly #host: SenderHost
  readonly #offers = new Map<NodeId, Offer>()
  readonly #slots: TransferSlots
  /** Per follower whose last transfer failed: when it may be offered one again, and the wait after the next failure. */
  readonly #retry = new Map<NodeId, { at: number; waitMs: number }>()
  #nextId = 1

  constructor(host: SenderHost) {
    this.#host = host
    this.#slots = host.slots ?? THREAD_SLOTS
  }

  /** Offers in progress, for tests and status. */
  get active(): number {
    return this.#offers.size
  }

  /** The lowest snapshot index offered now (the log view keeps what follows it), or null. */
  floor(): number | null {
    let min: number | null = null
    for (const o of this.#offers.values()) min = min === null ? o.capture.meta.index : Math.min(min, o.capture.meta.index)
    return min
  }

  /** The core would send `to` a snapshot: offer one (or the one already out again). */
  offer(to: NodeId): void {
    const h = this.#host
    const term = h.leadingTerm()
    if (term === null) return
    const known = this.#offers.get(to)
    if (known && known.term === term) {
      this.#sendOffer(known)
      return
    }
    if (known) this.#drop(known, 'a new term', false)
    const retry = this.#retry.get(to)
    if (retry !== undefined && h.now() < retry.at) {
      h.reportSnapshot(to, false)
      return
    }
    if (this.#slots.sending >= limits.snapshot.sendsPerThreadMax) {
      h.log.debug({ ...h.where, to, sending: this.#slots.sending }, 'snapshot transfer deferred: this thread sends as many as it may')
      h.reportSnapshot(to, false)
      return
    }
    const capture = h.capture()
    const now = h.now()
    const o: Offer = { id: this.#nextId++, to, term, capture, startedAt: now, activeAt: now, sentBytes: 0, sentBatches: 0 }
    this.#offers.set(to, o)
    this.#slots.sending++
    const c = capture
    h.log.info(
      { ...h.where, to, index: c.meta.index, term: c.meta.term, stateBytes: c.state.length, firstOffset: c.firstOffset, endOffset: c.endOffset, recordBytes: c.recordBytes, batches: c.batches },
      'snapshot transfer offered to a follower behind the log',
    )
    this.#sendOffer(o)
  }

  #sendOffer(o: Offer): void {
    const c = o.capture
    this.#send(o, { kind: 'offer', id: o.id, stateBytes: c.state.length, firstOffset: c.firstOffset, endOffset: c.endOffset, recordBytes: c.recordBytes, batches: c.batches })
  }

  #send(o: Offer, item: TransferItem): void {
    this.#host.send(transferMessage(this.#host.self, o.to, o.term, o.capture.meta, item))
  }

  /** An item from follower `from` (in a Snap message of `term` about the snapshot `meta` describes). */
  onItem(from: NodeId, term: number, meta: SnapshotMetadata, item: TransferItem): void {
    const h = this.#host
    const o = this.#offers.get(from)
    const current = o !== undefined && o.id === item.id && o.term === term && o.capture.meta.index === meta.index
    if (item.kind === 'end') {
      if (!current) return
      if (item.done) this.#finish(o)
      else this.#drop(o, `the follower ended it: ${item.reason}`, true)
      return
    }
    if (item.kind !== 'ask') return // offers and chunks go the other way
    if (!current || h.leadingTerm() !== o.term) {
      // an offer this leader no longer has (it restarted, or dropped it): the follower stops
      h.send(transferMessage(h.self, from, term, meta, { kind: 'end', id: item.id, done: false, reason: 'no such transfer here' }))
      return
    }
    o.activeAt = h.now()
    if (item.what === 'state') {
      const state = o.capture.state
      if (item.at > state.length) return this.#abort(o, `state asked from ${item.at} of ${state.length} bytes`)
      const bytes = state.subarray(item.at, Math.min(state.length, item.at + limits.snapshot.chunkBytesMax))
      o.sentBytes += bytes.length
      this.#send(o, { kind: 'state', id: o.id, at: item.at, bytes })
      return
    }
    const { firstOffset, endOffset } = o.capture
    if (item.at < firstOffset || item.at >= endOffset) return this.#abort(o, `records asked from ${item.at}, outside [${firstOffset}, ${endOffset})`)
    void h.readChunk(item.at, endOffset).then((r) => {
      if (this.#offers.get(from) !== o) return // ended meanwhile
      if (!r.ok) return this.#abort(o, `${r.error.code}: ${r.error.message}`)
      for (const b of r.value) o.sentBytes += b.length
      o.sentBatches += r.value.length
      this.#send(o, { kind: 'records', id: o.id, at: item.at, batches: r.value })
    })
  }

  /** Drops offers nobody asked for lately, and all of them once this replica no longer leads. */
  tick(): void {
    if (this.#offers.size === 0) return
    const term = this.#host.leadingTerm()
    const now = this.#host.now()
    const idle = (this.#host.timing ?? TRANSFER_TIMING).idleTimeoutMs
    for (const o of [...this.#offers.values()]) {
      if (term !== o.term) this.#drop(o, 'this replica no longer leads', false)
      else if (now - o.activeAt > idle) this.#drop(o, `nothing asked for ${idle} ms`, true)
    }
  }

  /** Ends every offer (the replica closes). */
  close(): void {
    for (const o of [...this.#offers.values()]) this.#release(o)
  }

  #finish(o: Offer): void {
    const h = this.#host
    this.#release(o)
    this.#retry.delete(o.to)
    h.log.info({ ...h.where, to: o.to, index: o.capture.meta.index, bytes: o.sentBytes, batches: o.sentBatches, ms: h.now() - o.startedAt }, 'snapshot transfer to a follower finished')
  }

  /** The transfer cannot go on: the follower is told, and the core tries another snapshot later. */
  #abort(o: Offer, reason: string): void {
    this.#send(o, { kind: 'end', id: o.id, done: false, reason })
    this.#drop(o, reason, true)
  }

  #drop(o: Offer, reason: string, report: boolean): void {
    const h = this.#host
    this.#release(o)
    if (report) {
      const { requestRetryMs } = h.timing ?? TRANSFER_TIMING
      const waitMs = this.#retry.get(o.to)?.waitMs ?? requestRetryMs / 2
      this.#retry.set(o.to, { at: h.now() + waitMs, waitMs: Math.min(8 * requestRetryMs, 2 * waitMs) })
    }
    h.log.warn({ ...h.where, to: o.to, index: o.capture.meta.index, bytes: o.sentBytes, batches: o.sentBatches, ms: h.now() - o.startedAt, reason }, 'snapshot transfer to a follower aborted')
    if (report && h.leadingTerm() === o.term) h.reportSnapshot(o.to, false)
  }

  #release(o: Offer): void {
    if (this.#offers.get(o.to) !== o) return
    this.#offers.delete(o.to)
    this.#slots.sending--
  }
}
