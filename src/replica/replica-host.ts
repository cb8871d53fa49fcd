/**
 * ReplicaHost: everything a worker thread does. It hosts any number of partition
 * replicas (shard-per-core: groups beyond the worker count share workers) on ONE
 * GroupRuntime — one write-ahead log, one Ready loop — ticks them on one timer, serves
 * the data-path requests that arrive packed on its MessagePort and answers with one
 * packed post per event-loop turn, and exposes `ReplicaControl` (open, close, shutdown)
 * for comlink.
 *
 * Replicas with peers: what their Readys send goes into one buffer per destination node
 * (raft-wire.ts), posted to the main thread before each WAL sync of the loop (so followers
 * write while this thread syncs) and at the end of each turn; Raft messages from peers
 * arrive as `raft` requests and are stepped into their groups (a group not open here
 * drops them: Raft retransmits). Leader changes go out as `leader` events. Client reads
 * are answered by leaders only (PartitionReplica.readRefusal).
 *
 * Imports base, storage, group and ./ modules; workers/group-worker.ts wires it to the
 * thread's ports and logger.
 */
import { rm } from 'node:fs/promises'
import { Prng } from '../base/index.js'
import { GroupStore, NodeWalFs } from '../storage/index.js'
import type { WalFs } from '../storage/index.js'
import type { ActorLogger } from '../group/index.js'
import { GroupRuntime } from './group-runtime.js'
import type { StorageTrouble } from './group-runtime.js'
import { PartitionReplica } from './partition-replica.js'
import type { ReplicaSpec } from './partition-replica.js'
import { packPost, unpackPost } from './worker-messages.js'
import type { WorkerPost, WorkerReply, WorkerRequest } from './worker-messages.js'
import { RaftOutbox, decodeRaftBatch } from './raft-wire.js'
import type { Message } from '../raft/index.js'
import type { GroupReport } from '../protocol/api.js'

export type { ReplicaSpec }

export interface ReplicaControl {
  ready(): Promise<true>
  /** Opens a replica; resolves with an error message when its store cannot serve (nothing is opened then). */
  open(spec: ReplicaSpec): Promise<string | null>
  /** `removeData`: the topic is gone: its records leave the WAL's care and its directory is deleted. */
  close(groupId: number, removeData: boolean): Promise<void>
  /** Stops every group, closes every store and the WAL; resolves with what was wrong with the storage. */
  shutdown(): Promise<ShutdownReport>
  /** Durable WAL commits (one write + one fdatasync each) since start. */
  syncs(): Promise<number>
  /** Every hosted replica as `raftmq cluster status` shows it. */
  status(): Promise<GroupReport[]>
  /** Leadership of every replica led here goes back to its preferred replica where it may now; resolves with how many transfers started. */
  electPreferred(): Promise<number>
}

/** What a worker's storage looked like when it shut down. */
export interface ShutdownReport {
  /** Why its WAL refused writes at the end (the disk full, or failed), and stores that could not be written at close. */
  readonly storage: readonly StorageTrouble[]
  /** Groups whose close threw, with why (the others were closed all the same). */
  readonly closeErrors: readonly string[]
}

export interface ReplicaHostOptions {
  readonly tickMs: number
  /** How often retention and producer expiry run. */
  readonly retentionCheckMs: number
  /** Idempotent producers silent this long are forgotten. */
  readonly producerExpiryMs: number
  readonly seed: number
  /** This worker's write-ahead log directory. */
  readonly walDir: string
  readonly walSegmentBytes?: number
  /** Partition stores this thread may keep open at once (its share of limits.storage.openStoresMax). */
  readonly openStoresMax?: number
  /** Applied entries a replicated partition's log view keeps (default: PartitionReplica's); past it a follower catches up by snapshot. */
  readonly viewEntriesMax?: number
}

export interface DataPort {
  postMessage(bytes: Uint8Array, transfer: ArrayBuffer[]): void
  on(event: 'message', fn: (bytes: Uint8Array) => void): void
}

export class ReplicaHost implements ReplicaControl {
  readonly #replicas = new Map<number, PartitionReplica>()
  readonly #opening = new Map<number, Promise<string | null>>()
  readonly #port: DataPort
  readonly #log: ActorLogger
  readonly #prng: Prng
  readonly #runtime: GroupRuntime
  readonly #cancels = new Map<number, () => void>()
  readonly #viewEntriesMax: number | undefined
  #outbox: WorkerPost[] = []
  /** Raft messages for peer nodes, sent with the next post. */
  readonly #toPeers = new RaftOutbox()
  #flushScheduled = false
  #ticker: NodeJS.Timeout
  #retention: NodeJS.Timeout

  private constructor(port: DataPort, log: ActorLogger, runtime: GroupRuntime, opts: ReplicaHostOptions) {
    this.#port = port
    this.#log = log
    this.#runtime = runtime
    this.#prng = new Prng(opts.seed)
    this.#viewEntriesMax = opts.viewEntriesMax
    port.on('message', (bytes) => this.#onRequests(bytes))
    this.#ticker = setInterval(() => {
      // a lone voter that leads needs no ticks (no elections to time, no followers to beat):
      // 10,000 idle partitions then cost nothing between requests
      for (const r of this.#replicas.values()) if (!r.leadsAlone()) r.tick()
    }, opts.tickMs)
    this.#retention = setInterval(() => {
      const now = Date.now()
      for (const r of this.#replicas.values()) {
        void r.enforceRetention(now)
        void r.expireProducers(now - opts.producerExpiryMs)
      }
    }, opts.retentionCheckMs)
  }

  /** Opens the worker's WAL; a WAL that cannot be opened is thrown (the worker cannot run without it). */
  static create(port: DataPort, log: ActorLogger, opts: ReplicaHostOptions, fs: WalFs = new NodeWalFs()): ReplicaHost {
    if (opts.openStoresMax !== undefined) GroupStore.setOpenBudget(opts.openStoresMax)
    let host: ReplicaHost | null = null
    const runtime = GroupRuntime.open({
      fs,
      walDir: opts.walDir,
      log,
      ...(opts.walSegmentBytes ? { segmentBytes: opts.walSegmentBytes } : {}),
      beforeCommit: () => {
        if (host !== null) host.#flush()
      },
    })
    if (!runtime.ok) throw new Error(`write-ahead log ${opts.walDir}: ${runtime.error.message}`)
    host = new ReplicaHost(port, log, runtime.value, opts)
    return host
  }

  async ready(): Promise<true> {
    return true
  }

  async syncs(): Promise<number> {
    return this.#runtime.engine.syncs
  }

  async electPreferred(): Promise<number> {
    let started = 0
    for (const r of this.#replicas.values()) if (r.electPreferred()) started++
    return started
  }

  async status(): Promise<GroupReport[]> {
    return [...this.#replicas.values()].map((r) => r.report())
  }

  async open(spec: ReplicaSpec): Promise<string | null> {
    if (this.#replicas.has(spec.groupId)) return null
    const pending = this.#opening.get(spec.groupId)
    if (pending) return pending
    const opening = (async () => {
      const gid = spec.groupId
      // a lone voter has no one to send to, until a move adds a replica
      const host = {
        onLeader: (leader: number, term: number) => this.#post({ ev: 'leader', gid, leader, term }),
        sendToPeers: (msgs: readonly Message[]) => this.#toPeer(gid, msgs),
        onConf: (index: number, voters: readonly number[]) => this.#post({ ev: 'conf', gid, index, voters: [...voters] }),
        ...(this.#viewEntriesMax !== undefined ? { viewEntriesMax: this.#viewEntriesMax } : {}),
      }
      const r = await PartitionReplica.open(spec, this.#runtime, this.#log, this.#prng.fork(), host)
      if (!r.ok) return `${r.error.code}: ${r.error.message}`
      this.#replicas.set(spec.groupId, r.value)
      return null
    })()
    this.#opening.set(spec.groupId, opening)
    try {
      return await opening
    } finally {
      this.#opening.delete(spec.groupId)
    }
  }

  async close(groupId: number, removeData: boolean): Promise<void> {
    const r = this.#replicas.get(groupId)
    if (!r) return
    this.#replicas.delete(groupId)
    await r.close({ removed: removeData })
    if (removeData) await rm(r.spec.dir, { recursive: true, force: true })
  }

  async shutdown(): Promise<ShutdownReport> {
    clearInterval(this.#ticker)
    clearInterval(this.#retention)
    for (const cancel of this.#cancels.values()) cancel()
    // one group's close failing must not leave the others' stores open
    const gids = [...this.#replicas.keys()]
    const closed = await Promise.allSettled(gids.map((gid) => this.close(gid, false)))
    const closeErrors: string[] = []
    closed.forEach((r, i) => {
      if (r.status === 'fulfilled') return
      const why = r.reason instanceof Error ? r.reason.message : String(r.reason)
      this.#log.error({ group: gids[i], err: why }, 'closing the group failed')
      closeErrors.push(`group ${gids[i]}: ${why}`)
    })
    const storage = await this.#runtime.close()
    this.#flush()
    return { storage, closeErrors }
  }

  #onRequests(bytes: Uint8Array): void {
    for (const req of unpackPost<WorkerRequest>(bytes)) {
      if (req.t === 'cancel') {
        this.#cancels.get(req.rid)?.()
        continue
      }
      if (req.t === 'raft') {
        this.#stepAll(req.bytes)
        continue
      }
      if (req.t === 'peerDown') {
        for (const r of this.#replicas.values()) r.peerDown(req.node)
        continue
      }
      if (req.t === 'assignment') {
        this.#replicas.get(req.gid)?.assign(req.assignment)
        continue
      }
      const replica = this.#replicas.get(req.gid)
      if (!replica) {
        this.#reply({ rid: req.rid, ok: false, error: { code: 'UNKNOWN_PARTITION', message: `group ${req.gid} is not hosted by this worker` } })
        continue
      }
      void this.#serve(replica, req)
    }
  }

  #stepAll(bytes: Uint8Array): void {
    const batch = decodeRaftBatch(bytes)
    if (!batch.ok) {
      // the main thread checked these bytes already: another shape here is a bug
      this.#log.error({ err: batch.error.message }, 'a raft batch from the main thread is malformed; dropped')
      return
    }
    for (const [gid, m] of batch.value) this.#replicas.get(gid)?.step(m)
  }

  #toPeer(gid: number, msgs: readonly Message[]): void {
    this.#toPeers.add(gid, msgs)
    this.#schedule()
  }

  async #serve(replica: PartitionReplica, req: Exclude<WorkerRequest, { t: 'cancel' } | { t: 'raft' } | { t: 'peerDown' } | { t: 'assignment' }>): Promise<void> {
    try {
      if (req.t !== 'produce') {
        const refused = replica.readRefusal()
        if (refused) {
          this.#reply({ rid: req.rid, ok: false, error: refused })
          return
        }
      }
      switch (req.t) {
        case 'produce': {
          const r = await replica.produce(req.batch, req.atomic, req.sizes)
          this.#reply(r.ok ? { rid: req.rid, ok: true, t: 'produce', summary: r.summary } : { rid: req.rid, ok: false, error: r.error })
          return
        }
        case 'fetch': {
          let cancel!: () => void
          const cancelled = new Promise<void>((resolve) => (cancel = resolve))
          this.#cancels.set(req.rid, cancel)
          const r = await replica.fetch(req.offset, req.maxBytes, req.maxMessages, req.maxWaitMs, cancelled)
          this.#cancels.delete(req.rid)
          this.#reply(
            r.ok
              ? { rid: req.rid, ok: true, t: 'fetch', batches: r.batches, highWatermark: r.highWatermark, logStartOffset: r.logStartOffset }
              : { rid: req.rid, ok: false, error: r.error },
          )
          return
        }
        case 'offsets':
          this.#reply({ rid: req.rid, ok: true, t: 'offsets', ...replica.offsets() })
          return
      }
    } catch (err) {
      this.#log.error({ group: replica.groupId, err }, 'request failed')
      this.#reply({ rid: req.rid, ok: false, error: { code: 'INTERNAL', message: `internal error: ${err instanceof Error ? err.message : String(err)}` } })
    }
  }

  #reply(r: WorkerReply): void {
    this.#post(r)
  }

  #post(item: WorkerPost): void {
    this.#outbox.push(item)
    this.#schedule()
  }

  #schedule(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    queueMicrotask(() => this.#flush())
  }

  #flush(): void {
    this.#flushScheduled = false
    this.#toPeers.drain((to, bytes) => this.#outbox.push({ ev: 'raft', to, bytes }))
    if (this.#outbox.length === 0) return
    const bytes = packPost(this.#outbox)
    this.#outbox = []
    this.#port.postMessage(bytes, [bytes.buffer as ArrayBuffer])
  }
}
