/**
 * Client: the entry point of the client library. It bootstraps from any broker in its
 * list, caches the cluster's metadata (./metadata-cache.ts), keeps at most one connection
 * per node (./node-connections.ts), and hands out Admin, Producer and Consumer objects
 * that share them.
 *
 * Routing (DESIGN §6): a partition's requests (produce, fetch, listOffsets) go to its
 * leader — `leaderFor` says which node, `requestNode` sends there — and every other
 * request to any node (`request`), which forwards what it cannot answer itself to the
 * controller. After a failed partition request, `reroute` corrects the route: a NOT_LEADER
 * hint moves the partition at once (no metadata request), anything else marks it stale so
 * that the next lookup refreshes the metadata (coalesced and rate limited). While cached
 * leaders are right a request costs no lookup at all: one metadata request per topic, then
 * none (the aged background refresh aside).
 *
 * Events: a Client is an EventEmitter of its connections — `connect`, `reconnect` (to a
 * node it was connected to before) and `disconnect` (with the error), each with
 * `{ broker, nodeId }` — and `logger` (pino's shape: `(fields, message)`) hears the same
 * at debug, info and warn.
 *
 * Imports base, protocol, node:events and ./ modules of the client.
 */
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApiName, MetadataResponse, RequestBody, ResponseBody } from '../protocol/api.js'
import { formatMessage } from '../protocol/errors.js'
import { RaftmqError } from './errors.js'
import { Admin } from './admin.js'
import { MetadataCache } from './metadata-cache.js'
import { NodeConnections } from './node-connections.js'
import type { ConnectionEvent } from './node-connections.js'
import { Producer } from './producer.js'
import type { ProducerOptions } from './producer.js'
import { Consumer } from './consumer.js'
import type { ConsumerOptions } from './consumer.js'

export interface ClientOptions {
  /** Bootstrap brokers, `host:port`: any of them will do, the others are fallbacks. */
  readonly brokers: readonly string[]
  readonly clientId?: string
  /** How long opening a connection to one node may take (default 5 s). */
  readonly connectTimeoutMs?: number
  readonly requestTimeoutMs?: number
  /** Known topics' metadata is refreshed at least this often (default 5 min). */
  readonly metadataMaxAgeMs?: number
  /** Metadata requests start at least this far apart, unless forced (default 100 ms). */
  readonly metadataMinIntervalMs?: number
  /** How long a lookup waits for a partition without a leader before LEADER_NOT_AVAILABLE (default 5 s). */
  readonly leaderWaitMs?: number
  /** Told of connections opened (debug), reopened (info) and lost (warn); a pino logger fits. */
  readonly logger?: ClientLogger
}

export interface ClientLogger {
  debug?(fields: object, message: string): void
  info?(fields: object, message: string): void
  warn?(fields: object, message: string): void
}

export interface ClientEvents {
  connect: [ConnectionEvent]
  reconnect: [ConnectionEvent]
  disconnect: [ConnectionEvent]
}

/** A leaderless partition is looked up again this often at first, doubling up to 16x. */
const LEADER_POLL_MS_MIN = 50
const LEADER_POLL_DOUBLINGS_MAX = 4

const clientClosed = (): RaftmqError => new RaftmqError('CLIENT_CLOSED', formatMessage('CLIENT_CLOSED'))

export class Client extends EventEmitter<ClientEvents> {
  readonly #opts: Required<Omit<ClientOptions, 'brokers' | 'logger'>>
  readonly #pool: NodeConnections
  readonly #cache: MetadataCache
  /** Aborts the client's own waits (backoffs, leader polls) when it closes. */
  readonly #closing = new AbortController()

  constructor(opts: ClientOptions) {
    super()
    if (opts.brokers.length === 0) throw new RangeError('Client: brokers must list at least one host:port')
    const brokers = opts.brokers.map((b) => {
      const m = /^(.+):(\d+)$/.exec(b)
      if (!m) throw new RangeError(`Client: broker ${JSON.stringify(b)} is not host:port`)
      return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) }
    })
    this.#opts = {
      clientId: opts.clientId ?? 'raftmq-client',
      connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      metadataMaxAgeMs: opts.metadataMaxAgeMs ?? 300_000,
      metadataMinIntervalMs: opts.metadataMinIntervalMs ?? 100,
      leaderWaitMs: opts.leaderWaitMs ?? 5_000,
    }
    for (const [name, v, min] of [
      ['connectTimeoutMs', this.#opts.connectTimeoutMs, 1],
      ['requestTimeoutMs', this.#opts.requestTimeoutMs, 1],
      ['metadataMaxAgeMs', this.#opts.metadataMaxAgeMs, 1],
      ['metadataMinIntervalMs', this.#opts.metadataMinIntervalMs, 0],
      ['leaderWaitMs', this.#opts.leaderWaitMs, 0],
    ] as const) {
      if (!Number.isInteger(v) || v < min) throw new RangeError(`Client: ${name} must be an integer >= ${min}, got ${v}`)
    }
    const log = opts.logger
    this.#pool = new NodeConnections(brokers, this.#opts, {
      connect: (e) => {
        log?.debug?.({ broker: e.broker, nodeId: e.nodeId }, 'connected')
        this.emit('connect', e)
      },
      reconnect: (e) => {
        log?.info?.({ broker: e.broker, nodeId: e.nodeId }, 'connected again')
        this.emit('reconnect', e)
      },
      disconnect: (e) => {
        log?.warn?.({ broker: e.broker, nodeId: e.nodeId, code: e.error?.code, err: e.error?.message }, 'connection lost')
        this.emit('disconnect', e)
      },
    })
    this.#cache = new MetadataCache((topics) => this.request('metadata', { topics: [...topics] }), {
      minIntervalMs: this.#opts.metadataMinIntervalMs,
      maxAgeMs: this.#opts.metadataMaxAgeMs,
    })
  }

  /**
   * Sends one request to any node (the bootstrap connection while it lives). For the
   * APIs any node answers: admin, metadata, initProducerId. A partition's produce, fetch
   * or listOffsets sent here reaches whichever node that is: use `requestNode`.
   */
  async request<A extends ApiName>(api: A, body: RequestBody<A>, timeoutMs?: number): Promise<ResponseBody<A>> {
    const conn = await this.#pool.any(this.#cache.nodes())
    return conn.request(api, body, timeoutMs)
  }

  /** Sends one request to node `node`, opening its connection if needed; an unreachable node is CONNECTION_CLOSED. */
  async requestNode<A extends ApiName>(node: number, api: A, body: RequestBody<A>, timeoutMs?: number): Promise<ResponseBody<A>> {
    const conn = await this.#pool.forNode(node, this.#cache.node(node))
    return conn.request(api, body, timeoutMs)
  }

  /** The partition's leader when the cache knows it and has no reason to doubt it: no await on the hot path. */
  cachedLeader(topic: string, partition: number): number | undefined {
    return this.#cache.leader(topic, partition)
  }

  /**
   * The node leading topic/partition: from the cache, or after a metadata refresh. A
   * partition without a leader (an election) is looked up again with backoff for up to
   * `leaderWaitMs`, then LEADER_NOT_AVAILABLE (retriable). UNKNOWN_TOPIC and
   * UNKNOWN_PARTITION are thrown as the metadata says.
   */
  async leaderFor(topic: string, partition: number): Promise<number> {
    const cached = this.#cache.leader(topic, partition)
    if (cached !== undefined) return cached
    const deadline = Date.now() + this.#opts.leaderWaitMs
    const pollMs = Math.max(LEADER_POLL_MS_MIN, this.#opts.metadataMinIntervalMs)
    for (let attempt = 0; ; attempt++) {
      // a topic never seen has no cached answer to fall back on: not worth rate limiting
      const errors = await this.#cache.refresh([topic], { force: !this.#cache.has(topic) })
      const error = errors.get(topic)
      if (error) throw error
      if (this.#cache.lacks(topic, partition)) throw new RaftmqError('UNKNOWN_PARTITION', formatMessage('UNKNOWN_PARTITION', { topic, partition }))
      const leader = this.#cache.leader(topic, partition)
      if (leader !== undefined) return leader
      const leftMs = deadline - Date.now()
      if (leftMs <= 0) throw new RaftmqError('LEADER_NOT_AVAILABLE', formatMessage('LEADER_NOT_AVAILABLE', { topic, partition }))
      await this.sleep(Math.min(leftMs, pollMs * 2 ** Math.min(attempt, LEADER_POLL_DOUBLINGS_MAX)))
    }
  }

  /**
   * Corrects the route of topic/partition after a request for it failed with `error`
   * (answered by node `answeredBy`, when the error came in an answer). Returns true when
   * a NOT_LEADER hint moved the partition to another known node, so that a retry may go
   * at once; otherwise the route is stale where the error says it may be, and the next
   * `leaderFor` refreshes it.
   */
  reroute(topic: string, partition: number, error: RaftmqError, answeredBy?: number): boolean {
    switch (error.code) {
      case 'NOT_LEADER': {
        const hint = error.leader
        // a node naming itself is no hint: ask the metadata instead
        if (hint !== undefined && hint !== answeredBy) {
          if (this.#cache.setLeader(topic, partition, hint)) return true
          // a leader whose address we lack: learn it now, not after the backoff
          this.#cache.markStale(topic, partition)
          void this.#cache.refresh([topic], { force: true }).catch(() => {})
          return false
        }
        this.#cache.markStale(topic, partition)
        return false
      }
      case 'LEADER_NOT_AVAILABLE':
      case 'CONNECTION_CLOSED':
      case 'TIMEOUT':
      case 'SHUTTING_DOWN':
        this.#cache.markStale(topic, partition)
        return false
      case 'UNKNOWN_TOPIC':
      case 'UNKNOWN_PARTITION':
        // deleted (or recreated) behind our back: the next use asks afresh
        this.#cache.forget(topic)
        return false
      default:
        return false
    }
  }

  /** Refreshes the metadata of `topics` (default: every cached topic), coalesced and rate limited. */
  async refreshMetadata(topics?: readonly string[]): Promise<void> {
    await this.#cache.refresh(topics)
  }

  /** Asks for metadata now (not rate limited), caches it, and returns the answer. */
  async metadata(topics?: string[]): Promise<MetadataResponse> {
    const md = await this.request('metadata', topics ? { topics } : {})
    this.#cache.apply(md, topics)
    return md
  }

  /** The cached route of a partition (its leader, null while it has none, and replicas), if cached. */
  partitionRoute(topic: string, partition: number): { readonly leader: number | null; readonly replicas: readonly number[] } | undefined {
    return this.#cache.route(topic, partition)
  }

  /** The number of partitions of `topic` (from the cache, or asked once). */
  async partitionCount(topic: string): Promise<number> {
    const known = this.#cache.partitionCount(topic)
    if (known !== undefined) return known
    const errors = await this.#cache.refresh([topic], { force: !this.#cache.has(topic) })
    const error = errors.get(topic)
    if (error) throw error
    const n = this.#cache.partitionCount(topic)
    if (n === undefined) throw new RaftmqError('UNKNOWN_TOPIC', formatMessage('UNKNOWN_TOPIC', { topic }))
    return n
  }

  forgetTopic(topic: string): void {
    this.#cache.forget(topic)
  }

  /** Waits `ms`, or rejects with CLIENT_CLOSED as soon as the client closes, so backoffs end with it. */
  async sleep(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.#closing.signal })
    } catch {
      throw clientClosed()
    }
  }

  admin(): Admin {
    return new Admin(this)
  }

  producer(opts: ProducerOptions = {}): Producer {
    return new Producer(this, opts)
  }

  consumer(opts: ConsumerOptions = {}): Consumer {
    return new Consumer(this, opts)
  }

  /** Closes every connection and timer; what is in flight fails with CLIENT_CLOSED, which no producer retries. */
  async close(): Promise<void> {
    const reason = clientClosed()
    this.#closing.abort()
    this.#cache.close(reason)
    this.#pool.closeAll(reason)
  }
}
