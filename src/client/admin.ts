/**
 * Admin: topic management and offsets, thin typed wrappers over the protocol's admin
 * APIs. Errors are thrown as RaftmqError with the broker's code.
 *
 * Imports protocol and ./ modules of the client.
 */
import type { CreateTopicResponse, DescribeTopicResponse, TopicListing } from '../protocol/api.js'
import type { Client } from './client.js'
import { RaftmqError } from './errors.js'

export interface CreateTopicOptions {
  readonly name: string
  readonly partitions: number
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
    const r = await this.#client.request('listOffsets', { partitions: [{ topic, partition, spec }] })
    const p = r.partitions[0]!
    if (p.error) throw RaftmqError.from(p.error)
    return p.offset!
  }
}
