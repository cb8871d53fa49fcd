/**
 * Consumer: reads committed messages. `fetch` reads from one partition once (long-polling
 * up to `maxWaitMs` when there is nothing yet); `subscribe` is an async iterator that
 * keeps fetching from a position. Batches arrive as the broker stored them and are
 * decoded (and decompressed) here, on the client: straight into the messages returned,
 * and only the records the page returns (the broker sends whole batches, which may start
 * below the asked offset or run past maxMessages).
 *
 * Imports base, protocol and ./ modules of the client.
 */
import { decodeMessagesInto } from '../protocol/record-batch.js'
import type { WireError } from '../protocol/errors.js'
import type { Client } from './client.js'
import { RaftmqError } from './errors.js'

/**
 * One message. Key, value and header values are views into the fetched batch (not copies
 * when it is uncompressed): keeping one keeps that batch's memory alive. Messages without
 * headers share one frozen empty `headers` object; a header key repeated in a record
 * keeps its last value.
 */
export interface ConsumedMessage {
  readonly offset: number
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  readonly headers: Readonly<Record<string, Uint8Array | null>>
  readonly timestamp: number
}

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
}

export interface ConsumerOptions {
  readonly maxBytes?: number
}

export class Consumer {
  readonly #client: Client
  readonly #maxBytes: number

  constructor(client: Client, opts: ConsumerOptions) {
    this.#client = client
    this.#maxBytes = opts.maxBytes ?? 1 << 20
  }

  async fetch(o: FetchOptions): Promise<FetchResult> {
    const maxWaitMs = o.maxWaitMs ?? 0
    const r = await this.#client.request(
      'fetch',
      {
        maxWaitMs,
        maxBytes: o.maxBytes ?? this.#maxBytes,
        partitions: [{ topic: o.topic, partition: o.partition, offset: o.offset, ...(o.maxMessages ? { maxMessages: o.maxMessages } : {}) }],
      },
      maxWaitMs + 30_000,
    )
    const p = r.partitions[0]!
    if (p.error) throw RaftmqError.from(p.error as WireError)
    const messages: ConsumedMessage[] = []
    const maxMessages = o.maxMessages ?? Infinity
    for (const bytes of p.batches) {
      if (messages.length >= maxMessages) break
      // a batch may start before the asked offset (batches are not split, and the log
      // start can be mid-batch): the decoder skips those records without decoding them
      const decoded = decodeMessagesInto(bytes, o.offset, maxMessages - messages.length, messages)
      if (!decoded.ok) throw new RaftmqError('CORRUPT_MESSAGE', `a fetched batch of ${o.topic}/${o.partition} does not decode: ${decoded.error.message}`)
    }
    const nextOffset = messages.length > 0 ? messages[messages.length - 1]!.offset + 1 : Math.max(o.offset, p.logStartOffset)
    return { messages, nextOffset, highWatermark: p.highWatermark, logStartOffset: p.logStartOffset }
  }

  /** Yields every message from `from` on, waiting for new ones, until `signal` aborts. */
  async *subscribe(o: SubscribeOptions): AsyncGenerator<ConsumedMessage> {
    let offset: number
    if (typeof o.from === 'number') offset = o.from
    else {
      const r = await this.#client.request('listOffsets', { partitions: [{ topic: o.topic, partition: o.partition, spec: o.from }] })
      const p = r.partitions[0]!
      if (p.error) throw RaftmqError.from(p.error as WireError)
      offset = p.offset!
    }
    while (!o.signal?.aborted) {
      const page = await this.fetch({ topic: o.topic, partition: o.partition, offset, maxBytes: o.maxBytes, maxWaitMs: o.maxWaitMs ?? 500 })
      for (const m of page.messages) {
        if (o.signal?.aborted) return
        yield m
      }
      offset = page.nextOffset
    }
  }
}
