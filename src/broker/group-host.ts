/**
 * GroupHost: the main thread's side of the worker threads that host partition replicas.
 * It spawns `workers` workers, places each group on one (round-robin by group id: groups
 * beyond the worker count share workers), and routes requests to them.
 *
 * Data path: requests for one worker made during one event-loop turn go out as one
 * packed, transferred post (worker-messages.ts); replies come back the same way and
 * resolve their promises by request id. Control (open, close, shutdown) goes through
 * comlink, which is fine for the rare, small calls it carries.
 *
 * `workers: 0` hosts the groups on the main thread instead: the same ReplicaHost and the
 * same packed messages, handed over in a microtask rather than posted to another thread.
 * Every thread hand-off costs 70-110 µs on these VMs (bench/results/profile.md §1), so a
 * latency-bound node with few partitions trades the actors' parallelism for two fewer
 * hand-offs per request.
 *
 * Each worker (or the main thread's host, `workers: 0`) writes its own write-ahead log,
 * `<walGeneration>/w<k>`.
 *
 * Imports base, group, replica and node:worker_threads, comlink.
 */
import { MessageChannel, Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import * as Comlink from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import { join } from 'node:path'
import { limits } from '../base/index.js'
import { GroupStore } from '../storage/index.js'
import { encodeRaftBatch, packPost, unpackPost, ReplicaHost } from '../replica/index.js'
import type { DataPort, GroupMessage, ReplicaAssignment, ReplicaControl, ReplicaHostOptions, ReplicaSpec, WorkerEvent, WorkerPost, WorkerReply, WorkerRequest } from '../replica/index.js'
import type { ActorLogger } from '../group/index.js'
import type { GroupReport } from '../protocol/api.js'

/** What one worker (or the main thread's host, `workers: 0`) reported when it shut down. */
export type WorkerShutdown = { readonly worker: number } & Awaited<ReturnType<ReplicaControl['shutdown']>>

type Outgoing = WorkerRequest extends infer R ? (R extends { rid: number } ? (R extends { t: 'cancel' } ? never : Omit<R, 'rid'>) : never) : never

interface WorkerSlot {
  /** Null for the main thread's own ReplicaHost (`workers: 0`). */
  readonly worker: Worker | null
  readonly port: OutPort
  readonly control: { [K in keyof ReplicaControl]: ReplicaControl[K] }
  queue: WorkerRequest[]
  groups: number
  exited: boolean
}

/** The main thread's end of a data channel: a MessagePort, or the in-thread stand-in. */
interface OutPort {
  postMessage(bytes: Uint8Array, transfer: ArrayBuffer[]): void
  close(): void
}

/**
 * Two ends of an in-thread data channel: what one end posts reaches the other's listener
 * in a microtask, as a transferred post would reach another thread (later, never during
 * the post).
 */
function localChannel(): { main: OutPort & DataPort; host: DataPort } {
  const listeners: { main: ((bytes: Uint8Array) => void) | null; host: ((bytes: Uint8Array) => void) | null } = { main: null, host: null }
  let open = true
  const end = (self: 'main' | 'host', other: 'main' | 'host') => ({
    postMessage(bytes: Uint8Array): void {
      if (open) queueMicrotask(() => listeners[other]?.(bytes))
    },
    on(_event: 'message', fn: (bytes: Uint8Array) => void): void {
      listeners[self] = fn
    },
    close(): void {
      open = false
    },
  })
  return { main: end('main', 'host'), host: end('host', 'main') }
}

/**
 * How to start a worker: the compiled entry point under dist/, or — when this module
 * itself runs as TypeScript (tests, `tsx`) — the TypeScript source, loaded through
 * tsx's loader registered inside the new thread (Node 20 ignores `--import` in a
 * worker's execArgv).
 */
function workerSource(): { source: string; eval: boolean } {
  const here = import.meta.url
  if (!here.endsWith('.ts')) return { source: fileURLToPath(new URL('../../workers/group-worker.js', here)), eval: false }
  const entry = new URL('../../workers/group-worker.ts', here).href
  return { source: `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}) })`, eval: true }
}

export class GroupHost {
  readonly #slots: WorkerSlot[] = []
  readonly #placement = new Map<number, WorkerSlot>()
  readonly #waiting = new Map<number, { resolve: (r: WorkerReply) => void }>()
  readonly #log: ActorLogger
  #nextRid = 1
  #flushScheduled = false
  #stopping = false
  /** Where what the workers say unasked goes (Raft messages for peers, leader changes). */
  onEvent: (ev: WorkerEvent) => void = () => {}

  private constructor(log: ActorLogger) {
    this.#log = log
  }

  static async start(
    opts: { workers: number; log: ActorLogger; logLevel: string; nodeId: number; walGeneration: string } & Omit<ReplicaHostOptions, 'seed' | 'walDir'>,
  ): Promise<GroupHost> {
    // every thread hosting groups (the main thread's controller too) gets its share of the open stores
    const openStoresMax = Math.max(16, Math.floor(limits.storage.openStoresMax / (opts.workers + 1)))
    GroupStore.setOpenBudget(openStoresMax)
    const hostOptions = { openStoresMax, tickMs: opts.tickMs, retentionCheckMs: opts.retentionCheckMs, producerExpiryMs: opts.producerExpiryMs, ...(opts.walSegmentBytes ? { walSegmentBytes: opts.walSegmentBytes } : {}), ...(opts.viewEntriesMax ? { viewEntriesMax: opts.viewEntriesMax } : {}) }
    const host = new GroupHost(opts.log)
    if (opts.workers === 0) {
      const channel = localChannel()
      const replicas = ReplicaHost.create(channel.host, opts.log, { ...hostOptions, seed: opts.nodeId * 1000, walDir: join(opts.walGeneration, 'w0') })
      channel.main.on('message', (bytes) => host.#onReplies(bytes))
      host.#slots.push({ worker: null, port: channel.main, control: replicas, queue: [], groups: 0, exited: false })
      return host
    }
    const entry = workerSource()
    for (let i = 0; i < opts.workers; i++) {
      const { port1, port2 } = new MessageChannel()
      const worker = new Worker(entry.source, {
        eval: entry.eval,
        workerData: { port: port2, workerIndex: i, logLevel: opts.logLevel, nodeId: opts.nodeId, walDir: join(opts.walGeneration, `w${i}`), ...hostOptions },
        transferList: [port2],
      })
      const slot: WorkerSlot = {
        worker,
        port: port1,
        control: Comlink.wrap<ReplicaControl>(nodeEndpoint(worker as never)),
        queue: [],
        groups: 0,
        exited: false,
      }
      worker.on('error', (err) => host.#log.error({ worker: i, err }, 'worker thread failed'))
      worker.on('exit', (code) => {
        if (!slot.exited && !host.#stopping) host.#log.error({ worker: i, code }, 'worker thread exited unexpectedly')
        slot.exited = true
      })
      port1.on('message', (bytes: Uint8Array) => host.#onReplies(bytes))
      host.#slots.push(slot)
    }
    await Promise.all(host.#slots.map((s) => s.control.ready()))
    return host
  }

  /** Opens a group on its worker; resolves with why it cannot serve (it is not placed then), or null. */
  async openGroup(spec: ReplicaSpec): Promise<string | null> {
    const slot = this.#slots[spec.groupId % this.#slots.length]!
    const err = await slot.control.open(spec)
    if (err !== null) return err
    if (this.#placement.has(spec.groupId)) return null
    this.#placement.set(spec.groupId, slot)
    slot.groups++
    return null
  }

  /** Hands every partition led here back to its preferred replica where it may go now; how many transfers started. */
  async electPreferred(): Promise<number> {
    const all = await Promise.all(this.#slots.filter((s) => !s.exited).map((s) => s.control.electPreferred()))
    return all.reduce((a, b) => a + b, 0)
  }

  /** Every replica hosted here, as `raftmq cluster status` shows it. */
  async status(): Promise<GroupReport[]> {
    const all = await Promise.all(this.#slots.filter((s) => !s.exited).map((s) => s.control.status()))
    return all.flat().sort((a, b) => a.groupId - b.groupId)
  }

  /** Durable WAL commits across the workers since start (each one write and one fdatasync). */
  async syncs(): Promise<number> {
    const counts = await Promise.all(this.#slots.filter((s) => !s.exited).map((s) => s.control.syncs()))
    return counts.reduce((a, b) => a + b, 0)
  }

  async closeGroup(groupId: number, removeData: boolean): Promise<void> {
    const slot = this.#placement.get(groupId)
    if (!slot) return
    this.#placement.delete(groupId)
    slot.groups--
    await slot.control.close(groupId, removeData)
  }

  /**
   * Raft messages from peers, to the workers hosting their groups (one buffer per worker
   * with the next post). Messages for groups not hosted here are dropped: the sender's
   * Raft retransmits, and a group still opening takes them then.
   */
  deliver(items: readonly GroupMessage[]): void {
    const bySlot = new Map<WorkerSlot, GroupMessage[]>()
    for (const item of items) {
      const slot = this.#placement.get(item[0])
      if (!slot || slot.exited) continue
      let list = bySlot.get(slot)
      if (!list) bySlot.set(slot, (list = []))
      list.push(item)
    }
    if (bySlot.size === 0) return
    for (const [slot, list] of bySlot) slot.queue.push({ t: 'raft', bytes: encodeRaftBatch(list) })
    this.#scheduleFlush()
  }

  /** What the metadata says of group `gid` now (its move target, its retention), for its replica here. */
  assign(gid: number, assignment: ReplicaAssignment): void {
    const slot = this.#placement.get(gid)
    if (!slot || slot.exited) return
    slot.queue.push({ t: 'assignment', gid, assignment })
    this.#scheduleFlush()
  }

  /** The failure detector lost node `id`: every worker's groups are told (RaftNode.peerDown). */
  peerDown(id: number): void {
    for (const slot of this.#slots) if (!slot.exited) slot.queue.push({ t: 'peerDown', node: id })
    this.#scheduleFlush()
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#waiting.size
  }

  hasGroup(groupId: number): boolean {
    return this.#placement.has(groupId)
  }

  /** Every group hosted here. */
  groupIds(): number[] {
    return [...this.#placement.keys()]
  }

  /** Sends one request to the worker hosting its group; resolves with the reply. */
  request(req: Outgoing): Promise<WorkerReply> {
    return this.cancellable(req).reply
  }

  /**
   * `request`, with a way to end it early: a parked long-poll fetch answered at once with
   * what it has (the other requests ignore a cancel).
   */
  cancellable(req: Outgoing): { readonly reply: Promise<WorkerReply>; cancel(): void } {
    const rid = this.#nextRid++
    const full = { ...req, rid } as WorkerRequest
    const slot = 'gid' in req ? this.#placement.get(req.gid) : undefined
    if (!slot || slot.exited) {
      const error = { code: 'UNKNOWN_PARTITION', message: `group ${'gid' in req ? req.gid : '?'} is not hosted here` }
      return { reply: Promise.resolve({ rid, ok: false, error }), cancel: () => {} }
    }
    const reply = new Promise<WorkerReply>((resolve) => {
      this.#waiting.set(rid, { resolve })
      slot.queue.push(full)
      this.#scheduleFlush()
    })
    const cancel = (): void => {
      if (!this.#waiting.has(rid)) return
      slot.queue.push({ t: 'cancel', rid })
      this.#scheduleFlush()
    }
    return { reply, cancel }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    queueMicrotask(() => {
      this.#flushScheduled = false
      for (const slot of this.#slots) {
        if (slot.queue.length === 0) continue
        const bytes = packPost(slot.queue)
        slot.queue = []
        slot.port.postMessage(bytes, [bytes.buffer as ArrayBuffer])
      }
    })
  }

  #onReplies(bytes: Uint8Array): void {
    for (const r of unpackPost<WorkerPost>(bytes)) {
      if ('ev' in r) {
        this.onEvent(r)
        continue
      }
      const w = this.#waiting.get(r.rid)
      if (!w) continue
      this.#waiting.delete(r.rid)
      w.resolve(r)
    }
  }

  /** Shuts every worker down (each closes its groups, their stores and its WAL); resolves with what each reported. */
  async stop(): Promise<WorkerShutdown[]> {
    this.#stopping = true
    const reports = await Promise.all(
      this.#slots.map(async (s, worker): Promise<WorkerShutdown> => {
        const report = s.exited ? { storage: [], closeErrors: ['the worker thread had exited before shutdown'] } : await s.control.shutdown()
        s.port.close()
        if (s.worker) {
          ;(s.control as Comlink.Remote<ReplicaControl>)[Comlink.releaseProxy]()
          await s.worker.terminate()
        }
        return { worker, ...report }
      }),
    )
    for (const [rid, w] of this.#waiting) w.resolve({ rid, ok: false, error: { code: 'SHUTTING_DOWN', message: 'the node is shutting down' } })
    this.#waiting.clear()
    return reports
  }
}
