/**
 * PartitionReplica: one partition's Raft group replica inside a worker — a GroupActor
 * over LevelDB storage applying to a PartitionStateMachine — and the produce, fetch and
 * retention logic around it.
 *
 * Produce: the batch's fixed header and CRC-32C are checked here (never on the main
 * thread), and then its records are walked (decompressed first if need be; a large
 * compressed batch arrives already walked by the codec pool): the CRC proves only that
 * the bytes are the ones the producer sent, not that they are well-formed records, and a
 * batch stored with a malformed record could never be read back — every consumer's
 * fetch of it would fail. The walk reads varints and copies nothing (about 0.2 µs a
 * record). Oversized records reject the whole batch when it is atomic or idempotent;
 * otherwise the good records are re-framed into a new batch and proposed, and the
 * refused records' positions are merged back into the answer: a summary
 * `{ count, baseOffset, errors }`, never one result per record. One request is one
 * proposal of one entry; requests that arrive during a disk sync share the next one
 * (group commit in GroupActor).
 *
 * Housekeeping, on the leader, when the host asks: retention (a `cleanup` command) and
 * idempotent producer expiry (an `expire` command); apply has no clock, so the leader's
 * clock goes into the command.
 *
 * Storage: the Raft log is the record store (each record's bytes are written once, in
 * the synced Raft write); the state machine indexes offsets to Raft entries, and fetch
 * reads the batch back from its entry and stamps its baseOffset. The state machine's own
 * state is saved without sync every few seconds; after a crash it is rebuilt by
 * re-applying the (synced) log from the last saved point.
 *
 * Imports base, raft, protocol, storage, partition and ./actor.
 */
import { limits } from '../base/index.js'
import type { Prng } from '../base/index.js'
import { EntryType } from '../raft/index.js'
import type { Entry, Ready } from '../raft/index.js'
import { checkBatch, recordSizes, reframe, withBaseOffset } from '../protocol/record-batch.js'
import { wireError } from '../protocol/errors.js'
import type { WireError } from '../protocol/errors.js'
import { LevelRaftStorage } from '../storage/index.js'
import { PartitionStateMachine, batchOf, encodeCleanup, encodeExpire, encodeProduceBatch, encodeProduceMessage } from '../partition/index.js'
import type { ApplyResult } from '../partition/index.js'
import { GroupActor } from './actor.js'
import type { ActorLogger, ActorProposeError } from './actor.js'
import type { ProduceSummary, WireErrorLike } from './worker-messages.js'

export interface ReplicaSpec {
  readonly groupId: number
  readonly dir: string
  readonly nodeId: number
  readonly voters: readonly number[]
  readonly topic: string
  readonly partition: number
  readonly retentionMs: number | null
  readonly retentionBytes: number | null
  readonly electionTicks: number
}

export type ProduceOutcome = { readonly ok: true; readonly summary: ProduceSummary } | { readonly ok: false; readonly error: WireErrorLike }

export type FetchOutcome =
  | { readonly ok: true; readonly batches: Uint8Array[]; readonly highWatermark: number; readonly logStartOffset: number }
  | { readonly ok: false; readonly error: WireErrorLike }

interface Waiter {
  readonly offset: number
  readonly wake: () => void
}

/** Save the state machine's state after this many applied entries or this long, whichever first. */
const SAVE_EVERY_ENTRIES = 50_000
const SAVE_EVERY_MS = 5_000
/** How long opening a single-voter replica waits for it to elect itself. */
const OPEN_LEADER_WAIT_MS = 5_000

export class PartitionReplica {
  readonly spec: ReplicaSpec
  readonly #storage: LevelRaftStorage
  readonly #sm: PartitionStateMachine
  readonly #actor: GroupActor<ApplyResult>
  readonly #log: ActorLogger
  readonly #waiters = new Set<Waiter>()
  #savedIndex: number
  #savedAt = Date.now()
  #saving: Promise<void> | null = null
  /** Raft entries through here hold no retained record and may be deleted once the state is saved past them. */
  #compactable = 0

  private constructor(spec: ReplicaSpec, storage: LevelRaftStorage, sm: PartitionStateMachine, log: ActorLogger, prng: Prng) {
    this.spec = spec
    this.#storage = storage
    this.#sm = sm
    this.#log = log
    this.#savedIndex = sm.appliedIndex
    this.#actor = new GroupActor<ApplyResult>({
      groupId: spec.groupId,
      nodeId: spec.nodeId,
      storage: { raft: storage, persist: (rd: Ready) => storage.persist(rd) },
      stateMachine: { apply: (e: Entry) => this.#apply(e) },
      prng,
      applied: sm.appliedIndex,
      raft: { electionTicks: spec.electionTicks, heartbeatTicks: 1 },
      log,
      onApplied: () => this.#afterApply(),
    })
  }

  static async open(spec: ReplicaSpec, log: ActorLogger, prng: Prng): Promise<PartitionReplica> {
    const opened = await LevelRaftStorage.open(spec.dir, { voters: spec.voters })
    if (!opened.ok) throw new Error(`group ${spec.groupId}: ${opened.error.message}`)
    const storage = opened.value
    const saved = storage.loadApplied()
    let sm = new PartitionStateMachine()
    if (saved) {
      const restored = PartitionStateMachine.restore(saved.blob)
      if (!restored.ok) throw new Error(`group ${spec.groupId}: saved partition state is unreadable: ${restored.error.message}`)
      sm = restored.value
    }
    const replica = new PartitionReplica(spec, storage, sm, log, prng)
    log.info({ group: spec.groupId, topic: spec.topic, partition: spec.partition, applied: sm.appliedIndex, nextOffset: sm.nextOffset }, 'partition replica opened')
    if (spec.voters.length === 1 && spec.voters[0] === spec.nodeId) {
      // a lone voter elects itself at once; answer only then, so a topic is writable as
      // soon as its creation is acknowledged
      replica.#actor.campaign()
      const until = Date.now() + OPEN_LEADER_WAIT_MS
      // and has re-applied its whole log (its new term's first entry included), so reads
      // right after a restart never see less than was acknowledged before it
      while (!replica.#caughtUp() && Date.now() < until) await new Promise((r) => setTimeout(r, 1))
    }
    return replica
  }

  #caughtUp(): boolean {
    const a = this.#actor
    return a.isLeader() && a.appliedIndex >= a.node.lastIndex
  }

  get groupId(): number {
    return this.spec.groupId
  }

  tick(): void {
    this.#actor.tick()
  }

  #apply(e: Entry): ApplyResult {
    // configuration changes are the Raft layer's business; their bytes are no command
    if (e.type !== EntryType.Normal) {
      this.#sm.skip(e.index)
      return { kind: 'noop' }
    }
    return this.#sm.apply(e.index, e.data)
  }

  #afterApply(): void {
    for (const w of this.#waiters) if (this.#sm.nextOffset > w.offset) w.wake()
    const compactable = this.#sm.compactableRaftIndex()
    // retention freed Raft entries: save now so they can be deleted now
    const freed = compactable > this.#compactable
    this.#compactable = Math.max(this.#compactable, compactable)
    const due = freed || this.#sm.appliedIndex - this.#savedIndex >= SAVE_EVERY_ENTRIES || Date.now() - this.#savedAt >= SAVE_EVERY_MS
    if (due && !this.#saving) this.#saving = this.#save().finally(() => (this.#saving = null))
  }

  async #save(): Promise<void> {
    const index = this.#sm.appliedIndex
    if (index === this.#savedIndex) return
    await this.#storage.saveApplied(index, this.#sm.snapshot())
    this.#savedIndex = index
    this.#savedAt = Date.now()
    // entries at or below the saved point are never re-applied; delete those retention dropped
    const through = Math.min(this.#compactable, this.#savedIndex)
    if (through > this.#storage.firstIndex() - 1) await this.#storage.compact(through)
  }

  #notLeader(): WireError {
    const leader = this.#actor.node.leader
    return wireError('NOT_LEADER', { topic: this.spec.topic, partition: this.spec.partition }, leader ? { leader } : {})
  }

  #proposeError(code: ActorProposeError, message: string): WireError {
    switch (code) {
      case 'NOT_LEADER':
      case 'TRANSFER_IN_PROGRESS':
      case 'PROPOSAL_DROPPED':
        return this.#notLeader()
      case 'STOPPED':
        return wireError('SHUTTING_DOWN')
      case 'UNCOMMITTED_LIMIT':
        return wireError('TOO_MANY_REQUESTS', { limit: `${limits.raft.uncommittedBytesMax} uncommitted bytes` })
      default:
        return wireError('INTERNAL', { reason: `${code}: ${message}` })
    }
  }

  /** `verifiedSizes`: the record sizes, when the codec pool already decompressed and measured the batch. */
  async produce(batch: Uint8Array, atomic: boolean, verifiedSizes?: readonly number[]): Promise<ProduceOutcome> {
    if (!this.#actor.isLeader()) return { ok: false, error: this.#notLeader() }
    const checked = checkBatch(batch)
    if (!checked.ok) return { ok: false, error: checked.error }
    const h = checked.value
    if (h.transactional || h.control) {
      return { ok: false, error: wireError('INVALID_RECORD', { reason: 'transactional and control batches are not supported' }) }
    }
    // the CRC covers the producer fields but not their sense; a produce command refuses these (commands.ts)
    if (h.producerId < -1) return { ok: false, error: wireError('INVALID_RECORD', { reason: `producer id ${h.producerId}: -1 or a producer's id` }) }
    if (h.producerId >= 0 && (h.producerEpoch < 0 || h.baseSequence < 0)) {
      const reason = `idempotent producer ${h.producerId} with epoch ${h.producerEpoch} and base sequence ${h.baseSequence}`
      return { ok: false, error: wireError('INVALID_RECORD', { reason }) }
    }
    // every record is walked, compressed or not (see the header); the CRC was checked above
    const sizes = verifiedSizes
      ? { ok: true as const, value: verifiedSizes }
      : recordSizes(batch, { maxBytes: limits.produce.batchDecompressedBytesMax, verifyCrc: false })
    if (!sizes.ok) return { ok: false, error: sizes.error }
    const max = limits.produce.messageBytesMax
    const count = sizes.value.length
    const bad: number[] = []
    for (let i = 0; i < count; i++) if (sizes.value[i]! > max) bad.push(i)
    if (bad.length === 0) return this.#proposeBatch(batch, h.recordCount, h, atomic)
    const tooLarge = (i: number): WireErrorLike => wireError('MESSAGE_TOO_LARGE', { bytes: sizes.value[i]!, limit: max })
    if (atomic || h.producerId >= 0 || bad.length === count) {
      // all or nothing: an idempotent batch's sequence range cannot have holes
      const rejected = wireError('BATCH_REJECTED')
      const errors = sizes.value.map((_, i) => ({ index: i, error: bad.includes(i) ? tooLarge(i) : rejected }))
      return { ok: true, summary: { count, errors } }
    }
    const kept = sizes.value.map((_, i) => i).filter((i) => !bad.includes(i))
    const framed = reframe(batch, kept, { maxBytes: limits.produce.batchDecompressedBytesMax })
    if (!framed.ok) return { ok: false, error: framed.error }
    const outcome = await this.#proposeBatch(framed.value, kept.length, h, atomic)
    if (!outcome.ok) return outcome
    // back to the positions the client sent: the kept records' errors move to their places
    const s = outcome.summary
    const errors = [...bad.map((i) => ({ index: i, error: tooLarge(i) })), ...(s.errors ?? []).map((e) => ({ index: kept[e.index]!, error: e.error }))]
    errors.sort((a, b) => a.index - b.index)
    return { ok: true, summary: { ...s, count, errors } }
  }

  async #proposeBatch(
    batch: Uint8Array,
    recordCount: number,
    h: { producerId: number; producerEpoch: number; baseSequence: number; maxTimestamp: number },
    atomic: boolean,
  ): Promise<ProduceOutcome> {
    const fields = { atomic, producerId: h.producerId, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence, maxTimestamp: h.maxTimestamp }
    const cmd = recordCount === 1 ? encodeProduceMessage(fields, batch) : encodeProduceBatch({ ...fields, recordCount }, batch)
    const r = await this.#actor.propose([cmd])
    if (!r.ok) return { ok: false, error: this.#proposeError(r.error.code, r.error.message) }
    const applied = r.value.results[0]!
    if (applied.kind !== 'produce') return { ok: false, error: wireError('INTERNAL', { reason: `produce applied as ${applied.kind}` }) }
    if (!applied.ok) {
      const error: WireErrorLike = { code: applied.error.code, message: applied.error.message }
      return { ok: true, summary: { count: applied.count, errors: Array.from({ length: applied.count }, (_, index) => ({ index, error })) } }
    }
    const summary = { count: applied.count, baseOffset: applied.baseOffset }
    return { ok: true, summary: applied.duplicate ? { ...summary, duplicate: true } : summary }
  }

  offsets(): { highWatermark: number; logStartOffset: number } {
    return { highWatermark: this.#sm.highWatermark(), logStartOffset: this.#sm.logStartOffset }
  }

  /**
   * Committed batches from `offset`, up to `maxBytes` (at least one batch) and about
   * `maxMessages` records; waits up to `maxWaitMs` for data at the end of the log.
   * `cancelled` ends the wait early.
   */
  async fetch(offset: number, maxBytes: number, maxMessages: number, maxWaitMs: number, cancelled?: Promise<void>): Promise<FetchOutcome> {
    // locate bounds batches, not records: a batch holds at least one record, so maxMessages batches is enough
    let loc = this.#sm.locate(offset, maxBytes, Math.max(1, maxMessages))
    if (loc.kind === 'none' && maxWaitMs > 0) {
      await this.#waitForData(offset, maxWaitMs, cancelled)
      loc = this.#sm.locate(offset, maxBytes, Math.max(1, maxMessages))
    }
    const { highWatermark, logStartOffset } = this.offsets()
    if (loc.kind === 'error') {
      return { ok: false, error: wireError('OFFSET_OUT_OF_RANGE', { offset, logStartOffset: loc.logStartOffset, highWatermark: loc.highWatermark }, { details: { logStartOffset: loc.logStartOffset, highWatermark: loc.highWatermark } }) }
    }
    if (loc.kind === 'none') return { ok: true, batches: [], highWatermark, logStartOffset }
    const wanted: typeof loc.batches[number][] = []
    let records = 0
    for (const b of loc.batches) {
      wanted.push(b)
      records += b.lastOffset - b.baseOffset + 1
      if (records >= maxMessages) break
    }
    const first = wanted[0]!.raftIndex
    const last = wanted[wanted.length - 1]!.raftIndex
    const read = await this.#storage.readEntries(first, last + 1)
    // compacted away meanwhile: answer with what is left; the client asks again from its position
    const entries = read.ok ? read.value : []
    const byIndex = new Map(entries.map((e) => [e.index, e]))
    const batches: Uint8Array[] = []
    for (const b of wanted) {
      const e = byIndex.get(b.raftIndex)
      if (!e) break
      batches.push(withBaseOffset(batchOf(e.data), b.baseOffset))
    }
    return { ok: true, batches, highWatermark, logStartOffset }
  }

  #waitForData(offset: number, maxWaitMs: number, cancelled?: Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#waiters.delete(w)
        resolve()
      }
      const w: Waiter = { offset, wake: done }
      const timer = setTimeout(done, Math.min(maxWaitMs, limits.fetch.maxWaitMsMax))
      this.#waiters.add(w)
      void cancelled?.then(done)
    })
  }

  /** Leader only: proposes a cleanup if retention drops anything now. */
  async enforceRetention(nowMs: number): Promise<void> {
    if (!this.#actor.isLeader() || (this.spec.retentionMs === null && this.spec.retentionBytes === null)) return
    const cutoff = this.#sm.retentionCutoff({ nowMs, retentionMs: this.spec.retentionMs, retentionBytes: this.spec.retentionBytes })
    if (cutoff === null || cutoff <= this.#sm.logStartOffset) return
    const r = await this.#actor.propose([encodeCleanup(cutoff)])
    if (r.ok) this.#log.info({ group: this.spec.groupId, logStartOffset: cutoff }, 'retention advanced the log start')
  }

  /** Leader only: proposes an expire if some idempotent producer was last heard of before `idleBefore` (ms). */
  async expireProducers(idleBefore: number): Promise<void> {
    if (!this.#actor.isLeader()) return
    const oldest = this.#sm.oldestProducerTimestamp()
    if (oldest === null || oldest >= idleBefore) return
    const r = await this.#actor.propose([encodeExpire(idleBefore)])
    if (!r.ok) return
    const applied = r.value.results[0]
    if (applied?.kind === 'expire') this.#log.info({ group: this.spec.groupId, producers: applied.producersExpired, idleBefore }, 'forgot idle idempotent producers')
  }

  async close(): Promise<void> {
    await this.#actor.stop()
    for (const w of this.#waiters) w.wake()
    while (this.#saving) await this.#saving
    await this.#save()
    await this.#storage.close()
  }
}
