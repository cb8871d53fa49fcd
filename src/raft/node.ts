/**
 * RaftNode: the driver a host talks to. It wraps Raft with the Ready/advance contract
 * (stated in types.ts on `Ready`): tick/step/propose change state; `ready()` hands out
 * what to persist, send and apply; `advance()` says it was done. One Ready is
 * outstanding at a time, and whatever is proposed or stepped while the host persists
 * it waits for the next one, so one disk sync covers everything that arrived during
 * the previous sync (group commit).
 *
 * Imports base and the other modules of src/raft.
 */
import { assert } from '../base/index.js'
import type { Result } from '../base/index.js'
import type { ConfChange } from './config.js'
import { Raft } from './raft.js'
import type { ProposeError, Proposed, RaftOptions } from './raft.js'
import { ProgressState } from './progress.js'
import { Role } from './types.js'
import type { ConfState, Entry, HardState, Message, NodeId, Ready, SoftState } from './types.js'

export interface Status {
  readonly id: NodeId
  readonly term: number
  readonly vote: NodeId
  readonly leader: NodeId
  readonly role: Role
  readonly commit: number
  readonly applied: number
  readonly lastIndex: number
  readonly firstIndex: number
  readonly voters: readonly NodeId[]
  /** Leader only: per voter, how far its log is known to match, and whether it answered within the last election timeout. */
  readonly progress: ReadonlyMap<NodeId, { readonly match: number; readonly next: number; readonly state: ProgressState; readonly recentActive: boolean }>
}

interface Outstanding {
  readonly ready: Ready
  /** Acknowledgements to ourselves, stepped once the Ready is durable. */
  readonly selfMsgs: readonly Message[]
}

const NO_MESSAGES: readonly Message[] = []
const NO_ENTRIES: readonly Entry[] = []

export class RaftNode {
  readonly #raft: Raft
  #prevHard: HardState
  #prevSoft: SoftState
  #outstanding: Outstanding | null = null

  constructor(opts: RaftOptions) {
    this.#raft = new Raft(opts)
    // what is durable, not what the core starts from: a commit index raised on restart
    // (see RaftLog) differs from the stored one, and the first Ready writes it
    this.#prevHard = opts.storage.initialState().hardState
    this.#prevSoft = this.#raft.softState()
  }

  get id(): NodeId {
    return this.#raft.id
  }

  tick(): void {
    this.#raft.tick()
  }

  /** Feeds a message from a peer. Messages addressed elsewhere are a host bug. */
  step(m: Message): void {
    assert(m.to === this.#raft.id, () => `message for ${m.to} stepped on node ${this.#raft.id}`)
    assert(m.from !== this.#raft.id, 'a host must not deliver a node its own messages')
    this.#raft.step(m)
  }

  /** Ends a quiet spell (RaftOptions.quiesce); proposals, transfers and peers' messages wake the group by themselves. */
  wake(): void {
    this.#raft.wake()
  }

  /** The host's failure detector lost node `id`: a group that depends on it wakes, and a follower of it campaigns soon. */
  peerDown(id: NodeId): void {
    this.#raft.peerDown(id)
  }

  /** Quiet: ticks do nothing until something wakes the group. */
  get quiet(): boolean {
    return this.#raft.quiet
  }

  /** Starts an election now (tests and the first node of a fresh cluster). */
  campaign(): void {
    this.#raft.hup(false)
  }

  propose(datas: readonly Uint8Array[]): Result<Proposed, ProposeError> {
    return this.#raft.propose(datas)
  }

  proposeConfChange(cc: ConfChange): Result<Proposed, ProposeError> {
    return this.#raft.proposeConfChange(cc)
  }

  transferLeader(target: NodeId): Result<null, 'NOT_LEADER' | 'NOT_A_VOTER'> {
    return this.#raft.transferLeader(target)
  }

  reportUnreachable(to: NodeId): void {
    this.#raft.reportUnreachable(to)
  }

  reportSnapshot(to: NodeId, succeeded: boolean): void {
    this.#raft.reportSnapshot(to, succeeded)
  }

  /** The configuration as of index `i`, for the host's snapshots. */
  confAt(i: number): ConfState {
    return this.#raft.confAt(i)
  }

  isLeader(): boolean {
    return this.#raft.role === Role.Leader
  }

  // cheap read-only views (status() builds a whole object)
  get term(): number {
    return this.#raft.term
  }

  get role(): Role {
    return this.#raft.role
  }

  get leader(): NodeId {
    return this.#raft.lead
  }

  get commit(): number {
    return this.#raft.log.committed
  }

  get lastIndex(): number {
    return this.#raft.log.lastIndex()
  }

  get firstIndex(): number {
    return this.#raft.log.firstIndex()
  }

  /** The term of entry `i` in this node's log (durable or not), or TERM_UNAVAILABLE. */
  logTerm(i: number): number {
    return this.#raft.log.term(i)
  }

  /** The voters of the configuration in force. */
  voters(): readonly NodeId[] {
    return this.#raft.conf().voters
  }

  /** Is a Ready waiting (and none outstanding)? */
  hasReady(): boolean {
    if (this.#outstanding) return false
    const r = this.#raft
    const log = r.log
    if (r.msgs.length > 0 || r.msgsAfterPersist.length > 0 || r.hasPendingFlush()) return true
    if (log.unstable.nextSnapshot() || log.unstable.inProgress < log.unstable.offset + log.unstable.entries.length) return true
    if (log.hasNextCommittedEnts()) return true
    const hs = this.#prevHard
    if (hs.term !== r.term || hs.vote !== r.vote || hs.commit !== log.committed) return true
    const ss = this.#prevSoft
    return ss.leader !== r.lead || ss.role !== r.role
  }

  /**
   * Messages that may be sent right now, even while a Ready is outstanding: appends,
   * heartbeats and snapshots promise nothing about our own disk, so a leader need not
   * hold its followers' traffic back while it syncs. (Votes and acknowledgements stay
   * for the Ready they depend on.)
   */
  takeMessages(): readonly Message[] {
    const r = this.#raft
    r.flushAppends()
    if (r.msgs.length === 0) return NO_MESSAGES
    const out = r.msgs
    r.msgs = []
    return out
  }

  /** Takes what the host must do now. Call advance() when it is done. */
  ready(): Ready {
    assert(this.#outstanding === null, 'ready() while a Ready is outstanding: call advance() first')
    const r = this.#raft
    const log = r.log
    r.flushAppends()

    const entries = log.unstable.nextEntries()
    const snapshot = log.unstable.nextSnapshot()
    const committedEntries = log.nextCommittedEnts(r.applyBytesMax)

    let hardState: HardState | null = null
    const hs = this.#prevHard
    if (hs.term !== r.term || hs.vote !== r.vote || hs.commit !== log.committed) hardState = r.hardState()
    let softState: SoftState | null = null
    const ss = this.#prevSoft
    if (ss.leader !== r.lead || ss.role !== r.role) softState = r.softState()

    const messages = r.msgs.length > 0 ? r.msgs : NO_MESSAGES
    r.msgs = []
    let after: readonly Message[] = NO_MESSAGES
    let selfMsgs: readonly Message[] = NO_MESSAGES
    const queued = r.msgsAfterPersist
    if (queued.length > 0) {
      let self = 0
      for (let i = 0; i < queued.length; i++) if (queued[i]!.to === r.id) self++
      if (self === 0) {
        after = queued
      } else if (self === queued.length) {
        selfMsgs = queued
      } else {
        const toPeers: Message[] = []
        const toSelf: Message[] = []
        for (let i = 0; i < queued.length; i++) (queued[i]!.to === r.id ? toSelf : toPeers).push(queued[i]!)
        after = toPeers
        selfMsgs = toSelf
      }
      r.msgsAfterPersist = []
    }

    log.unstable.acceptInProgress()
    if (committedEntries.length > 0) {
      log.acceptApplying(committedEntries[committedEntries.length - 1]!.index)
      r.releaseUncommitted(committedEntries)
    }
    const ready: Ready = {
      softState,
      hardState,
      snapshot,
      entries: entries.length > 0 ? entries : NO_ENTRIES,
      committedEntries: committedEntries.length > 0 ? committedEntries : NO_ENTRIES,
      messages,
      messagesAfterPersist: after,
      // a new commit index alone needs no sync: it can always be learned again
      mustSync: entries.length > 0 || snapshot !== null || (hardState !== null && (hardState.term !== hs.term || hardState.vote !== hs.vote)),
    }
    if (hardState) this.#prevHard = hardState
    if (softState) this.#prevSoft = softState
    this.#outstanding = { ready, selfMsgs }
    return ready
  }

  /** The host has persisted, sent and applied the outstanding Ready. */
  advance(): void {
    const o = this.#outstanding
    assert(o !== null, 'advance() without an outstanding Ready')
    this.#outstanding = null
    const { ready } = o
    const log = this.#raft.log
    if (ready.snapshot) {
      const i = ready.snapshot.metadata.index
      log.stableSnapTo(i)
      log.appliedTo(i)
    }
    if (ready.entries.length > 0) {
      const last = ready.entries[ready.entries.length - 1]!
      log.stableTo(last.index, last.term)
    }
    if (ready.committedEntries.length > 0) {
      log.appliedTo(ready.committedEntries[ready.committedEntries.length - 1]!.index)
    }
    for (const m of o.selfMsgs) this.#raft.step(m)
  }

  /** The host lost the outstanding Ready without doing it (never in normal operation). */
  hasOutstanding(): boolean {
    return this.#outstanding !== null
  }

  /** Leader only: how far voter `id` is known to match, and whether it answered within this election timeout (null: not leading, or no such voter). */
  progressOf(id: NodeId): { readonly match: number; readonly recentActive: boolean } | null {
    const r = this.#raft
    const pr = r.role === Role.Leader ? r.prs.get(id) : undefined
    return pr ? { match: pr.match, recentActive: pr.recentActive } : null
  }

  status(): Status {
    const r = this.#raft
    const progress = new Map<NodeId, { match: number; next: number; state: ProgressState; recentActive: boolean }>()
    if (r.role === Role.Leader) {
      for (const [id, pr] of r.prs) progress.set(id, { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive })
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      leader: r.lead,
      role: r.role,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
      voters: r.conf().voters,
      progress,
    }
  }
}

