/**
 * Producer: sends messages as Kafka RecordBatch v2 batches, one per partition, the
 * batches of one turn together in one request (./produce-requests.ts). `send` takes
 * the single-message path (a one-record batch, unless concurrent sends to the same
 * partition coalesce); `sendBatch` sends all its messages for one partition as one
 * batch — one Raft proposal, one disk sync on the broker — and answers per message.
 *
 * Batching (like librdkafka): each partition has a queue; a batch leaves when the
 * partition has fewer than `maxInFlight` requests out (or `lingerMs` passed) and takes
 * up to `batchMaxMessages` / `batchMaxBytes` of what queued meanwhile, for its
 * partition's leader. Retriable failures (NOT_LEADER, LEADER_NOT_AVAILABLE, TIMEOUT, a
 * closed or refused connection, ...) resend the same bytes up to `retries` times, each
 * retry routed afresh (./retry.ts): at once to the leader a NOT_LEADER hint names, else
 * after a backoff and a metadata refresh.
 *
 * Idempotence: the producer gets a producer id once; record i of a batch carries the
 * partition's sequence baseSequence + i, and a retry resends the same sequences, so the
 * broker — the old leader or the new one, which has the batch through Raft if the old
 * one committed it — answers it with the original offsets instead of storing it twice. An
 * idempotent producer keeps one request in flight per partition, `send` and `sendBatch`
 * together (a batch takes its sequences only when its turn comes), so retries reach the
 * broker in sequence order and a failed batch can never leave a gap that later batches
 * would trip over; if a batch fails for good — including a batch the broker answered
 * with errors, which an idempotent batch gets for all of its records or none — the
 * producer takes a new producer id for what follows.
 *
 * Imports base, protocol and ./ modules of the client.
 */
import type { Compression } from '../protocol/compression.js'
import { encodeRecordBatch } from '../protocol/record-batch.js'
import type { RecordInput } from '../protocol/record.js'
import { produceResults } from '../protocol/api.js'
import type { ProduceResult } from '../protocol/api.js'
import { formatMessage } from '../protocol/errors.js'
import type { WireError } from '../protocol/errors.js'
import type { Client } from './client.js'
import { RaftmqError } from './errors.js'
import { ProduceRequests } from './produce-requests.js'
import { RetrySchedule, asRaftmqError } from './retry.js'

export type Bytes = Uint8Array | string

export interface Message {
  readonly topic: string
  /** Default: by key hash, or, without a key, the topic's sticky partition (see Producer). */
  readonly partition?: number
  readonly key?: Bytes | null
  readonly value: Bytes | null
  readonly headers?: Readonly<Record<string, Bytes | null>>
  /** Milliseconds since the epoch; default now. */
  readonly timestamp?: number
}

export interface SendResult {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly timestamp: number
  readonly duplicate?: true
}

export type BatchItemResult =
  | { readonly topic: string; readonly partition: number; readonly offset: number; readonly duplicate?: true }
  | { readonly topic: string; readonly partition: number; readonly error: { readonly code: string; readonly message: string } }

export interface ProducerOptions {
  /** Exactly-once storage of retries (default false). */
  readonly idempotent?: boolean
  /** How long a partition's first queued message waits for company (default 0). */
  readonly lingerMs?: number
  readonly batchMaxMessages?: number
  readonly batchMaxBytes?: number
  /** Requests in flight per partition (default 5; an idempotent producer uses 1). */
  readonly maxInFlight?: number
  readonly compression?: Compression
  readonly retries?: number
  readonly retryBackoffMs?: number
  /** The broker's time limit for one produce request (default 30 s). */
  readonly timeoutMs?: number
}

interface Queued {
  readonly record: RecordInput
  readonly bytes: number
  readonly resolve: (r: SendResult) => void
  readonly reject: (e: RaftmqError) => void
}

interface PartitionQueue {
  readonly topic: string
  readonly partition: number
  queued: Queued[]
  queuedBytes: number
  inFlight: number
  timer: NodeJS.Timeout | null
  flushQueued: boolean
  /** Idempotence: the next sequence number of this partition. */
  sequence: number
  /** Idempotence: settles when the partition's request in flight (if any) is answered. */
  turn: Promise<void>
}

const enc = new TextEncoder()

function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? `an object (${(v as object).constructor?.name ?? 'Object'})` : `a ${typeof v}`
}

/**
 * What a message given to send or sendBatch must be, checked before anything is queued:
 * a value the record encoder cannot take (a number, an object, undefined) would otherwise
 * fail deep inside it with a misleading message, or be stored as null.
 */
function checkMessage(m: Message, where: string): void {
  const bad = (field: string, reason: string): never => {
    throw new RaftmqError('INVALID_ARGUMENT', formatMessage('INVALID_ARGUMENT', { field: `${where}${field}`, reason }))
  }
  if (m === null || typeof m !== 'object') bad('', `a message is an object { topic, value, ... }, got ${typeName(m)}`)
  if (typeof m.topic !== 'string' || m.topic.length === 0) bad('.topic', `a topic name (a non-empty string), got ${typeName(m.topic)}`)
  const isBytes = (v: unknown): boolean => typeof v === 'string' || v instanceof Uint8Array
  if (m.value === undefined) bad('.value', 'undefined: give a string or bytes, or null for a message without a value (a tombstone)')
  if (m.value !== null && !isBytes(m.value)) bad('.value', `a string, a Uint8Array/Buffer or null, got ${typeName(m.value)}${typeof m.value === 'number' || typeof m.value === 'object' ? ' (convert it, e.g. String(v) or JSON.stringify(v))' : ''}`)
  if (m.key !== undefined && m.key !== null && !isBytes(m.key)) bad('.key', `a string, a Uint8Array/Buffer, null or absent, got ${typeName(m.key)}`)
  if (m.partition !== undefined && (!Number.isSafeInteger(m.partition) || m.partition < 0)) bad('.partition', `a partition index (an integer >= 0) or absent, got ${String(m.partition)}`)
  if (m.timestamp !== undefined && (!Number.isSafeInteger(m.timestamp) || m.timestamp < 0)) bad('.timestamp', `milliseconds since the epoch (an integer >= 0) or absent, got ${String(m.timestamp)}`)
  if (m.headers !== undefined) {
    if (m.headers === null || typeof m.headers !== 'object') bad('.headers', `an object of header name to value, got ${typeName(m.headers)}`)
    for (const [k, v] of Object.entries(m.headers)) if (v !== null && !isBytes(v)) bad(`.headers[${JSON.stringify(k)}]`, `a string, a Uint8Array/Buffer or null, got ${typeName(v)}`)
  }
}

function recordOf(m: Message): { record: RecordInput; bytes: number } {
  const headers = m.headers ? Object.entries(m.headers).map(([key, value]) => ({ key, value })) : undefined
  const record: RecordInput = { key: m.key ?? null, value: m.value, headers, timestamp: m.timestamp ?? Date.now() }
  let bytes = 32
  if (typeof m.value === 'string') bytes += m.value.length * 3
  else if (m.value) bytes += m.value.byteLength
  if (typeof m.key === 'string') bytes += m.key.length * 3
  else if (m.key) bytes += m.key.byteLength
  return { record, bytes }
}

/** Kafka's murmur2, so keyed messages land where Kafka's default partitioner puts them. */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995
  let h = (0x9747b28c ^ data.length) | 0
  const n4 = data.length & ~3
  for (let i = 0; i < n4; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)
    k = Math.imul(k, m)
    k ^= k >>> 24
    k = Math.imul(k, m)
    h = Math.imul(h, m) ^ k
  }
  const rest = data.length & 3
  if (rest === 3) h ^= data[n4 + 2]! << 16
  if (rest >= 2) h ^= data[n4 + 1]! << 8
  if (rest >= 1) {
    h ^= data[n4]!
    h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h
}

export class Producer {
  readonly #client: Client
  readonly #idempotent: boolean
  readonly #lingerMs: number
  readonly #batchMaxMessages: number
  readonly #batchMaxBytes: number
  readonly #maxInFlight: number
  readonly #compression: Compression
  readonly #retries: number
  readonly #retryBackoffMs: number
  readonly #timeoutMs: number
  readonly #queues = new Map<string, PartitionQueue>()
  readonly #requests: ProduceRequests
  #producer: Promise<{ producerId: number; producerEpoch: number }> | null = null
  /**
   * Keyless messages of each topic go to one partition, chosen at random, until a batch
   * for it leaves; then another is chosen (Kafka's sticky partitioner, KIP-480): keyless
   * messages batch well and still spread, and processes that send one message each do not
   * all start at partition 0.
   */
  readonly #sticky = new Map<string, { partition: number; of: number }>()

  constructor(client: Client, opts: ProducerOptions) {
    this.#client = client
    this.#idempotent = opts.idempotent ?? false
    this.#lingerMs = opts.lingerMs ?? 0
    this.#batchMaxMessages = opts.batchMaxMessages ?? 10_000
    this.#batchMaxBytes = opts.batchMaxBytes ?? 1 << 20
    this.#maxInFlight = this.#idempotent ? 1 : (opts.maxInFlight ?? 5)
    this.#compression = opts.compression ?? 'none'
    this.#retries = opts.retries ?? 5
    this.#retryBackoffMs = opts.retryBackoffMs ?? 100
    this.#timeoutMs = opts.timeoutMs ?? 30_000
    this.#requests = new ProduceRequests(client, this.#timeoutMs)
    for (const [name, v, min] of [
      ['lingerMs', this.#lingerMs, 0],
      ['batchMaxMessages', this.#batchMaxMessages, 1],
      ['batchMaxBytes', this.#batchMaxBytes, 1],
      ['maxInFlight', this.#maxInFlight, 1],
      ['retries', this.#retries, 0],
    ] as const) {
      if (!Number.isInteger(v) || v < min) throw new RangeError(`Producer: ${name} must be an integer >= ${min}, got ${v}`)
    }
  }

  /** The message's partition: at once when it names one (no await per message of a batch). */
  #partitionOf(m: Message): number | Promise<number> {
    if (m.partition !== undefined) return m.partition
    return this.#pickPartition(m)
  }

  async #pickPartition(m: Message): Promise<number> {
    const n = await this.#client.partitionCount(m.topic)
    if (m.key !== undefined && m.key !== null) {
      const k = typeof m.key === 'string' ? enc.encode(m.key) : m.key
      return (murmur2(k) & 0x7fffffff) % n
    }
    const s = this.#sticky.get(m.topic)
    if (s !== undefined && s.of === n) return s.partition
    const partition = Math.floor(Math.random() * n)
    this.#sticky.set(m.topic, { partition, of: n })
    return partition
  }

  /** A batch for `partition` of `topic` leaves: the topic's keyless messages move on to another partition. */
  #unstick(topic: string, partition: number): void {
    const s = this.#sticky.get(topic)
    if (s === undefined || s.partition !== partition || s.of < 2) return
    this.#sticky.set(topic, { partition: (partition + 1 + Math.floor(Math.random() * (s.of - 1))) % s.of, of: s.of })
  }

  #queue(topic: string, partition: number): PartitionQueue {
    const key = `${partition}@${topic}`
    let q = this.#queues.get(key)
    if (!q) {
      q = { topic, partition, queued: [], queuedBytes: 0, inFlight: 0, timer: null, flushQueued: false, sequence: 0, turn: Promise.resolve() }
      this.#queues.set(key, q)
    }
    return q
  }

  #identity(): Promise<{ producerId: number; producerEpoch: number }> {
    if (!this.#idempotent) return Promise.resolve({ producerId: -1, producerEpoch: -1 })
    this.#producer ??= this.#client.request('initProducerId', {}).catch((err: unknown) => {
      this.#producer = null
      throw err
    })
    return this.#producer
  }

  /** Sends one message; resolves once it is committed and durable, with its offset. */
  async send(m: Message): Promise<SendResult> {
    checkMessage(m, 'message')
    const p = this.#partitionOf(m)
    const partition = typeof p === 'number' ? p : await p
    const q = this.#queue(m.topic, partition)
    const { record, bytes } = recordOf(m)
    return new Promise<SendResult>((resolve, reject) => {
      q.queued.push({ record, bytes, resolve, reject })
      q.queuedBytes += bytes
      this.#maybeFlush(q)
    })
  }

  #maybeFlush(q: PartitionQueue): void {
    if (q.queued.length === 0 || q.inFlight >= this.#maxInFlight) return
    const full = q.queued.length >= this.#batchMaxMessages || q.queuedBytes >= this.#batchMaxBytes
    if (this.#lingerMs > 0 && !full) {
      q.timer ??= setTimeout(() => {
        q.timer = null
        this.#flush(q)
      }, this.#lingerMs)
      return
    }
    // sends made in the same burst of synchronous work join one batch
    if (q.flushQueued) return
    q.flushQueued = true
    queueMicrotask(() => {
      q.flushQueued = false
      this.#flush(q)
    })
  }

  #flush(q: PartitionQueue): void {
    if (q.queued.length === 0 || q.inFlight >= this.#maxInFlight) return
    let n = 0
    let bytes = 0
    while (n < q.queued.length && n < this.#batchMaxMessages && (n === 0 || bytes + q.queued[n]!.bytes <= this.#batchMaxBytes)) bytes += q.queued[n++]!.bytes
    const items = q.queued.splice(0, n)
    q.queuedBytes -= bytes
    q.inFlight++
    void this.#produce(q, items.map((i) => i.record), false).then((outcome) => {
      q.inFlight--
      if ('error' in outcome) {
        for (const it of items) it.reject(outcome.error)
      } else {
        const { topic, partition } = q
        items.forEach((it, i) => {
          const r = outcome.results[i]!
          if ('error' in r) it.reject(RaftmqError.from(r.error))
          else if (r.duplicate) it.resolve({ topic, partition, offset: r.offset, timestamp: it.record.timestamp!, duplicate: true })
          else it.resolve({ topic, partition, offset: r.offset, timestamp: it.record.timestamp! })
        })
      }
      this.#maybeFlush(q)
    })
  }

  /**
   * Encodes `records` as one batch for `q`'s partition and sends it, retrying retriable
   * failures with the same bytes. Resolves with per-record results or the error that
   * ended it (never rejects).
   */
  async #produce(q: PartitionQueue, records: RecordInput[], atomic: boolean): Promise<{ results: readonly ProduceResult[] } | { error: RaftmqError }> {
    this.#unstick(q.topic, q.partition)
    if (!this.#idempotent) return this.#produceNow(q, records, atomic)
    // one request in flight per partition: wait for the one before (a send's or a sendBatch's)
    const before = q.turn
    let done!: () => void
    q.turn = new Promise((resolve) => (done = resolve))
    await before
    try {
      return await this.#produceNow(q, records, atomic)
    } finally {
      done()
    }
  }

  async #produceNow(q: PartitionQueue, records: RecordInput[], atomic: boolean): Promise<{ results: readonly ProduceResult[] } | { error: RaftmqError }> {
    const schedule = new RetrySchedule({ retries: this.#retries, retryBackoffMs: this.#retryBackoffMs })
    let id: { producerId: number; producerEpoch: number }
    for (;;) {
      try {
        id = await this.#identity()
        break
      } catch (err) {
        // initProducerId goes to any node: a lost connection or a controller election is worth a retry
        const given = await this.#backoff(schedule, asRaftmqError(err), false)
        if (given) return { error: given }
      }
    }
    let batch: Uint8Array
    try {
      batch = encodeRecordBatch(records, {
        compression: this.#compression,
        producerId: id.producerId,
        producerEpoch: id.producerEpoch,
        baseSequence: this.#idempotent ? q.sequence : -1,
      })
      if (this.#idempotent) q.sequence = (q.sequence + records.length) % 0x8000_0000
    } catch (err) {
      return { error: err instanceof RaftmqError ? err : new RaftmqError('INVALID_RECORD', err instanceof Error ? err.message : String(err), { cause: err }) }
    }
    for (;;) {
      let error: RaftmqError
      let answeredBy: number | undefined
      try {
        const { node, result: p } = await this.#requests.send(q.topic, q.partition, batch, atomic)
        if (!p.error) {
          if (p.count !== records.length) return { error: new RaftmqError('INVALID_RESPONSE', `the broker answered for ${p.count} records of a batch of ${records.length}`) }
          // an idempotent batch is stored whole or not at all: an error means its sequences were not
          if (this.#idempotent && p.errors?.length) this.#restartSequences()
          return { results: produceResults({ ...p, count: p.count }) }
        }
        error = RaftmqError.from(p.error as WireError)
        answeredBy = node
      } catch (err) {
        error = asRaftmqError(err)
      }
      const given = await this.#backoff(schedule, error, this.#client.reroute(q.topic, q.partition, error, answeredBy))
      if (given) {
        if (this.#idempotent) this.#restartSequences()
        return { error: given }
      }
    }
  }

  /** Waits before the next attempt after `error`; returns the error to give up with when no attempt is left. */
  async #backoff(schedule: RetrySchedule, error: RaftmqError, hinted: boolean): Promise<RaftmqError | null> {
    const waitMs = error.retriable ? schedule.next(hinted) : null
    if (waitMs === null) return error
    if (waitMs === 0) return null
    try {
      await this.#client.sleep(waitMs)
      return null
    } catch (err) {
      return asRaftmqError(err) // the client closed during the backoff
    }
  }

  /** A sequence range that never made it: start afresh (a new producer id) rather than leave a gap. */
  #restartSequences(): void {
    this.#producer = null
    for (const q of this.#queues.values()) q.sequence = 0
  }

  /**
   * Sends `messages` with one request: all of a partition's messages form one batch (one
   * Raft proposal). Resolves with one result per message, in order. With `atomic`, a
   * partition's batch is stored whole or not at all.
   */
  async sendBatch(messages: readonly Message[], opts: { atomic?: boolean } = {}): Promise<{ results: BatchItemResult[] }> {
    if (!Array.isArray(messages)) throw new RaftmqError('INVALID_ARGUMENT', formatMessage('INVALID_ARGUMENT', { field: 'messages', reason: `an array of messages, got ${typeName(messages)}` }))
    // all or nothing: a bad message anywhere sends none of them
    for (let i = 0; i < messages.length; i++) checkMessage(messages[i]!, `messages[${i}]`)
    const results: BatchItemResult[] = new Array(messages.length)
    const groups = new Map<PartitionQueue, number[]>()
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!
      const p = this.#partitionOf(m)
      const q = this.#queue(m.topic, typeof p === 'number' ? p : await p)
      const g = groups.get(q)
      if (g) g.push(i)
      else groups.set(q, [i])
    }
    await Promise.all(
      [...groups].map(async ([q, idx]) => {
        const outcome = await this.#produce(q, idx.map((i) => recordOf(messages[i]!).record), opts.atomic === true)
        const { topic, partition } = q
        // plain literals of one shape per kind: spreading per message cost more than the encoding
        idx.forEach((i, k) => {
          if ('error' in outcome) results[i] = { topic, partition, error: { code: outcome.error.code, message: outcome.error.message } }
          else {
            const r = outcome.results[k]!
            if ('error' in r) results[i] = { topic, partition, error: { code: r.error.code, message: r.error.message } }
            else if (r.duplicate) results[i] = { topic, partition, offset: r.offset, duplicate: true }
            else results[i] = { topic, partition, offset: r.offset }
          }
        })
      }),
    )
    return { results }
  }

  /** Waits until everything queued has been sent and answered. */
  async flush(): Promise<void> {
    while ([...this.#queues.values()].some((q) => q.queued.length > 0 || q.inFlight > 0)) await new Promise((r) => setTimeout(r, 1))
  }
}
