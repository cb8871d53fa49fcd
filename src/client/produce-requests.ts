/**
 * ProduceRequests: gathers the partition batches a producer sends in one turn of work into
 * as few produce requests as the protocol allows, one set per leader node, as Kafka's
 * producer drains every ready partition into one request per broker. A producer spread
 * over 8 partitions otherwise sends 8 small requests where 1 would do: the broker pays per
 * request (a frame, a parse, a response) and batches shrink as partitions grow
 * (bench/results/profile.md §2). Batches for partitions led by different nodes leave in
 * the same turn, so they travel in parallel.
 *
 * A batch goes to its partition's cached leader; batches whose leader is not cached wait
 * for the lookup (one coalesced metadata request) and leave together when it answers. A
 * request names each partition once and carries one `atomic` flag, so batches for a
 * partition already in the open request, or with the other flag, open another request;
 * so do batches past `requestBytesMax` or the protocol's partition count. Each batch is
 * answered alone: its partition's entry of the response with the node that answered (a
 * NOT_LEADER hint is only news if it names another node), or the request's failure.
 *
 * Imports base, protocol and ./ modules of the client.
 */
import { limits } from '../base/index.js'
import { wireLimits } from '../protocol/api.js'
import type { ProducePartitionResult } from '../protocol/api.js'
import type { Client } from './client.js'
import { RaftmqError } from './errors.js'
import { asRaftmqError } from './retry.js'

/** Batch bytes in one request: well under the frame limit, so a request always frames. */
export const PRODUCE_REQUEST_BYTES_MAX = limits.protocol.frameBytesMax / 4

/** One batch's answer: its partition's entry, and the node that gave it. */
export interface ProduceAnswer {
  readonly node: number
  readonly result: ProducePartitionResult
}

interface Pending {
  readonly topic: string
  readonly partition: number
  readonly batch: Uint8Array
  readonly atomic: boolean
  readonly resolve: (r: ProduceAnswer) => void
  readonly reject: (e: RaftmqError) => void
}

interface OpenRequest {
  readonly atomic: boolean
  readonly entries: Pending[]
  readonly keys: Set<string>
  bytes: number
}

/** What ProduceRequests needs of the Client. */
export type ProduceRouting = Pick<Client, 'cachedLeader' | 'leaderFor' | 'requestNode'>

export class ProduceRequests {
  readonly #client: ProduceRouting
  readonly #timeoutMs: number
  readonly #requestBytesMax: number
  #pending: Pending[] = []
  #scheduled = false

  constructor(client: ProduceRouting, timeoutMs: number, requestBytesMax = PRODUCE_REQUEST_BYTES_MAX) {
    this.#client = client
    this.#timeoutMs = timeoutMs
    this.#requestBytesMax = requestBytesMax
  }

  /**
   * Sends `batch` to one partition's leader in the next request; rejects with a
   * RaftmqError if the leader cannot be found or that request fails.
   */
  send(topic: string, partition: number, batch: Uint8Array, atomic: boolean): Promise<ProduceAnswer> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ topic, partition, batch, atomic, resolve, reject })
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
        const pending = this.#pending
        this.#pending = []
        this.#dispatch(pending)
      }),
    )
  }

  #dispatch(pending: readonly Pending[]): void {
    const byNode = new Map<number, Pending[]>()
    const unrouted: Pending[] = []
    for (const p of pending) {
      const node = this.#client.cachedLeader(p.topic, p.partition)
      if (node === undefined) unrouted.push(p)
      else push(byNode, node, p)
    }
    this.#sendAll(byNode)
    if (unrouted.length > 0) void this.#route(unrouted)
  }

  /** Looks up the leaders the cache lacks (the lookups share one metadata request), then sends. */
  async #route(unrouted: readonly Pending[]): Promise<void> {
    const byNode = new Map<number, Pending[]>()
    await Promise.all(
      unrouted.map(async (p) => {
        try {
          push(byNode, await this.#client.leaderFor(p.topic, p.partition), p)
        } catch (err) {
          p.reject(asRaftmqError(err))
        }
      }),
    )
    this.#sendAll(byNode)
  }

  #sendAll(byNode: ReadonlyMap<number, readonly Pending[]>): void {
    for (const [node, pending] of byNode) for (const r of this.#pack(pending)) void this.#request(node, r)
  }

  /** One node's batches as requests, in order, each batch in the first request that may take it. */
  #pack(pending: readonly Pending[]): OpenRequest[] {
    const open: OpenRequest[] = []
    for (const p of pending) {
      const key = `${p.partition}@${p.topic}`
      let r = open.find(
        (o) => o.atomic === p.atomic && !o.keys.has(key) && o.entries.length < wireLimits.partitionsPerRequestMax && o.bytes + p.batch.length <= this.#requestBytesMax,
      )
      if (!r) {
        r = { atomic: p.atomic, entries: [], keys: new Set(), bytes: 0 }
        open.push(r)
      }
      r.entries.push(p)
      r.keys.add(key)
      r.bytes += p.batch.length
    }
    return open
  }

  async #request(node: number, r: OpenRequest): Promise<void> {
    const partitions = r.entries.map((e) => ({ topic: e.topic, partition: e.partition, batch: e.batch }))
    let answer
    try {
      answer = await this.#client.requestNode(node, 'produce', { timeoutMs: this.#timeoutMs, atomic: r.atomic, partitions }, this.#timeoutMs + 5_000)
    } catch (err) {
      const e = asRaftmqError(err)
      for (const p of r.entries) p.reject(e)
      return
    }
    r.entries.forEach((p, i) => {
      const got = answer.partitions[i]
      if (got && got.topic === p.topic && got.partition === p.partition) p.resolve({ node, result: got })
      else p.reject(new RaftmqError('INVALID_RESPONSE', `the produce response has no entry ${i} for ${p.topic}/${p.partition}`))
    })
  }
}

function push<K, V>(m: Map<K, V[]>, key: K, value: V): void {
  const list = m.get(key)
  if (list) list.push(value)
  else m.set(key, [value])
}
