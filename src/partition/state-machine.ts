/**
 * PartitionStateMachine: what a partition's committed Raft entries mean (DESIGN.md §3).
 * Every replica applies the same entries in the same order and so computes the same
 * offsets, the same idempotence answers and the same results; it is pure — no I/O, no
 * clock, no randomness — and the host feeds it every committed entry in Raft order.
 *
 * State: `nextOffset` (offsets are dense, from 0), `logStartOffset`, the producers'
 * idempotence windows (./producer-state), and an ordered index of the stored batches,
 * `{ baseOffset, lastOffset, raftIndex, bytes, maxTimestamp }`. The index holds no record
 * bytes: the host stores each applied batch (`batchOf(entry.data)`, its baseOffset
 * stamped) under its offset, and a fetch asks `locate` which batches hold the offsets it
 * wants. A batch's record count, producer fields and maxTimestamp are read from its own
 * header when its command is decoded (./batch-header): the command repeats none of them,
 * so what the index, retention and idempotence go by is what the stored batch says.
 *
 * Consequences for the host:
 *   - Raft log compaction may drop entries up to `compactableRaftIndex()` (also returned
 *     by each cleanup as `dropThroughRaftIndex`) and no further, whatever the snapshot
 *     index: entries after it may hold retained records.
 *   - `snapshot()` is the metadata only (offsets, index, producers). A replica restored
 *     from it also needs the record batches the index names: a partition snapshot sent
 *     to a lagging follower carries them beside these bytes (src/replica/snapshot-*.ts),
 *     and the follower checks each one against this index before it stores it.
 *   - Apply has no clock: retention is the leader's `retentionCutoff(...)` proposed as a
 *     cleanup command.
 *
 * Answers:
 *   - produce: the idempotence check, then either new offsets nextOffset …
 *     nextOffset + recordCount − 1, the original offsets of a duplicate (nothing stored),
 *     or a sequence/epoch error (nothing stored: a batch is atomic on every replica).
 *     Record i of the batch as proposed has offset baseOffset + i (a range, never one
 *     result object per record); when the leader re-framed a batch without some bad
 *     records, mapping back is the leader's job.
 *   - cleanup: logStartOffset moves forward only and never past nextOffset; batches
 *     wholly below it leave the index; a batch it cuts through stays (Kafka: the log
 *     start may fall mid-batch, and the consumer skips the records below it).
 *   - expire: the idempotence state of producers silent since before its time is
 *     forgotten (producer-state.ts).
 *   - an empty entry (a new leader's) is a noop; a command that does not decode is
 *     answered `invalid` on every replica alike and changes nothing — throwing instead
 *     would wedge the group on an entry that can never be removed. The host decides how
 *     loudly to report it. A new command type therefore needs every replica upgraded
 *     before a leader proposes it, or old replicas would skip what new ones apply.
 *
 * Retention rule (`retentionCutoff`): like Kafka's segment deletion but per batch, always
 * a prefix of the index. Time: drop leading batches whose maxTimestamp < now −
 * retentionMs, stopping at the first younger one (a future-dated batch holds back the
 * ones after it); it may empty the log, as Kafka's time retention may. Size: drop leading
 * batches while the retained bytes exceed retentionBytes, but never the newest batch
 * (Kafka never deletes the active segment for size), so a batch larger than the limit
 * stays readable until the next one arrives.
 *
 * Invariants (asserted): raftIndex strictly increases across applies; the index is
 * sorted and contiguous (each baseOffset = previous lastOffset + 1) and ends at
 * nextOffset − 1; logStartOffset <= nextOffset; the index is empty exactly when
 * logStartOffset = nextOffset, and otherwise its first batch contains logStartOffset.
 *
 * Imports base and ./commands, ./producer-state, ./bytes.
 */
import { assert, fail, ok } from '../base/index.js'
import type { Failure, Result } from '../base/index.js'
import { ByteReader, ByteWriter, INT32_MAX } from './bytes.js'
import { decodeCommand } from './commands.js'
import type { CleanupCommand, CommandDecodeError, ProduceCommand } from './commands.js'
import { ProducerState } from './producer-state.js'
import type { ProducerEntry, RememberedBatch, SequenceErrorCode } from './producer-state.js'

/** One produce command's batch, as the index keeps it. */
export interface StoredBatch {
  readonly baseOffset: number
  readonly lastOffset: number
  /** The Raft entry holding the batch. */
  readonly raftIndex: number
  /** The RecordBatch's size (the command header excluded). */
  readonly bytes: number
  readonly maxTimestamp: number
}

export type ProduceErrorCode = SequenceErrorCode

export interface ProduceAccepted {
  readonly kind: 'produce'
  readonly ok: true
  readonly baseOffset: number
  readonly count: number
  /** An idempotent retry of a stored batch: these are the original offsets, nothing was stored. */
  readonly duplicate: boolean
}

export interface ProduceRejected {
  readonly kind: 'produce'
  readonly ok: false
  readonly count: number
  readonly error: Failure<ProduceErrorCode>
}

export interface CleanupApplied {
  readonly kind: 'cleanup'
  readonly logStartOffset: number
  /** Raft entries up to here hold no retained batch: the host may compact its log through it. */
  readonly dropThroughRaftIndex: number
}

export interface ExpireApplied {
  readonly kind: 'expire'
  /** Producers whose idempotence state was forgotten. */
  readonly producersExpired: number
}

export interface Noop {
  readonly kind: 'noop'
}

export interface CommandInvalid {
  readonly kind: 'invalid'
  readonly error: Failure<CommandDecodeError>
}

export type ApplyResult = ProduceAccepted | ProduceRejected | CleanupApplied | ExpireApplied | Noop | CommandInvalid

export type LocateResult =
  | { readonly kind: 'ok'; readonly batches: readonly StoredBatch[] }
  /** offset = nextOffset: nothing there yet (long-poll). */
  | { readonly kind: 'none' }
  | {
      readonly kind: 'error'
      readonly error: Failure<'OFFSET_OUT_OF_RANGE'>
      readonly logStartOffset: number
      readonly highWatermark: number
    }

export interface RetentionPolicy {
  readonly nowMs: number
  /** Null, absent or negative: no time limit (Kafka's -1). */
  readonly retentionMs?: number | null
  /** Null, absent or negative: no size limit (Kafka's -1). */
  readonly retentionBytes?: number | null
}

/**
 * Batches one `locate` returns when the caller gives no bound: each is one Raft entry to
 * read, so a fetch of tiny batches under a large maxBytes stays bounded.
 */
export const LOCATE_BATCHES_MAX_DEFAULT = 10_000

const SNAPSHOT_VERSION = 1
const SNAPSHOT_HEADER_BYTES = 1 + 8 + 8 + 8 + 4 + 8
const SNAPSHOT_BATCH_BYTES = 4 + 8 + 4 + 8
const SNAPSHOT_PRODUCER_BYTES = 8 + 2 + 8 + 1
const SNAPSHOT_REMEMBERED_BYTES = 4 + 4 + 8
const NOOP: Noop = Object.freeze({ kind: 'noop' })

export class PartitionStateMachine {
  #appliedIndex = 0
  #nextOffset = 0
  #logStartOffset = 0
  /** Sorted by baseOffset (and so by raftIndex); see the invariants in the header. */
  #batches: StoredBatch[] = []
  #retainedBytes = 0
  #producers = new ProducerState()

  /** Raft index of the last entry applied (or skipped). */
  get appliedIndex(): number {
    return this.#appliedIndex
  }

  get nextOffset(): number {
    return this.#nextOffset
  }

  get logStartOffset(): number {
    return this.#logStartOffset
  }

  /** Batches in the index. */
  get batchCount(): number {
    return this.#batches.length
  }

  /** Bytes of the batches in the index (a batch the log start cuts through counts whole). */
  get retainedBytes(): number {
    return this.#retainedBytes
  }

  /** Read-only view of the idempotence state (for status and tests). */
  get producers(): Pick<ProducerState, 'get' | 'size' | 'toJSON'> {
    return this.#producers
  }

  /** One past the last committed offset: only applied (committed) entries reach this object. */
  highWatermark(): number {
    return this.#nextOffset
  }

  /** The oldest last-batch timestamp of any idempotent producer, or null: whether an expire command would forget anyone. */
  oldestProducerTimestamp(): number | null {
    return this.#producers.oldestTimestamp()
  }

  /** The highest Raft index whose entries hold no retained batch (see the header). */
  compactableRaftIndex(): number {
    return this.#batches.length === 0 ? this.#appliedIndex : this.#batches[0]!.raftIndex - 1
  }

  /** Applies the committed entry `raftIndex`; entries must arrive in increasing index order. */
  apply(raftIndex: number, data: Uint8Array): ApplyResult {
    this.#advance(raftIndex)
    if (data.byteLength === 0) return NOOP
    const decoded = decodeCommand(data)
    if (!decoded.ok) return { kind: 'invalid', error: decoded.error }
    const cmd = decoded.value
    let result: ApplyResult
    switch (cmd.type) {
      case 'produce':
        result = this.#produce(raftIndex, cmd)
        break
      case 'cleanup':
        result = this.#cleanup(cmd)
        break
      case 'expire':
        result = { kind: 'expire', producersExpired: this.#producers.expire(cmd.idleBefore) }
        break
    }
    this.#checkEnds()
    return result
  }

  /** The entry `raftIndex` is not a partition command (a configuration change): only appliedIndex moves. */
  skip(raftIndex: number): void {
    this.#advance(raftIndex)
  }

  #advance(raftIndex: number): void {
    assert(Number.isSafeInteger(raftIndex) && raftIndex > this.#appliedIndex, () => `apply of Raft entry ${raftIndex} after ${this.#appliedIndex}`)
    this.#appliedIndex = raftIndex
  }

  #produce(raftIndex: number, cmd: ProduceCommand): ProduceAccepted | ProduceRejected {
    // every fact of the batch from its own header (./batch-header): the command holds no copy to drift
    const { producerId, producerEpoch, baseSequence, recordCount: count, maxTimestamp } = cmd.header
    const seq = this.#producers.check(producerId, producerEpoch, baseSequence, count)
    if (seq.kind === 'error') return { kind: 'produce', ok: false, count, error: seq.error }
    if (seq.kind === 'duplicate') return accepted(seq.baseOffset, count, true)
    const baseOffset = this.#nextOffset
    const lastOffset = baseOffset + count - 1
    assert(Number.isSafeInteger(lastOffset + 1), () => `offsets past the safe integers at ${baseOffset} + ${count}`)
    const prev = this.#batches[this.#batches.length - 1]
    assert(prev === undefined || (prev.lastOffset + 1 === baseOffset && prev.raftIndex < raftIndex), 'index stays contiguous and ordered')
    this.#batches.push({ baseOffset, lastOffset, raftIndex, bytes: cmd.batch.byteLength, maxTimestamp })
    this.#retainedBytes += cmd.batch.byteLength
    this.#nextOffset = lastOffset + 1
    this.#producers.record(producerId, producerEpoch, baseSequence, count, baseOffset, maxTimestamp)
    return accepted(baseOffset, count, false)
  }

  #cleanup(cmd: CleanupCommand): CleanupApplied {
    // clamp rather than reject: the leader computed the offset from a state no later than
    // this one, so beyond nextOffset is a leader bug, and moving back would resurrect nothing
    const target = Math.min(cmd.logStartOffset, this.#nextOffset)
    if (target > this.#logStartOffset) {
      this.#logStartOffset = target
      let drop = 0
      while (drop < this.#batches.length && this.#batches[drop]!.lastOffset < target) {
        this.#retainedBytes -= this.#batches[drop]!.bytes
        drop++
      }
      this.#batches.splice(0, drop)
    }
    return { kind: 'cleanup', logStartOffset: this.#logStartOffset, dropThroughRaftIndex: this.compactableRaftIndex() }
  }

  /**
   * The batches to read for a fetch from `offset`: starting with the one that contains it,
   * then following ones while their bytes fit in `maxBytes` — always at least one, however
   * large — and at most `maxBatches`.
   */
  locate(offset: number, maxBytes: number, maxBatches: number = LOCATE_BATCHES_MAX_DEFAULT): LocateResult {
    assert(Number.isSafeInteger(offset), () => `locate at ${offset}`)
    assert(maxBytes >= 0 && maxBatches >= 1, () => `locate bounds ${maxBytes} bytes, ${maxBatches} batches`)
    if (offset < this.#logStartOffset || offset > this.#nextOffset) {
      return {
        kind: 'error',
        error: {
          code: 'OFFSET_OUT_OF_RANGE',
          message: `offset ${offset} is outside [${this.#logStartOffset}, ${this.#nextOffset}]`,
        },
        logStartOffset: this.#logStartOffset,
        highWatermark: this.#nextOffset,
      }
    }
    if (offset === this.#nextOffset) return { kind: 'none' }
    const first = this.#batchContaining(offset)
    const out: StoredBatch[] = [this.#batches[first]!]
    let bytes = this.#batches[first]!.bytes
    for (let i = first + 1; i < this.#batches.length && out.length < maxBatches; i++) {
      const b = this.#batches[i]!
      if (bytes + b.bytes > maxBytes) break
      bytes += b.bytes
      out.push(b)
    }
    return { kind: 'ok', batches: out }
  }

  /** Index of the batch holding `offset`, which lies in [logStartOffset, nextOffset). */
  #batchContaining(offset: number): number {
    let lo = 0
    let hi = this.#batches.length - 1
    // the last batch whose baseOffset <= offset; contiguity makes it the one containing offset
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (this.#batches[mid]!.baseOffset <= offset) lo = mid
      else hi = mid - 1
    }
    const b = this.#batches[lo]
    assert(b !== undefined && b.baseOffset <= offset && offset <= b.lastOffset, () => `no batch holds offset ${offset}`)
    return lo
  }

  /** The logStartOffset a cleanup command should carry now, or null if retention drops nothing. */
  retentionCutoff(policy: RetentionPolicy): number | null {
    const { nowMs, retentionMs, retentionBytes } = policy
    const batches = this.#batches
    let cut = this.#logStartOffset
    if (retentionMs != null && retentionMs >= 0) {
      const oldestKeptMs = nowMs - retentionMs
      let i = 0
      while (i < batches.length && batches[i]!.maxTimestamp < oldestKeptMs) i++
      cut = Math.max(cut, i === batches.length ? this.#nextOffset : batches[i]!.baseOffset)
    }
    if (retentionBytes != null && retentionBytes >= 0 && batches.length > 0) {
      let total = this.#retainedBytes
      let i = 0
      while (i < batches.length - 1 && total > retentionBytes) total -= batches[i++]!.bytes
      cut = Math.max(cut, batches[i]!.baseOffset)
    }
    return cut > this.#logStartOffset ? cut : null
  }

  /** The whole state in a compact binary form; `restore` gives it back exactly. */
  snapshot(): Uint8Array {
    const producers = this.#producers.toJSON()
    let size = SNAPSHOT_HEADER_BYTES + this.#batches.length * SNAPSHOT_BATCH_BYTES + 4
    for (const p of producers) size += SNAPSHOT_PRODUCER_BYTES + p.batches.length * SNAPSHOT_REMEMBERED_BYTES
    const w = new ByteWriter(size)
    w.u8(SNAPSHOT_VERSION)
    w.i64(this.#appliedIndex)
    w.i64(this.#nextOffset)
    w.i64(this.#logStartOffset)
    w.u32(this.#batches.length)
    w.i64(this.#batches.length === 0 ? this.#nextOffset : this.#batches[0]!.baseOffset)
    for (const b of this.#batches) {
      // offsets are implied by contiguity: the count is enough
      w.u32(b.lastOffset - b.baseOffset + 1)
      w.i64(b.raftIndex)
      w.u32(b.bytes)
      w.i64(b.maxTimestamp)
    }
    w.u32(producers.length)
    for (const p of producers) {
      w.i64(p.producerId)
      w.i16(p.epoch)
      w.i64(p.lastTimestamp)
      w.u8(p.batches.length)
      for (const b of p.batches) {
        w.i32(b.firstSeq)
        w.i32(b.lastSeq)
        w.i64(b.baseOffset)
      }
    }
    return w.finish()
  }

  /** The state machine `snapshot()` described; a snapshot that breaks an invariant is refused. */
  static restore(bytes: Uint8Array): Result<PartitionStateMachine, 'MALFORMED_SNAPSHOT'> {
    const bad = (why: string) => fail('MALFORMED_SNAPSHOT', `partition snapshot: ${why}`)
    const r = new ByteReader(bytes)
    if (r.remaining < SNAPSHOT_HEADER_BYTES) return bad(`${bytes.byteLength} bytes`)
    const version = r.u8()
    if (version !== SNAPSHOT_VERSION) return bad(`version ${version}`)
    const appliedIndex = r.i64()
    const nextOffset = r.i64()
    const logStartOffset = r.i64()
    const batchCount = r.u32()
    const firstBaseOffset = r.i64()
    if (appliedIndex === null || nextOffset === null || logStartOffset === null || firstBaseOffset === null) return bad('unsafe integer')
    if (appliedIndex < 0 || logStartOffset < 0 || logStartOffset > nextOffset) return bad(`applied ${appliedIndex}, offsets [${logStartOffset}, ${nextOffset})`)
    if (firstBaseOffset < 0 || firstBaseOffset > logStartOffset) return bad(`first batch at ${firstBaseOffset}, log start ${logStartOffset}`)
    if (r.remaining < batchCount * SNAPSHOT_BATCH_BYTES) return bad(`${batchCount} batches in ${r.remaining} bytes`)

    const batches: StoredBatch[] = []
    let baseOffset = firstBaseOffset
    let retainedBytes = 0
    let prevRaftIndex = 0
    for (let i = 0; i < batchCount; i++) {
      const count = r.u32()
      const raftIndex = r.i64()
      const size = r.u32()
      const maxTimestamp = r.i64()
      if (count < 1 || raftIndex === null || raftIndex <= prevRaftIndex || raftIndex > appliedIndex || maxTimestamp === null) {
        return bad(`batch ${i} has bad fields`)
      }
      const lastOffset = baseOffset + count - 1
      if (lastOffset >= nextOffset) return bad(`batch ${i} ends at ${lastOffset}, past next offset ${nextOffset}`)
      batches.push({ baseOffset, lastOffset, raftIndex, bytes: size, maxTimestamp })
      retainedBytes += size
      prevRaftIndex = raftIndex
      baseOffset = lastOffset + 1
    }
    if (baseOffset !== nextOffset) return bad(`batches end at ${baseOffset - 1}, next offset ${nextOffset}`)
    if ((batches.length === 0) !== (logStartOffset === nextOffset)) return bad('log start does not fall in the first batch')
    if (batches.length > 0 && logStartOffset > batches[0]!.lastOffset) return bad('log start is past the first batch')

    if (r.remaining < 4) return bad('truncated before the producers')
    const producerCount = r.u32()
    const entries: ProducerEntry[] = []
    for (let i = 0; i < producerCount; i++) {
      if (r.remaining < SNAPSHOT_PRODUCER_BYTES) return bad(`truncated in producer ${i}`)
      const producerId = r.i64()
      const epoch = r.i16()
      const lastTimestamp = r.i64()
      const n = r.u8()
      if (producerId === null || lastTimestamp === null) return bad(`producer ${i}: unsafe integer`)
      if (r.remaining < n * SNAPSHOT_REMEMBERED_BYTES) return bad(`truncated in producer ${producerId}`)
      const remembered: RememberedBatch[] = []
      for (let k = 0; k < n; k++) {
        const firstSeq = r.i32()
        const lastSeq = r.i32()
        const batchOffset = r.i64()
        if (batchOffset === null || batchOffset >= nextOffset || firstSeq < 0 || lastSeq < 0 || lastSeq > INT32_MAX) {
          return bad(`producer ${producerId}: remembered batch ${k} has bad fields`)
        }
        remembered.push({ firstSeq, lastSeq, baseOffset: batchOffset })
      }
      entries.push({ producerId, epoch, lastTimestamp, batches: remembered })
    }
    if (r.remaining !== 0) return bad(`${r.remaining} trailing bytes`)
    const producers = ProducerState.fromJSON(entries)
    if (!producers.ok) return producers

    const m = new PartitionStateMachine()
    m.#appliedIndex = appliedIndex
    m.#nextOffset = nextOffset
    m.#logStartOffset = logStartOffset
    m.#batches = batches
    m.#retainedBytes = retainedBytes
    m.#producers = producers.value
    m.assertInvariants()
    return ok(m)
  }

  /** Every invariant of the header, in O(batches): for tests and after restore. */
  assertInvariants(): void {
    this.#checkEnds()
    let bytes = 0
    for (let i = 0; i < this.#batches.length; i++) {
      const b = this.#batches[i]!
      const prev = this.#batches[i - 1]
      assert(b.baseOffset <= b.lastOffset, () => `batch ${i} is empty`)
      assert(prev === undefined || (b.baseOffset === prev.lastOffset + 1 && b.raftIndex > prev.raftIndex), () => `batch ${i} does not follow batch ${i - 1}`)
      assert(b.raftIndex <= this.#appliedIndex, () => `batch ${i} from Raft entry ${b.raftIndex}, applied ${this.#appliedIndex}`)
      bytes += b.bytes
    }
    assert(bytes === this.#retainedBytes, () => `retained bytes ${this.#retainedBytes}, batches hold ${bytes}`)
  }

  /** The O(1) part of the invariants, checked after every command. */
  #checkEnds(): void {
    const start = this.#logStartOffset
    const next = this.#nextOffset
    assert(0 <= start && start <= next, () => `log start ${start}, next offset ${next}`)
    const first = this.#batches[0]
    const last = this.#batches[this.#batches.length - 1]
    if (first === undefined || last === undefined) {
      assert(start === next, () => `no batches, yet offsets [${start}, ${next}) are retained`)
    } else {
      assert(first.baseOffset <= start && start <= first.lastOffset, () => `log start ${start} outside the first batch [${first.baseOffset}, ${first.lastOffset}]`)
      assert(last.lastOffset + 1 === next, () => `last batch ends at ${last.lastOffset}, next offset ${next}`)
    }
  }
}

function accepted(baseOffset: number, count: number, duplicate: boolean): ProduceAccepted {
  return { kind: 'produce', ok: true, baseOffset, count, duplicate }
}
