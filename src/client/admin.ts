/**
 * Admin: topic management and offsets, thin typed wrappers over the protocol's admin
 * APIs. Errors are thrown as RaftmqError with the broker's code. Admin requests go to
 * any node (the node forwards them to the controller); only listOffset, a partition's
 * question, goes to that partition's leader.
 *
 * Imports protocol and ./ modules of the client.
 */
import type { CreateTopicResponse, DescribeTopicResponse, TopicListing } from '../protocol/api.js'
import type { Client } from './client.js'
import { atLeader } from './retry.js'
import type { RetryPolicy } from './retry.js'

/** The producer's defaults: an admin call is interactive, better a clear error soon. */
const LIST_OFFSET_RETRY: RetryPolicy = { retries: 5, retryBackoffMs: 100 }

export interface CreateTopicOptions {
  readonly name: string
  readonly partitions: number
  /** Copies of each partition, 1 (default) up to the cluster's node count; the controller refuses more (INVALID_CONFIG). */
  readonly replicationFactor?: number
  /** Drop records older than this (default: keep forever). */
  readonly retentionMs?: number | null
  /** Per partition, drop the oldest records past this many bytes (default: no limit). */
  readonly retentionBytes?: number | null
}

export class Admin {
  readonly #client: Client

  constructor(client: Client) {
    this.#client = client
  }

  createTopic(opts: CreateTopicOptions): Promise<CreateTopicResponse> {
    return this.#client.request('createTopic', {
      name: opts.name,
      partitions: opts.partitions,
      replicationFactor: opts.replicationFactor ?? 1,
      retentionMs: opts.retentionMs ?? null,
      retentionBytes: opts.retentionBytes ?? null,
    })
  }

  async deleteTopic(name: string): Promise<void> {
    await this.#client.request('deleteTopic', { name })
    this.#client.forgetTopic(name)
  }

  async listTopics(): Promise<readonly TopicListing[]> {
    return (await this.#client.request('listTopics', {})).topics
  }

  describeTopic(name: string): Promise<DescribeTopicResponse> {
    return this.#client.request('describeTopic', { name })
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
