/**
 * GroupActor: one Raft group replica as an actor. It owns a RaftNode, its storage and
 * its state machine, and follows the Ready contract (src/raft/types.ts) against an
 * asynchronous, durable `persist`: while one write is in flight, proposals and messages
 * accumulate, and the next Ready writes them all with one sync (group commit). Appends
 * to peers go out at once (takeMessages), acknowledgements only after the write.
 *
 * The same class runs in a worker thread (with LevelDB storage and real timers) and in
 * tests (with MemoryStorage); it knows nothing about partitions or topics: the state
 * machine is injected and `apply` returns whatever result the proposer should get.
 *
 * Invariant: entries are applied in index order exactly once per process lifetime, and
 * a proposal resolves only with the results of its own entries (same index and term);
 * if another leader's entries replaced them, it fails with PROPOSAL_DROPPED.
 *
 * Imports base and raft only.
 */
import { assert, fail, ok } from '../base/index.js'
import type { Prng, Result } from '../base/index.js'
import { RaftNode } from '../raft/index.js'
import type { Entry, Message, NodeId, ProposeError, RaftOptions, Ready, Storage } from '../raft/index.js'

export interface ActorStorage {
  /** What the Raft core reads (synchronously). */
  readonly raft: Storage
  /** Writes the Ready's snapshot, entries and hard state in one write, synced when `rd.mustSync`; writes land in call order. */
  persist(rd: Ready): Promise<void>
}

export interface ActorStateMachine<R> {
  /** Applies one committed entry (empty entries and configuration changes included) and returns its result. */
  apply(entry: Entry): R
}

/** The subset of a pino logger the actor uses. */
export interface ActorLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

export interface GroupActorOptions<R> {
  readonly groupId: number
  readonly nodeId: NodeId
  readonly storage: ActorStorage
  readonly stateMachine: ActorStateMachine<R>
  readonly prng: Prng
  /** Index the state machine has already applied (it persists its own state). */
  readonly applied: number
  readonly raft?: Partial<Omit<RaftOptions, 'id' | 'storage' | 'prng' | 'applied'>>
  /** Sends Raft messages to peers (unused by a single-voter group). */
  readonly sendToPeers?: (msgs: readonly Message[]) => void
  /** Called after each applied batch of entries (e.g. to wake long-polling fetches). */
  readonly onApplied?: (lastIndex: number) => void
  readonly log: ActorLogger
  /** Schedules the next drive step; defaults to queueMicrotask (everything stepped in one turn shares a Ready). */
  readonly schedule?: (fn: () => void) => void
}

export type ActorProposeError = ProposeError | 'PROPOSAL_DROPPED' | 'STOPPED' | 'STORAGE_FAILED'

export interface Committed<R> {
  readonly firstIndex: number
  readonly term: number
  readonly results: R[]
}

interface Pending<R> {
  readonly firstIndex: number
  readonly lastIndex: number
  readonly term: number
  readonly results: R[]
  readonly resolve: (r: Result<Committed<R>, ActorProposeError>) => void
}

export class GroupActor<R> {
  readonly groupId: number
  readonly node: RaftNode
  readonly #opts: GroupActorOptions<R>
  /** Pending proposals, sorted by index (a new term's proposals may land below an old term's). */
  #pending: Pending<R>[] = []
  #persisting: Promise<void> | null = null
  #scheduled = false
  #stopped = false
  #failed: Error | null = null
  #appliedIndex: number

  constructor(opts: GroupActorOptions<R>) {
    this.#opts = opts
    this.groupId = opts.groupId
    this.#appliedIndex = opts.applied
    this.node = new RaftNode({ id: opts.nodeId, storage: opts.storage.raft, prng: opts.prng, applied: opts.applied, ...opts.raft })
  }

  get appliedIndex(): number {
    return this.#appliedIndex
  }

  isLeader(): boolean {
    return this.node.isLeader()
  }

  /** A lone voter need not wait for an election timeout. */
  campaign(): void {
    this.node.campaign()
    this.#kick()
  }

  tick(): void {
    if (this.#stopped) return
    this.node.tick()
    this.#kick()
  }

  step(m: Message): void {
    if (this.#stopped) return
    this.node.step(m)
    this.#kick()
  }

  /** Proposes `datas` as one proposal; resolves once they are committed, durable and applied, with their results. */
  propose(datas: readonly Uint8Array[]): Promise<Result<Committed<R>, ActorProposeError>> {
    if (this.#stopped) return Promise.resolve(fail('STOPPED', `group ${this.groupId} is stopping`))
    if (this.#failed) return Promise.resolve(fail('STORAGE_FAILED', `group ${this.groupId} storage failed: ${this.#failed.message}`))
    const r = this.node.propose(datas)
    if (!r.ok) return Promise.resolve(r)
    const { firstIndex, lastIndex, term } = r.value
    return new Promise((resolve) => {
      const p: Pending<R> = { firstIndex, lastIndex, term, results: [], resolve }
      let k = this.#pending.length
      while (k > 0 && this.#pending[k - 1]!.firstIndex > firstIndex) k--
      this.#pending.splice(k, 0, p)
      this.#kick()
    })
  }

  /** Stops taking work, waits for the write in flight and fails what is still pending. */
  async stop(): Promise<void> {
    this.#stopped = true
    while (this.#persisting) await this.#persisting
    for (const p of this.#pending) p.resolve(fail('STOPPED', `group ${this.groupId} stopped before entry ${p.lastIndex} committed`))
    this.#pending = []
  }

  #kick(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    const run = (): void => {
      this.#scheduled = false
      this.#drive()
    }
    if (this.#opts.schedule) this.#opts.schedule(run)
    else queueMicrotask(run)
  }

  #drive(): void {
    if (this.#failed) return
    const node = this.node
    if (this.#persisting) {
      const msgs = node.takeMessages()
      if (msgs.length > 0) this.#opts.sendToPeers?.(msgs)
      return
    }
    if (!node.hasReady()) return
    const rd = node.ready()
    if (rd.softState) {
      this.#opts.log.info({ group: this.groupId, role: rd.softState.role, leader: rd.softState.leader, term: node.term }, 'raft role changed')
    }
    if (rd.messages.length > 0) this.#opts.sendToPeers?.(rd.messages)
    if (!rd.mustSync) {
      // only a new commit index (or nothing) to write: no sync to wait for; the store
      // writes in order, so it lands before anything persisted after it
      if (rd.hardState) void this.#opts.storage.persist(rd).catch((err: unknown) => this.#fail(err))
      this.#afterPersist(rd)
      return
    }
    this.#persisting = this.#opts.storage.persist(rd).then(
      () => {
        this.#persisting = null
        this.#afterPersist(rd)
      },
      (err: unknown) => {
        this.#persisting = null
        this.#fail(err)
      },
    )
  }

  /** A failed write leaves the disk state unknown: stop serving rather than guess. */
  #fail(err: unknown): void {
    if (this.#failed) return
    this.#failed = err instanceof Error ? err : new Error(String(err))
    this.#opts.log.error({ group: this.groupId, err: this.#failed }, 'storage write failed; group stopped')
    for (const p of this.#pending) p.resolve(fail('STORAGE_FAILED', this.#failed.message))
    this.#pending = []
  }

  #afterPersist(rd: Ready): void {
    if (rd.messagesAfterPersist.length > 0) this.#opts.sendToPeers?.(rd.messagesAfterPersist)
    if (rd.committedEntries.length > 0) this.#apply(rd.committedEntries)
    this.node.advance()
    this.#kick()
  }

  #apply(entries: readonly Entry[]): void {
    const sm = this.#opts.stateMachine
    for (const e of entries) {
      if (e.index <= this.#appliedIndex) continue // already in the state machine's persisted state
      assert(e.index === this.#appliedIndex + 1, () => `group ${this.groupId}: applying ${e.index} after ${this.#appliedIndex}`)
      const result = sm.apply(e)
      this.#appliedIndex = e.index
      this.#settle(e, result)
    }
    this.#opts.onApplied?.(this.#appliedIndex)
  }

  /** Collects the result for the proposal that owns entry `e`, resolving it at its last entry. */
  #settle(e: Entry, result: R): void {
    const pending = this.#pending
    while (pending.length > 0) {
      const p = pending[0]!
      if (e.index < p.firstIndex) return
      if (e.index > p.lastIndex || e.term !== p.term) {
        // another leader's entries took its place before it committed
        pending.shift()
        p.resolve(fail('PROPOSAL_DROPPED', `entries ${p.firstIndex}..${p.lastIndex} of term ${p.term} were replaced (entry ${e.index} has term ${e.term})`))
        continue
      }
      p.results.push(result)
      if (e.index === p.lastIndex) {
        pending.shift()
        p.resolve(ok({ firstIndex: p.firstIndex, term: p.term, results: p.results }))
      }
      return
    }
  }
}
