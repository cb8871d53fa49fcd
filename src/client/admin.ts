/**
 * Admin: topic management and offsets, thin typed wrappers over the protocol's admin
 * APIs. Errors are thrown as RaftmqError with the broker's code. Admin requests go to
 * any node (the node forwards them to the controller); partitions' questions (listOffset,
 * the offsets of describeTopic) go to each partition's leader.
 *
 * Imports protocol and ./ modules of the client.
 */
import type { AlterTopicResponse, CreateTopicResponse, DescribeTopicResponse, TopicListing } from '../protocol/api.js'
import type { Client } from './client.js'
import { RaftmqError } from './errors.js'
import { atLeader } from './retry.js'
import type { RetryPolicy } from './retry.js'

/** The producer's defaults: an admin call is interactive, better a clear error soon. */
const LIST_OFFSET_RETRY: RetryPolicy = { retries: 5, retryBackoffMs: 100 }

export interface CreateTopicOptions {
  readonly name: string
  readonly partitions: number
  /** Copies of each partition, 1 (default) up to the cluster's live node count; the controller refuses more (INVALID_REPLICATION_FACTOR). */
  readonly replicationFactor?: number
  /** Drop records older than this (default: keep forever). */
  readonly retentionMs?: number | null
  /** Per partition, drop the oldest records past this many bytes (default: no limit). */
  readonly retentionBytes?: number | null
  /** A topic of that name existing already is no error: `created` is false and `partitions` its count (its settings are left as they are). */
  readonly ifNotExists?: boolean
}

export interface CreateTopicResult extends CreateTopicResponse {
  /** False when `ifNotExists` found the topic there already. */
  readonly created: boolean
}

export class Admin {
  readonly #client: Client

  constructor(client: Client) {
    this.#client = client
  }

  async createTopic(opts: CreateTopicOptions): Promise<CreateTopicResult> {
    try {
      const r = await this.#client.request('createTopic', {
        name: opts.name,
        partitions: opts.partitions,
        replicationFactor: opts.replicationFactor ?? 1,
        retentionMs: opts.retentionMs ?? null,
        retentionBytes: opts.retentionBytes ?? null,
      })
      return { ...r, created: true }
    } catch (err) {
      if (!(opts.ifNotExists === true && err instanceof RaftmqError && err.code === 'TOPIC_EXISTS')) throw err
      const topic = (await this.#client.metadata([opts.name])).topics.find((t) => t.name === opts.name)
      // deleted again in between: a retry is the caller's choice, so say what happened
      if (topic === undefined || 'error' in topic) throw err
      return { name: opts.name, partitions: topic.partitions.length, created: false }
    }
  }

  /**
   * Changes a topic's retention (null: unlimited; absent: unchanged) and/or raises its
   * partition count (never lowers it; keys may hash to other partitions afterwards).
   * Resolves with the topic as it is now.
   */
  async alterTopic(name: string, change: { readonly retentionMs?: number | null; readonly retentionBytes?: number | null; readonly partitions?: number }): Promise<AlterTopicResponse> {
    const r = await this.#client.request('alterTopic', { name, ...change })
    // a partition count cached here is stale now
    await this.#client.refreshMetadata([name])
    return r
  }

  /** Moves a partition to `replicas` (distinct node ids, the preferred leader first); resolves once the move is recorded, not done (metadata shows its `target` until it is). */
  async movePartition(topic: string, partition: number, replicas: readonly number[]): Promise<void> {
    await this.#client.request('movePartition', { topic, partition, replicas })
  }

  /** Node `id` joins the running cluster; the others reach it at `peer` (its --peer-listen). */
  async addNode(id: number, peer: { readonly host: string; readonly port: number }): Promise<void> {
    await this.#client.request('addNode', { id, host: peer.host, port: peer.port })
  }

  /** An added node leaves the cluster (refused while it holds replicas: drain it first). */
  async removeNode(id: number): Promise<void> {
    await this.#client.request('removeNode', { id })
  }

  async deleteTopic(name: string): Promise<void> {
    await this.#client.request('deleteTopic', { name })
    this.#client.forgetTopic(name)
  }

  async listTopics(): Promise<readonly TopicListing[]> {
    return (await this.#client.request('listTopics', {})).topics
  }

  /**
   * The topic's settings and, per partition, its leader and offsets. A node knows the
   * offsets only of the partitions it leads, so they are asked of each partition's leader
   * (one listOffsets request per leader and end); where that fails, the answering node's
   * figures stay.
   */
  async describeTopic(name: string): Promise<DescribeTopicResponse> {
    // the metadata gives the leaders' addresses (requestNode knows only nodes it was told of)
    const [d] = await Promise.all([this.#client.request('describeTopic', { name }), this.#client.metadata([name]).catch(() => null)])
    const byLeader = new Map<number, number[]>()
    for (const p of d.partitions) if (p.leader !== null) byLeader.set(p.leader, [...(byLeader.get(p.leader) ?? []), p.partition])
    const offsets = new Map<number, { logStartOffset?: number; highWatermark?: number }>()
    await Promise.all(
      [...byLeader].flatMap(([node, partitions]) =>
        (['earliest', 'latest'] as const).map(async (spec) => {
          const r = await this.#client.requestNode(node, 'listOffsets', { partitions: partitions.map((partition) => ({ topic: name, partition, spec })) }).catch(() => null)
          for (const e of r?.partitions ?? []) {
            if (e.offset === undefined) continue
            const o = offsets.get(e.partition) ?? {}
            offsets.set(e.partition, spec === 'earliest' ? { ...o, logStartOffset: e.offset } : { ...o, highWatermark: e.offset })
          }
        }),
      ),
    )
    return { ...d, partitions: d.partitions.map((p) => ({ ...p, ...offsets.get(p.partition) })) }
  }

  /** The earliest (log start) or latest (high watermark: the next offset to be written) offset. */
  async listOffset(topic: string, partition: number, spec: 'earliest' | 'latest'): Promise<number> {
    const p = await atLeader(this.#client, topic, partition, LIST_OFFSET_RETRY, async (node) => {
      const r = await this.#client.requestNode(node, 'listOffsets', { partitions: [{ topic, partition, spec }] })
      return r.partitions[0]!
    })
    return p.offset!
  }
}
