/**
 * Consumer: reads committed messages. `fetch` reads from one partition once (long-polling
 * up to `maxWaitMs` when there is nothing yet); `subscribe` is an async iterator that
 * keeps fetching from a position. Batches arrive as the broker stored them and are
 * decoded (and decompressed) here, on the client: straight into the messages returned,
 * and only the records the page returns (the broker sends whole batches, which may start
 * below the asked offset or run past maxMessages).
 *
 * Every read goes to the partition's leader, and a retriable failure (NOT_LEADER, no
 * leader yet, a lost connection) is re-routed and retried under `retries` (./retry.ts),
 * so a subscription rides through a leader change: it resumes at the first offset it has
 * not yielded, on whichever node leads by then, and yields nothing twice.
 *
 * Imports base, protocol and ./ modules of the client.
 */
import { decodeMessagesInto } from '../protocol/record-batch.js'
import type { ByteView } from '../protocol/record.js'
import type { OffsetSpec } from '../protocol/api.js'
import type { Client } from './client.js'
import { RaftmqError } from './errors.js'
import { atLeader } from './retry.js'
import type { RetryPolicy } from './retry.js'

/**
 * One message. Key, value and header values are Buffers (so `value.toString()` is the
 * text, as KafkaJS users expect; a Buffer is a Uint8Array) viewing the fetched batch (not
 * copies when it is uncompressed): keeping one keeps that batch's memory alive. Messages
 * without headers share one frozen empty `headers` object; a header key repeated in a
 * record keeps its last value.
 */
export interface ConsumedMessage {
  readonly offset: number
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Readonly<Record<string, Buffer | null>>
  readonly timestamp: number
}

const bufferView: ByteView = (buffer, byteOffset, length) => Buffer.from(buffer as ArrayBuffer, byteOffset, length)

export interface FetchResult {
  readonly messages: ConsumedMessage[]
  /** Where to fetch next. */
  readonly nextOffset: number
  readonly highWatermark: number
  readonly logStartOffset: number
}

export interface FetchOptions {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  /** Default 1 MiB (at least one batch is returned even if larger). */
  readonly maxBytes?: number
  readonly maxMessages?: number
  /** Default 0: answer at once. */
  readonly maxWaitMs?: number
}

export interface SubscribeOptions {
  readonly topic: string
  readonly partition: number
  /** An offset, or where the log starts or ends now. */
  readonly from: number | 'earliest' | 'latest'
  readonly maxBytes?: number
  /** Long-poll wait per fetch (default 500 ms). */
  readonly maxWaitMs?: number
  /** Ends the iteration. */
  readonly signal?: AbortSignal
  /**
   * How long the subscription rides out a broker it cannot read from (a restart, a
   * failover, a network cut) before the iterator throws the last error; default: for
   * ever, as a long-lived consumer should. Retriable failures only: anything else throws
   * at once.
   */
  readonly maxOutageMs?: number
  /** Told of each retriable failure the subscription waits out (to log it, or count it). */
  readonly onRetry?: (error: RaftmqError) => void
  /** Told when a fetch succeeds again after retriable failures, with the offset it resumed at. */
  readonly onResume?: (offset: number) => void
}

/** Between tries of a subscription whose broker is gone (the fetch's own retries are spent by then). */
const SUBSCRIBE_RETRY_MS = 500

export interface ConsumerOptions {
  readonly maxBytes?: number
  /** Retries of one fetch or offset lookup after a retriable failure (default 10). */
  readonly retries?: number
  /** The first retry's backoff, doubling after each (default 100 ms). */
  readonly retryBackoffMs?: number
}

export class Consumer {
  readonly #client: Client
  readonly #maxBytes: number
  readonly #retry: RetryPolicy

  constructor(client: Client, opts: ConsumerOptions) {
    this.#client = client
    this.#maxBytes = opts.maxBytes ?? 1 << 20
    // more than a producer's 5: reading is always safe to repeat, and a subscription is a long-lived loop
    this.#retry = { retries: opts.retries ?? 10, retryBackoffMs: opts.retryBackoffMs ?? 100 }
    for (const [name, v] of [['retries', this.#retry.retries], ['retryBackoffMs', this.#retry.retryBackoffMs]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`Consumer: ${name} must be an integer >= 0, got ${v}`)
    }
  }

  async fetch(o: FetchOptions): Promise<FetchResult> {
    const maxWaitMs = o.maxWaitMs ?? 0
    const body = {
      maxWaitMs,
      maxBytes: o.maxBytes ?? this.#maxBytes,
      partitions: [{ topic: o.topic, partition: o.partition, offset: o.offset, ...(o.maxMessages ? { maxMessages: o.maxMessages } : {}) }],
    }
    const p = await atLeader(this.#client, o.topic, o.partition, this.#retry, async (node) => {
      const r = await this.#client.requestNode(node, 'fetch', body, maxWaitMs + 30_000)
      return r.partitions[0]!
    })
    const messages: ConsumedMessage[] = []
    const maxMessages = o.maxMessages ?? Infinity
    for (const bytes of p.batches) {
      if (messages.length >= maxMessages) break
      // a batch may start before the asked offset (batches are not split, and the log
      // start can be mid-batch): the decoder skips those records without decoding them
      const decoded = decodeMessagesInto(bytes, o.offset, maxMessages - messages.length, messages, { view: bufferView })
      if (!decoded.ok) throw new RaftmqError('CORRUPT_MESSAGE', `a fetched batch of ${o.topic}/${o.partition} does not decode: ${decoded.error.message}`)
    }
    const nextOffset = messages.length > 0 ? messages[messages.length - 1]!.offset + 1 : Math.max(o.offset, p.logStartOffset)
    return { messages, nextOffset, highWatermark: p.highWatermark, logStartOffset: p.logStartOffset }
  }

  /**
   * Yields every message from `from` on, waiting for new ones, until `signal` aborts;
   * through a lost broker it waits (`maxOutageMs`) and resumes at the next offset it has
   * not yielded, so it yields nothing twice and skips nothing.
   */
  async *subscribe(o: SubscribeOptions): AsyncGenerator<ConsumedMessage> {
    for await (const page of this.pages(o)) {
      for (const m of page) {
        if (o.signal?.aborted) return
        yield m
      }
    }
  }

  /** What subscribe yields, a fetched page at a time (each non-empty): for readers that write in bulk. */
  async *pages(o: SubscribeOptions): AsyncGenerator<ConsumedMessage[]> {
    let offset = typeof o.from === 'number' ? o.from : await this.listOffset(o.topic, o.partition, o.from)
    let failingSince: number | null = null
    while (!o.signal?.aborted) {
      let page: FetchResult
      try {
        page = await this.fetch({ topic: o.topic, partition: o.partition, offset, maxBytes: o.maxBytes, maxWaitMs: o.maxWaitMs ?? 500 })
      } catch (err) {
        if (!(err instanceof RaftmqError) || !err.retriable || o.signal?.aborted) throw err
        failingSince ??= Date.now()
        if (Date.now() - failingSince >= (o.maxOutageMs ?? Infinity)) throw err
        o.onRetry?.(err)
        await this.#client.sleep(SUBSCRIBE_RETRY_MS)
        continue
      }
      if (failingSince !== null) o.onResume?.(offset)
      failingSince = null
      if (page.messages.length > 0) yield page.messages
      offset = page.nextOffset
    }
  }

  /** The earliest (log start) or latest (high watermark) offset, from the partition's leader. */
  async listOffset(topic: string, partition: number, spec: OffsetSpec): Promise<number> {
    const p = await atLeader(this.#client, topic, partition, this.#retry, async (node) => {
      const r = await this.#client.requestNode(node, 'listOffsets', { partitions: [{ topic, partition, spec }] })
      return r.partitions[0]!
    })
    return p.offset!
  }
}
