/**
 * The producing side and the final check of the process-level fault scenarios, shared by
 * crash-run.ts (one broker, kill -9) and cluster-run.ts (three nodes, every fault kind).
 *
 * Four lanes produce to one topic, all the time, each from its own seeded Prng:
 *   idem-send    an idempotent producer's `send`, a few concurrent messages per round
 *   idem-batch   the same producer's `sendBatch`, 1–40 messages over the partitions (some atomic)
 *   plain-send   a plain producer's `send` (its own client)
 *   plain-batch  the plain producer's `sendBatch`
 * Every message carries a unique id in its value (`<lane>#<n>|filler`), and the ledger
 * records each one's outcome: acknowledged (partition, offset, duplicate flag), failed
 * (error code), and the epoch — faults injected so far, as the scenario counts them — in
 * which it was sent and settled. The plain producer is meant to run with `retries: 0`, so
 * that "no value appears twice" holds for every message, not only the idempotent ones.
 *
 * checkLedger is the Jepsen-style oracle (lost write, duplicate, inconsistent offsets).
 *
 * Imports the client and base.
 */
import type { Prng } from '../../src/base/index.js'
import { RaftmqError } from '../../src/client/index.js'
import type { Client, Producer } from '../../src/client/index.js'

export const LANES = ['idem-send', 'idem-batch', 'plain-send', 'plain-batch'] as const
export type Lane = (typeof LANES)[number]

/** One message sent, and what became of it. The ledger lists them in the order they were sent. */
export interface Sent {
  readonly id: string
  readonly lane: Lane
  readonly idempotent: boolean
  readonly partition: number
  readonly value: string
  /** The scenario's epoch (faults injected so far) when it was sent. */
  readonly sentEpoch: number
  state: 'pending' | 'acked' | 'failed'
  offset: number
  duplicate: boolean
  /** The epoch when it was acknowledged (-1: not acknowledged). */
  ackEpoch: number
  error: string
}

export interface LanesOptions {
  readonly topic: string
  readonly partitions: number
  readonly producers: { readonly idem: Producer; readonly plain: Producer }
  /** Each lane takes a fork of it, in LANES order. */
  readonly prng: Prng
  /** The scenario's epoch now. */
  readonly epoch: () => number
  /** Where protocol violations seen while producing go (a message settled twice, ...). */
  readonly problems: string[]
  /** Called on every acknowledgement, after the ledger is updated. */
  readonly onAck?: (m: Sent) => void
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const codeOf = (err: unknown): string => (err instanceof RaftmqError ? err.code : `thrown ${String(err)}`)

/** The four lanes: `start` them, `stop` them (resolves when every lane's last round settled). */
export class Lanes {
  readonly ledger: Sent[] = []
  readonly #o: LanesOptions
  readonly #prng: Map<Lane, Prng>
  readonly #count = new Map<Lane, number>(LANES.map((l) => [l, 0]))
  #stopping = false
  #running: Promise<void>[] = []

  constructor(opts: LanesOptions) {
    this.#o = opts
    this.#prng = new Map(LANES.map((l) => [l, opts.prng.fork()]))
  }

  start(): void {
    this.#running = LANES.map((l) => this.#run(l))
  }

  /** Stops producing; true if every lane finished within `waitMs`. */
  async stop(waitMs: number): Promise<boolean> {
    this.#stopping = true
    let timer: NodeJS.Timeout | undefined
    const done = await Promise.race([Promise.all(this.#running).then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), waitMs)))])
    clearTimeout(timer)
    return done
  }

  pending(): Sent[] {
    return this.ledger.filter((m) => m.state === 'pending')
  }

  #acked(m: Sent, offset: number, duplicate: boolean): void {
    if (m.state !== 'pending') this.#o.problems.push(`${m.id} settled twice`)
    m.state = 'acked'
    m.offset = offset
    m.duplicate = duplicate
    m.ackEpoch = this.#o.epoch()
    this.#o.onAck?.(m)
  }

  #failed(m: Sent, code: string): void {
    if (m.state !== 'pending') this.#o.problems.push(`${m.id} settled twice`)
    m.state = 'failed'
    m.error = code
  }

  #make(lane: Lane, rnd: Prng): Sent {
    const n = this.#count.get(lane)!
    this.#count.set(lane, n + 1)
    const id = `${lane}#${n}`
    // a unique id, then filler of a random length so batches vary in size
    const value = `${id}|${'x'.repeat(rnd.int(4) === 0 ? rnd.range(200, 2_000) : rnd.range(0, 60))}`
    const m: Sent = { id, lane, idempotent: lane.startsWith('idem'), partition: rnd.int(this.#o.partitions), value, sentEpoch: this.#o.epoch(), state: 'pending', offset: -1, duplicate: false, ackEpoch: -1, error: '' }
    this.ledger.push(m)
    return m
  }

  async #run(lane: Lane): Promise<void> {
    const rnd = this.#prng.get(lane)!
    const topic = this.#o.topic
    const producer = lane.startsWith('idem') ? this.#o.producers.idem : this.#o.producers.plain
    while (!this.#stopping) {
      let anyFailed = false
      if (lane.endsWith('send')) {
        const round = Array.from({ length: rnd.range(1, 8) }, () => this.#make(lane, rnd))
        await Promise.all(
          round.map((m) =>
            producer.send({ topic, partition: m.partition, value: m.value }).then(
              (r) => {
                if (r.partition !== m.partition) this.#o.problems.push(`${m.id}: acknowledged on partition ${r.partition}, sent to ${m.partition}`)
                this.#acked(m, r.offset, r.duplicate === true)
              },
              (err: unknown) => {
                anyFailed = true
                this.#failed(m, codeOf(err))
              },
            ),
          ),
        )
      } else {
        const batch = Array.from({ length: rnd.range(1, 40) }, () => this.#make(lane, rnd))
        try {
          const atomic = rnd.chance(0.3)
          const { results } = await producer.sendBatch(
            batch.map((m) => ({ topic, partition: m.partition, value: m.value })),
            { atomic },
          )
          batch.forEach((m, i) => {
            const r = results[i]
            if (!r) {
              this.#o.problems.push(`${m.id}: sendBatch gave no result`)
              this.#failed(m, 'NO_RESULT')
            } else if ('error' in r) {
              anyFailed = true
              this.#failed(m, r.error.code)
            } else this.#acked(m, r.offset, r.duplicate === true)
          })
        } catch (err) {
          anyFailed = true
          for (const m of batch) this.#failed(m, codeOf(err))
        }
      }
      // a dead broker refuses at once: do not spin while it is down
      if (anyFailed) await sleep(rnd.range(20, 100))
    }
  }
}

/** Failed messages by producer and error code (`idem CONNECTION_CLOSED: 3`). */
export function failuresByCode(ledger: readonly Sent[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of ledger) {
    const key = `${m.idempotent ? 'idem' : 'plain'} ${m.error}`
    if (m.state === 'failed') out[key] = (out[key] ?? 0) + 1
  }
  return out
}

/** Reads a partition from `from` up to its high watermark: offsets and values, by position. */
export async function readPartitionLog(client: Client, topic: string, partition: number, from = 0): Promise<PartitionLog> {
  const offsets: number[] = []
  const values: string[] = []
  const dec = new TextDecoder()
  const consumer = client.consumer()
  let offset = from
  let highWatermark = 0
  for (;;) {
    const page = await consumer.fetch({ topic, partition, offset, maxBytes: 1 << 20 })
    highWatermark = page.highWatermark
    for (const msg of page.messages) {
      offsets.push(msg.offset)
      values.push(msg.value === null ? '<null>' : dec.decode(msg.value))
    }
    if (page.messages.length === 0 || page.nextOffset >= page.highWatermark) break
    offset = page.nextOffset
  }
  return { offsets, values, highWatermark }
}

/** A partition read back: offsets and values by position, and the high watermark. */
export interface PartitionLog {
  readonly offsets: number[]
  readonly values: string[]
  readonly highWatermark: number
}

/** What checkLedger found, by Jepsen's names, besides the problem lines. */
export interface LedgerVerdict {
  readonly problems: string[]
  /** Sent, not acknowledged, yet stored (once): the ambiguous outcome of a request in flight at a fault. */
  readonly storedUnacked: number
  readonly lost: number
  readonly duplicated: number
  /** Acknowledged at one place, stored at another. */
  readonly offsetMismatches: number
  readonly outOfOrder: number
}

/**
 * The final check: the log of every partition against the ledger. Offsets are dense from
 * 0, every stored value is one that was sent and is stored once, every acknowledged
 * message is at the offset it was acknowledged with, each lane's acknowledged messages
 * are in the order the lane sent them (per partition), only the idempotent producer gets
 * duplicate answers, and none of its messages failed.
 */
export function checkLedger(ledger: readonly Sent[], logs: readonly PartitionLog[]): LedgerVerdict {
  const problems: string[] = []
  let lost = 0
  let duplicated = 0
  let offsetMismatches = 0
  let outOfOrder = 0
  const where = new Map<string, { partition: number; offset: number }>()
  logs.forEach((log, p) => {
    if (log.offsets.length !== log.highWatermark) problems.push(`partition ${p}: read ${log.offsets.length} messages below high watermark ${log.highWatermark}`)
    const gap = log.offsets.findIndex((o, i) => o !== i)
    if (gap >= 0) problems.push(`partition ${p}: position ${gap} holds offset ${log.offsets[gap]} (offsets must be dense from 0)`)
    log.values.forEach((v, i) => {
      const id = v.split('|')[0]!
      const seen = where.get(id)
      if (seen) {
        duplicated++
        problems.push(`duplicate: ${id} is stored at ${seen.partition}/${seen.offset} and at ${p}/${log.offsets[i]}`)
      } else where.set(id, { partition: p, offset: log.offsets[i]! })
    })
  })
  const sent = new Set(ledger.map((m) => m.id))
  for (const [id, at] of where) if (!sent.has(id)) problems.push(`${at.partition}/${at.offset} holds ${JSON.stringify(id)}, which nobody sent`)

  let storedUnacked = 0
  for (const m of ledger) {
    const at = where.get(m.id)
    if (m.state === 'acked') {
      if (!at) {
        lost++
        problems.push(`lost: ${m.id} was acknowledged at ${m.partition}/${m.offset} (epoch ${m.ackEpoch}) and is not in the log`)
      } else if (at.partition !== m.partition || at.offset !== m.offset) {
        offsetMismatches++
        problems.push(`moved: ${m.id} was acknowledged at ${m.partition}/${m.offset} but is stored at ${at.partition}/${at.offset}`)
      }
      if (m.duplicate && !m.idempotent) problems.push(`${m.id}: a plain producer's message was answered as a duplicate`)
    } else if (at) {
      storedUnacked++
      if (at.partition !== m.partition) problems.push(`${m.id} was sent to partition ${m.partition} but is stored in ${at.partition}`)
    }
  }

  const last = new Map<string, Sent>()
  for (const m of ledger) {
    if (m.state !== 'acked') continue
    const key = `${m.lane} ${m.partition}`
    const prev = last.get(key)
    if (prev && prev.offset >= m.offset) {
      outOfOrder++
      problems.push(`out of order: ${prev.id} at ${m.partition}/${prev.offset} was sent before ${m.id} at ${m.partition}/${m.offset}`)
    }
    last.set(key, m)
  }

  // the idempotent producer retries through every fault: none of its messages may fail
  const idemFailed = ledger.filter((m) => m.idempotent && m.state === 'failed')
  if (idemFailed.length > 0) {
    const some = idemFailed.slice(0, 3).map((m) => `${m.id} (${m.error}, sent in epoch ${m.sentEpoch})`)
    problems.push(`${idemFailed.length} idempotent messages failed instead of being retried, e.g. ${some.join(', ')}`)
  }
  return { problems, storedUnacked, lost, duplicated, offsetMismatches, outOfOrder }
}
