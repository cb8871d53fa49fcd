/**
 * ProduceRequests: gathers the partition batches a producer sends in one turn of work into
 * as few produce requests as the protocol allows, as Kafka's producer drains every ready
 * partition into one request per broker. A producer spread over 8 partitions otherwise
 * sends 8 small requests where 1 would do: the broker pays per request (a frame, a parse,
 * a response) and batches shrink as partitions grow (bench/results/profile.md §2).
 *
 * A request names each partition once and carries one `atomic` flag, so batches for a
 * partition already in the open request, or with the other flag, open another request;
 * so do batches past `requestBytesMax` or the protocol's partition count. Each batch is
 * answered alone: its partition's entry of the response, or the request's failure.
 *
 * Imports base, protocol and ./ modules of the client.
 */
import { limits } from '../base/index.js'
import { wireLimits } from '../protocol/api.js'
import type { ProducePartitionResult } from '../protocol/api.js'
import type { Client } from './client.js'
import { RaftmqError } from './errors.js'

/** Batch bytes in one request: well under the frame limit, so a request always frames. */
export const PRODUCE_REQUEST_BYTES_MAX = limits.protocol.frameBytesMax / 4

interface Pending {
  readonly topic: string
  readonly partition: number
  readonly batch: Uint8Array
  readonly resolve: (r: ProducePartitionResult) => void
  readonly reject: (e: RaftmqError) => void
}

interface OpenRequest {
  readonly atomic: boolean
  readonly entries: Pending[]
  readonly keys: Set<string>
  bytes: number
}

export class ProduceRequests {
  readonly #client: Client
  readonly #timeoutMs: number
  readonly #requestBytesMax: number
  #open: OpenRequest[] = []
  #scheduled = false

  constructor(client: Client, timeoutMs: number, requestBytesMax = PRODUCE_REQUEST_BYTES_MAX) {
    this.#client = client
    this.#timeoutMs = timeoutMs
    this.#requestBytesMax = requestBytesMax
  }

  /** Sends `batch` to one partition in the next request; rejects with a RaftmqError if that request fails. */
  send(topic: string, partition: number, batch: Uint8Array, atomic: boolean): Promise<ProducePartitionResult> {
    return new Promise((resolve, reject) => {
      const key = `${partition}@${topic}`
      let r = this.#open.find(
        (o) => o.atomic === atomic && !o.keys.has(key) && o.entries.length < wireLimits.partitionsPerRequestMax && o.bytes + batch.length <= this.#requestBytesMax,
      )
      if (!r) {
        r = { atomic, entries: [], keys: new Set(), bytes: 0 }
        this.#open.push(r)
      }
      r.entries.push({ topic, partition, batch, resolve, reject })
      r.keys.add(key)
      r.bytes += batch.length
      this.#schedule()
    })
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    // two microtask hops: every partition queue flushed in this turn has encoded its batch by then
    queueMicrotask(() =>
      queueMicrotask(() => {
        this.#scheduled = false
        const open = this.#open
        this.#open = []
        for (const r of open) void this.#request(r)
      }),
    )
  }

  async #request(r: OpenRequest): Promise<void> {
    const partitions = r.entries.map((e) => ({ topic: e.topic, partition: e.partition, batch: e.batch }))
    let answer
    try {
      answer = await this.#client.request('produce', { timeoutMs: this.#timeoutMs, atomic: r.atomic, partitions }, this.#timeoutMs + 5_000)
    } catch (err) {
      const e = err instanceof RaftmqError ? err : new RaftmqError('INTERNAL', String(err), { cause: err })
      for (const p of r.entries) p.reject(e)
      return
    }
    r.entries.forEach((p, i) => {
      const got = answer.partitions[i]
      if (got && got.topic === p.topic && got.partition === p.partition) p.resolve(got)
      else p.reject(new RaftmqError('INVALID_RESPONSE', `the produce response has no entry ${i} for ${p.topic}/${p.partition}`))
    })
  }
}
