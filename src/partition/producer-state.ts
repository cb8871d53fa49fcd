/**
 * Kafka's idempotence window for one partition (KAFKA_COMPAT.md §2, "Idempotent sequence
 * checks"; Kafka's ProducerStateEntry and ProducerAppendInfo.checkSequence).
 *
 * Per producer id it keeps the epoch and the last `limits.produce.producerBatchesRemembered`
 * (5) appended batches' (firstSeq, lastSeq, baseOffset), oldest first. A batch of `count`
 * records starting at `baseSequence` covers sequences baseSequence … lastSeq, where
 * sequences wrap from INT32_MAX to 0. `check` answers, in this order:
 *   - no producer id (-1), or no state for this id (never seen, or state lost): `new`,
 *     whatever the sequence (KIP-360: UNKNOWN_PRODUCER_ID is legacy);
 *   - same epoch and an exact (firstSeq, lastSeq) match among the remembered batches:
 *     `duplicate` with that batch's baseOffset (success, not an error, as in Kafka);
 *   - an older epoch: INVALID_PRODUCER_EPOCH;
 *   - a newer epoch: `new` if firstSeq is 0, else OUT_OF_ORDER_SEQUENCE;
 *   - same epoch: `new` if firstSeq follows the last batch's lastSeq, else
 *     OUT_OF_ORDER_SEQUENCE — which is also the answer to a retry of a batch older than
 *     the window: it is never silently stored twice.
 * `record` after the batch is appended; a newer epoch forgets the old epoch's batches.
 *
 * This is state-machine state: every replica runs the same checks in apply order, so the
 * window size is part of the replicated semantics — changing it needs all replicas to
 * agree (restore rejects a snapshot whose windows are larger than this build's).
 *
 * Expiry: as Kafka does after producer.id.expiration.ms of silence, `expire(idleBefore)`
 * forgets the producers whose last batch's maxTimestamp is below `idleBefore`. Apply has no
 * clock, so the time comes in an `expire` command the leader proposes (as cleanup carries
 * retention); without it the table would grow with every producer id ever seen. A
 * producer that comes back after expiry is `new` again (KIP-360), so a retry older than
 * the expiry could be stored twice — which is why the expiry is days, not seconds.
 *
 * Invariants (asserted on record, checked on restore): an entry has 1 … 5 batches; each
 * batch's firstSeq follows the previous batch's lastSeq; base offsets increase.
 *
 * Imports base and ./bytes.
 */
import { assert, fail, limits, ok } from '../base/index.js'
import type { Failure, Result } from '../base/index.js'
import { INT16_MAX, INT32_MAX } from './bytes.js'

export type SequenceErrorCode = 'OUT_OF_ORDER_SEQUENCE' | 'INVALID_PRODUCER_EPOCH'

export type SequenceCheck =
  | { readonly kind: 'new' }
  | { readonly kind: 'duplicate'; readonly baseOffset: number }
  | { readonly kind: 'error'; readonly error: Failure<SequenceErrorCode> }

export interface RememberedBatch {
  readonly firstSeq: number
  readonly lastSeq: number
  readonly baseOffset: number
}

/** One producer's state; also the snapshot form (plain data). */
export interface ProducerEntry {
  readonly producerId: number
  readonly epoch: number
  /** maxTimestamp of the last appended batch (for expiry, see the header). */
  readonly lastTimestamp: number
  /** Oldest first. */
  readonly batches: readonly RememberedBatch[]
}

const NEW: SequenceCheck = Object.freeze({ kind: 'new' })
const SEQUENCES = INT32_MAX + 1

/** The sequence after `seq`: INT32_MAX wraps to 0. */
export function nextSequence(seq: number): number {
  return seq === INT32_MAX ? 0 : seq + 1
}

/** The sequence of the last of `count` records starting at `baseSequence`. */
export function lastSequenceOf(baseSequence: number, count: number): number {
  return (baseSequence + count - 1) % SEQUENCES
}

interface MutableEntry {
  epoch: number
  lastTimestamp: number
  batches: RememberedBatch[]
}

export class ProducerState {
  readonly #entries = new Map<number, MutableEntry>()

  /** Producers with state. */
  get size(): number {
    return this.#entries.size
  }

  get(producerId: number): ProducerEntry | undefined {
    const e = this.#entries.get(producerId)
    return e && { producerId, epoch: e.epoch, lastTimestamp: e.lastTimestamp, batches: [...e.batches] }
  }

  check(producerId: number, epoch: number, baseSequence: number, count: number): SequenceCheck {
    if (producerId < 0) return NEW
    const e = this.#entries.get(producerId)
    if (!e) return NEW
    if (epoch < e.epoch) {
      return error('INVALID_PRODUCER_EPOCH', `producer ${producerId}: epoch ${epoch} is older than the current epoch ${e.epoch}`)
    }
    if (epoch > e.epoch) {
      if (baseSequence === 0) return NEW
      return error('OUT_OF_ORDER_SEQUENCE', `producer ${producerId}: new epoch ${epoch} must start at sequence 0, not ${baseSequence}`)
    }
    const lastSeq = lastSequenceOf(baseSequence, count)
    for (const b of e.batches) {
      if (b.firstSeq === baseSequence && b.lastSeq === lastSeq) return { kind: 'duplicate', baseOffset: b.baseOffset }
    }
    const expected = nextSequence(e.batches[e.batches.length - 1]!.lastSeq)
    if (baseSequence === expected) return NEW
    return error(
      'OUT_OF_ORDER_SEQUENCE',
      `producer ${producerId} epoch ${epoch}: sequence ${baseSequence}..${lastSeq} does not follow ${e.batches[e.batches.length - 1]!.lastSeq} (expected ${expected})`,
    )
  }

  /** Remembers a batch that `check` called new and that is now appended at `baseOffset`. */
  record(producerId: number, epoch: number, baseSequence: number, count: number, baseOffset: number, maxTimestamp: number): void {
    if (producerId < 0) return
    assert(this.check(producerId, epoch, baseSequence, count).kind === 'new', () => `record of producer ${producerId} without a new check`)
    let e = this.#entries.get(producerId)
    if (!e) {
      e = { epoch, lastTimestamp: maxTimestamp, batches: [] }
      this.#entries.set(producerId, e)
    } else if (epoch !== e.epoch) {
      // a bumped epoch starts a new sequence space: the old epoch's batches can no longer match
      e.epoch = epoch
      e.batches = []
    }
    const last = e.batches[e.batches.length - 1]
    assert(last === undefined || baseOffset > last.baseOffset, () => `producer ${producerId}: offset ${baseOffset} not after ${last!.baseOffset}`)
    e.batches.push({ firstSeq: baseSequence, lastSeq: lastSequenceOf(baseSequence, count), baseOffset })
    if (e.batches.length > limits.produce.producerBatchesRemembered) e.batches.shift()
    e.lastTimestamp = maxTimestamp
  }

  /** The oldest `lastTimestamp` of any producer, or null when there is none: whether `expire` would forget anyone. */
  oldestTimestamp(): number | null {
    let oldest: number | null = null
    for (const e of this.#entries.values()) if (oldest === null || e.lastTimestamp < oldest) oldest = e.lastTimestamp
    return oldest
  }

  /** Forgets every producer whose last batch's maxTimestamp is below `idleBefore`; answers how many. */
  expire(idleBefore: number): number {
    let n = 0
    for (const [id, e] of this.#entries) {
      if (e.lastTimestamp < idleBefore) {
        this.#entries.delete(id)
        n++
      }
    }
    return n
  }

  /** Every entry, sorted by producer id, so equal states give equal snapshots. */
  toJSON(): ProducerEntry[] {
    const ids = [...this.#entries.keys()].sort((a, b) => a - b)
    return ids.map((id) => this.get(id)!)
  }

  /** The state `toJSON` gave; fails on entries that break the invariants in the header. */
  static fromJSON(entries: readonly ProducerEntry[]): Result<ProducerState, 'MALFORMED_SNAPSHOT'> {
    const state = new ProducerState()
    let prevId = -1
    for (const e of entries) {
      const why = entryProblem(e, prevId)
      if (why !== null) return fail('MALFORMED_SNAPSHOT', `producer state: ${why}`)
      state.#entries.set(e.producerId, { epoch: e.epoch, lastTimestamp: e.lastTimestamp, batches: e.batches.map((b) => ({ ...b })) })
      prevId = e.producerId
    }
    return ok(state)
  }
}

function error(code: SequenceErrorCode, message: string): SequenceCheck {
  return { kind: 'error', error: { code, message } }
}

function entryProblem(e: ProducerEntry, prevId: number): string | null {
  const id = e.producerId
  if (!Number.isSafeInteger(id) || id <= prevId) return `producer id ${id} out of order or invalid`
  if (!Number.isInteger(e.epoch) || e.epoch < 0 || e.epoch > INT16_MAX) return `producer ${id}: epoch ${e.epoch}`
  if (!Number.isSafeInteger(e.lastTimestamp)) return `producer ${id}: timestamp ${e.lastTimestamp}`
  const n = e.batches.length
  if (n < 1 || n > limits.produce.producerBatchesRemembered) return `producer ${id}: ${n} batches remembered`
  for (let i = 0; i < n; i++) {
    const b = e.batches[i]!
    const seqOk = (s: number): boolean => Number.isInteger(s) && s >= 0 && s <= INT32_MAX
    if (!seqOk(b.firstSeq) || !seqOk(b.lastSeq) || !Number.isSafeInteger(b.baseOffset) || b.baseOffset < 0) {
      return `producer ${id}: batch ${i} has bad fields`
    }
    const prev = e.batches[i - 1]
    if (prev && (b.firstSeq !== nextSequence(prev.lastSeq) || b.baseOffset <= prev.baseOffset)) {
      return `producer ${id}: batch ${i} does not follow batch ${i - 1}`
    }
  }
  return null
}
