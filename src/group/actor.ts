/**
 * GroupActor: one Raft group replica as an actor. It owns a RaftNode and the proposals
 * waiting on it, and applies committed entries to an injected state machine. It does not
 * drive itself: the worker's Ready loop (worker-loop.ts) takes its Ready, makes it
 * durable together with every other group's in one write, and hands it back
 * (`afterPersist`), so the actor only says when it has work (`loop.kick`).
 *
 * The same class runs in a worker thread (over the WAL engine) and in tests and the
 * simulator (over an in-memory engine); it knows nothing about partitions or topics:
 * `apply` returns whatever result the proposer should get.
 *
 * Invariant: entries are applied in index order exactly once per process lifetime, and
 * a proposal resolves only with the results of its own entries (same index and term);
 * if another leader's entries replaced them, it fails with PROPOSAL_DROPPED.
 *
 * Peers: a Ready's `messages` leave through `sendToPeers` when the loop takes it (a
 * leader's appends go before its own sync), its `messagesAfterPersist` once the loop's
 * commit made it durable. A follower too far behind gets the leader's snapshot: once it
 * is durable the state machine is restored from it (`ActorStateMachine.restore`) and
 * applying resumes after its index; proposals it covers fail with PROPOSAL_DROPPED (the
 * snapshot carries no results: their outcome is unknown, a retry is what resolves it).
 *
 * Imports base and raft only.
 */
import { assert, fail, limits, ok } from '../base/index.js'
import type { Prng, Result } from '../base/index.js'
import { RaftNode } from '../raft/index.js'
import type { ConfChange, Entry, Message, NodeId, ProposeError, Proposed, RaftOptions, Ready, Snapshot, Storage } from '../raft/index.js'

export interface ActorStateMachine<R> {
  /** Applies one committed entry (empty entries and configuration changes included) and returns its result. */
  apply(entry: Entry): R
  /**
   * Becomes the state of a leader's snapshot (durable by now), as of its index. Needed
   * by any group with peers: a lone voter is never sent one.
   */
  restore?(snapshot: Snapshot): void
}

/** The subset of a pino logger the actor uses. */
export interface ActorLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

/** What the loop sees of an actor (whatever its result type). */
export interface LoopActor {
  readonly groupId: number
  takeReady(): Ready | null
  afterPersist(rd: Ready): void
  failStorage(message: string): void
  stop(): void
}

/** What an actor needs from the loop that drives it. */
export interface ActorLoop {
  /** The actor has work (a Ready may be waiting): take it in the next turn. */
  kick(actor: LoopActor): void
  /** Why proposals are refused now (the disk is full, or failed), or null. */
  readonly blocked: { readonly code: 'STORAGE_FULL' | 'STORAGE_FAILED'; readonly message: string } | null
}

export interface GroupActorOptions<R> {
  readonly groupId: number
  readonly nodeId: NodeId
  /** The view of the group's log the core reads (the loop's engine keeps it current). */
  readonly storage: Storage
  readonly stateMachine: ActorStateMachine<R>
  readonly prng: Prng
  /** Index the state machine has already applied (it persists its own state). */
  readonly applied: number
  readonly raft?: Partial<Omit<RaftOptions, 'id' | 'storage' | 'prng' | 'applied'>>
  /** Sends Raft messages to peers (unused by a single-voter group). */
  readonly sendToPeers?: (msgs: readonly Message[]) => void
  /** Called when the group's leader changes (0: none known), with the term, for routing. */
  readonly onLeader?: (leader: NodeId, term: number) => void
  /** Called after each applied run of entries (e.g. to write them out and wake long-polling fetches). */
  readonly onApplied?: (lastIndex: number) => void
  readonly log: ActorLogger
}

/** Election timeouts a former leader's pending proposals wait for their outcome before they fail as unknown. */
const ORPHAN_ELECTIONS = 2

export type ActorProposeError = ProposeError | 'PROPOSAL_DROPPED' | 'STOPPED' | 'STORAGE_FULL' | 'STORAGE_FAILED'

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

export class GroupActor<R> implements LoopActor {
  readonly groupId: number
  readonly node: RaftNode
  readonly #opts: GroupActorOptions<R>
  readonly #loop: ActorLoop
  /** Pending proposals, sorted by index (a new term's proposals may land below an old term's). */
  #pending: Pending<R>[] = []
  #stopped = false
  #failed: Error | null = null
  #appliedIndex: number
  #appliedTerm = 0
  readonly #electionTicks: number
  /** Ticks this replica has not led with proposals still pending (#expireOrphans). */
  #orphanTicks = 0

  constructor(loop: ActorLoop, opts: GroupActorOptions<R>) {
    this.#loop = loop
    this.#opts = opts
    this.groupId = opts.groupId
    this.#appliedIndex = opts.applied
    this.node = new RaftNode({ id: opts.nodeId, storage: opts.storage, prng: opts.prng, applied: opts.applied, ...opts.raft })
    this.#appliedTerm = Math.max(0, this.node.logTerm(opts.applied))
    this.#electionTicks = opts.raft?.electionTicks ?? limits.raft.electionTicks
  }

  get appliedIndex(): number {
    return this.#appliedIndex
  }

  /** The term of the entry at appliedIndex (for the state the host saves with it). */
  get appliedTerm(): number {
    return this.#appliedTerm
  }

  get stopped(): boolean {
    return this.#stopped || this.#failed !== null
  }

  isLeader(): boolean {
    return this.node.isLeader()
  }

  /** Hands leadership to `target` once its log is complete (false: this replica does not lead, or it is no voter). */
  transferLeader(target: NodeId): boolean {
    if (this.stopped) return false
    const r = this.node.transferLeader(target)
    this.#loop.kick(this)
    return r.ok
  }

  /** A lone voter need not wait for an election timeout. */
  campaign(): void {
    this.node.campaign()
    this.#loop.kick(this)
  }

  tick(): void {
    if (this.stopped) return
    this.node.tick()
    this.#expireOrphans()
    if (this.node.hasReady()) this.#loop.kick(this)
  }

  /**
   * Proposals left pending by a leader that stopped leading resolve when their entries
   * are applied (the next leader kept them) or replaced, usually within milliseconds (a
   * transfer, an election the old leader hears of). A leader that was cut off learns
   * neither until the network heals: after ORPHAN_ELECTIONS election timeouts without
   * leading, they fail with PROPOSAL_DROPPED (their outcome unknown), so the client's
   * retry goes to the new leader instead of waiting out its request timeout.
   */
  #expireOrphans(): void {
    if (this.#pending.length === 0 || this.node.isLeader()) {
      this.#orphanTicks = 0
      return
    }
    if (++this.#orphanTicks < ORPHAN_ELECTIONS * this.#electionTicks) return
    this.#orphanTicks = 0
    const term = this.node.term
    for (const p of this.#pending) {
      p.resolve(fail('PROPOSAL_DROPPED', `this replica stopped leading and has not learned within ${ORPHAN_ELECTIONS} election timeouts whether entries ${p.firstIndex}..${p.lastIndex} of term ${p.term} committed (now term ${term}): their outcome is unknown`))
    }
    this.#pending = []
  }

  /** The node's failure detector lost node `id` (RaftNode.peerDown). */
  peerDown(id: number): void {
    if (this.stopped) return
    this.node.peerDown(id)
    if (this.node.hasReady()) this.#loop.kick(this)
  }

  step(m: Message): void {
    if (this.stopped) return
    this.node.step(m)
    this.#loop.kick(this)
  }

  /** Proposes `datas` as one proposal; resolves once they are committed, durable and applied, with their results. */
  propose(datas: readonly Uint8Array[]): Promise<Result<Committed<R>, ActorProposeError>> {
    return this.#tracked(() => this.node.propose(datas))
  }

  /** Proposes a single-server membership change; resolves once it is committed and applied (the new configuration is in force from its append on). */
  proposeConfChange(cc: ConfChange): Promise<Result<Committed<R>, ActorProposeError>> {
    return this.#tracked(() => this.node.proposeConfChange(cc))
  }

  #tracked(proposeNow: () => Result<Proposed, ProposeError>): Promise<Result<Committed<R>, ActorProposeError>> {
    if (this.#stopped) return Promise.resolve(fail('STOPPED', `group ${this.groupId} is stopping`))
    if (this.#failed) return Promise.resolve(fail('STORAGE_FAILED', `group ${this.groupId} storage failed: ${this.#failed.message}`))
    const blocked = this.#loop.blocked
    if (blocked) return Promise.resolve(fail(blocked.code, blocked.message))
    const r = proposeNow()
    if (!r.ok) return Promise.resolve(r)
    const { firstIndex, lastIndex, term } = r.value
    return new Promise((resolve) => {
      const p: Pending<R> = { firstIndex, lastIndex, term, results: [], resolve }
      let k = this.#pending.length
      while (k > 0 && this.#pending[k - 1]!.firstIndex > firstIndex) k--
      this.#pending.splice(k, 0, p)
      this.#loop.kick(this)
    })
  }

  /** Stops taking work and fails what is still pending (the loop holds no Ready of a stopped actor). */
  stop(): void {
    this.#stopped = true
    for (const p of this.#pending) p.resolve(fail('STOPPED', `group ${this.groupId} stopped before entry ${p.lastIndex} committed`))
    this.#pending = []
  }

  // ---- the loop's side -----------------------------------------------------------------

  /** Step 1 of the Ready contract: takes the Ready and sends what may go before the write. Null: nothing to do. */
  takeReady(): Ready | null {
    if (this.stopped || !this.node.hasReady()) return null
    const rd = this.node.ready()
    if (rd.softState) {
      // a lone voter's elections (at creation and every start) are not news
      const quiet = this.node.voters().length === 1
      this.#opts.log[quiet ? 'debug' : 'info']({ group: this.groupId, role: rd.softState.role, leader: rd.softState.leader, term: this.node.term }, 'raft role changed')
      this.#opts.onLeader?.(rd.softState.leader, this.node.term)
    }
    if (rd.messages.length > 0) this.#opts.sendToPeers?.(rd.messages)
    return rd
  }

  /** Step 3 and 4, once the loop made `rd` durable: acknowledge, apply, advance. */
  afterPersist(rd: Ready): void {
    if (rd.messagesAfterPersist.length > 0) this.#opts.sendToPeers?.(rd.messagesAfterPersist)
    if (rd.snapshot) this.#restore(rd.snapshot)
    if (rd.committedEntries.length > 0) this.#apply(rd.committedEntries)
    this.node.advance()
  }

  /** The loop's storage failed: stop serving rather than guess (fail-stop). */
  failStorage(message: string): void {
    if (!this.#failed) {
      this.#failed = new Error(message)
      this.#opts.log.error({ group: this.groupId, err: message }, 'storage write failed; group stopped')
    }
    for (const p of this.#pending) p.resolve(fail('STORAGE_FAILED', message))
    this.#pending = []
  }

  #restore(snap: Snapshot): void {
    const { index, term } = snap.metadata
    const sm = this.#opts.stateMachine
    assert(sm.restore !== undefined, () => `group ${this.groupId}: a snapshot at ${index} arrived, and the state machine cannot restore one`)
    assert(index > this.#appliedIndex, () => `group ${this.groupId}: a snapshot at ${index}, applied ${this.#appliedIndex} already`)
    sm.restore(snap)
    this.#appliedIndex = index
    this.#appliedTerm = term
    // what the snapshot covers carries no results: those proposals' outcome is unknown
    while (this.#pending.length > 0 && this.#pending[0]!.firstIndex <= index) {
      const p = this.#pending.shift()!
      p.resolve(fail('PROPOSAL_DROPPED', `entries ${p.firstIndex}..${p.lastIndex} of term ${p.term} are covered by a leader's snapshot at ${index}: their outcome is unknown`))
    }
    this.#opts.onApplied?.(index)
  }

  #apply(entries: readonly Entry[]): void {
    const sm = this.#opts.stateMachine
    for (const e of entries) {
      if (e.index <= this.#appliedIndex) continue // already in the state machine's persisted state
      assert(e.index === this.#appliedIndex + 1, () => `group ${this.groupId}: applying ${e.index} after ${this.#appliedIndex}`)
      const result = sm.apply(e)
      this.#appliedIndex = e.index
      this.#appliedTerm = e.term
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
