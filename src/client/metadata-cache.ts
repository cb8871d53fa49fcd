/**
 * MetadataCache: what the client knows of the cluster — each node's address and, per
 * topic, each partition's leader and replicas — and the one way it is refreshed.
 *
 * Refresh rules (Kafka's producer metadata, minus its topic expiry):
 * - Coalesced: at most one metadata request is in flight. A refresh for topics the one in
 *   flight already covers shares its answer; any other joins the next request, which
 *   leaves when the one in flight settles and carries the union of the topics asked.
 * - Rate limited: requests start at least `minIntervalMs` apart, so a storm of NOT_LEADER
 *   answers is one request per interval, not one per failed batch. A forced refresh (a
 *   topic never seen, a leader hint naming a node whose address is unknown) waits only for
 *   the request in flight: nothing cached could serve it meanwhile.
 * - Aged: `maxAgeMs` after the last answer, the known topics are refreshed in the
 *   background (an unref'd timer), so leaders that moved without a failure are learnt.
 *
 * Routing entries are per partition: a failure marks only its partition stale, and the
 * other partitions of the topic keep their cached leader until the refresh answers.
 *
 * Imports protocol and ./ modules of the client.
 */
import type { MetadataResponse, NodeInfo } from '../protocol/api.js'
import { RaftmqError } from './errors.js'

export interface MetadataCacheOptions {
  readonly minIntervalMs: number
  readonly maxAgeMs: number
}

interface PartitionRoute {
  leader: number | null
  readonly replicas: readonly number[]
  /** A failure said the leader may have moved: the next lookup refreshes first. */
  stale: boolean
}

/** A topic's partitions by index; a hole is a partition the broker did not list. */
type TopicRoute = (PartitionRoute | undefined)[]

/** Per topic asked, the error the broker answered for it (UNKNOWN_TOPIC, ...). */
export type TopicErrors = ReadonlyMap<string, RaftmqError>

interface Refresh {
  readonly topics: Set<string>
  force: boolean
  /** Cancels the scheduled start, when one is scheduled. */
  cancel: (() => void) | null
  readonly promise: Promise<TopicErrors>
  readonly resolve: (errors: TopicErrors) => void
  readonly reject: (err: unknown) => void
}

function newRefresh(): Refresh {
  let resolve!: (errors: TopicErrors) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<TopicErrors>((res, rej) => {
    resolve = res
    reject = rej
  })
  // a refresh nobody awaits (the background one) must not become an unhandled rejection
  promise.catch(() => {})
  return { topics: new Set(), force: false, cancel: null, promise, resolve, reject }
}

export class MetadataCache {
  readonly #request: (topics: readonly string[]) => Promise<MetadataResponse>
  readonly #opts: MetadataCacheOptions
  #nodes = new Map<number, NodeInfo>()
  readonly #topics = new Map<string, TopicRoute>()
  #inflight: Refresh | null = null
  #next: Refresh | null = null
  #lastStartMs = -Infinity
  #ageTimer: NodeJS.Timeout | null = null
  #closed: RaftmqError | null = null

  constructor(request: (topics: readonly string[]) => Promise<MetadataResponse>, opts: MetadataCacheOptions) {
    this.#request = request
    this.#opts = opts
  }

  node(id: number): NodeInfo | undefined {
    return this.#nodes.get(id)
  }

  nodes(): readonly NodeInfo[] {
    return [...this.#nodes.values()]
  }

  has(topic: string): boolean {
    return this.#topics.has(topic)
  }

  partitionCount(topic: string): number | undefined {
    return this.#topics.get(topic)?.length
  }

  /** The partition's leader if the cache knows one it has no reason to doubt. */
  leader(topic: string, partition: number): number | undefined {
    const p = this.#topics.get(topic)?.[partition]
    return p && !p.stale && p.leader !== null ? p.leader : undefined
  }

  /** The cached route of a partition: its leader (null: none at the moment) and replicas. */
  route(topic: string, partition: number): { readonly leader: number | null; readonly replicas: readonly number[] } | undefined {
    const p = this.#topics.get(topic)?.[partition]
    return p && { leader: p.leader, replicas: p.replicas }
  }

  /** Whether the topic is cached and lacks `partition` (after a fresh answer: UNKNOWN_PARTITION). */
  lacks(topic: string, partition: number): boolean {
    const t = this.#topics.get(topic)
    return t !== undefined && t[partition] === undefined
  }

  markStale(topic: string, partition: number): void {
    const p = this.#topics.get(topic)?.[partition]
    if (p) p.stale = true
  }

  /** Takes a leader hint; false when the hint names a node whose address is unknown. */
  setLeader(topic: string, partition: number, leader: number): boolean {
    const p = this.#topics.get(topic)?.[partition]
    if (!p || !this.#nodes.has(leader)) return false
    p.leader = leader
    p.stale = false
    return true
  }

  forget(topic: string): void {
    this.#topics.delete(topic)
  }

  /**
   * Asks for `topics` (default: every topic cached) under the rules in the header.
   * Resolves once an answer covering them is applied, with the topics that came back
   * with an error; rejects if the metadata request failed.
   */
  refresh(topics: readonly string[] = [...this.#topics.keys()], opts: { force?: boolean } = {}): Promise<TopicErrors> {
    if (this.#closed) return Promise.reject(this.#closed)
    const inflight = this.#inflight
    if (inflight && topics.every((t) => inflight.topics.has(t))) return inflight.promise
    let next = this.#next
    if (!next) {
      next = newRefresh()
      this.#next = next
    }
    for (const t of topics) next.topics.add(t)
    const sooner = opts.force === true && !next.force
    if (sooner) next.force = true
    if (next.cancel === null || sooner) this.#schedule()
    return next.promise
  }

  /** Applies an answer (also one asked for outside refresh()); returns its topic errors. */
  apply(md: MetadataResponse, asked?: Iterable<string>): TopicErrors {
    this.#nodes = new Map(md.nodes.map((n) => [n.id, n]))
    const errors = new Map<string, RaftmqError>()
    for (const t of md.topics) {
      if (t.error) {
        this.#topics.delete(t.name)
        errors.set(t.name, RaftmqError.from(t.error))
        continue
      }
      const route: TopicRoute = []
      for (const p of t.partitions) route[p.partition] = { leader: p.leader, replicas: p.replicas, stale: false }
      this.#topics.set(t.name, route)
    }
    const answered = new Set(md.topics.map((t) => t.name))
    for (const name of asked ?? []) {
      if (!answered.has(name)) {
        this.#topics.delete(name)
        errors.set(name, new RaftmqError('INVALID_RESPONSE', `the metadata response does not list topic ${name}, which was asked for`))
      }
    }
    this.#armAgeTimer()
    return errors
  }

  close(reason: RaftmqError): void {
    this.#closed = reason
    if (this.#ageTimer) clearTimeout(this.#ageTimer)
    this.#ageTimer = null
    const next = this.#next
    this.#next = null
    if (next) {
      next.cancel?.()
      next.reject(reason)
    }
  }

  /** (Re)arms the next request's start: after the one in flight, and past the rate limit unless forced. */
  #schedule(): void {
    const next = this.#next
    if (!next || this.#inflight) return
    next.cancel?.()
    const waitMs = next.force ? 0 : Math.max(0, this.#lastStartMs + this.#opts.minIntervalMs - Date.now())
    // setImmediate, not a microtask: lookups made in the same turn join this request
    if (waitMs === 0) {
      const t = setImmediate(() => void this.#start())
      next.cancel = () => clearImmediate(t)
    } else {
      const t = setTimeout(() => void this.#start(), waitMs)
      next.cancel = () => clearTimeout(t)
    }
  }

  async #start(): Promise<void> {
    const r = this.#next
    if (!r || this.#inflight || this.#closed) return
    this.#next = null
    this.#inflight = r
    this.#lastStartMs = Date.now()
    try {
      const md = await this.#request([...r.topics])
      if (this.#closed) throw this.#closed
      r.resolve(this.apply(md, r.topics))
    } catch (err) {
      r.reject(err)
    } finally {
      this.#inflight = null
      this.#schedule()
    }
  }

  #armAgeTimer(): void {
    if (this.#closed) return
    if (this.#ageTimer) clearTimeout(this.#ageTimer)
    this.#ageTimer = setTimeout(() => {
      this.#ageTimer = null
      if (this.#topics.size > 0) void this.refresh().catch(() => {})
    }, this.#opts.maxAgeMs)
    // a client left open must not keep the process alive for its metadata's sake
    this.#ageTimer.unref()
  }
}
