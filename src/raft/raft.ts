/**
 * Raft: the consensus state machine of one group member (Ongaro & Ousterhout, "In Search
 * of an Understandable Consensus Algorithm", and Ongaro's dissertation). Pure and
 * deterministic: no I/O, no timers, no clock, no Math.random. Time is `tick()`,
 * randomness an injected Prng; the host (RaftNode) drains the output queues.
 *
 * What it implements: leader election with pre-vote (§9.6) and check-quorum (§6.2);
 * log replication with many entries per AppendEntries, a bounded in-flight window and
 * fast backtracking by term; commit of current-term entries only, by counting durable
 * acknowledgements (§5.4.2, Figure 8) — the leader's own included only once its write
 * is durable; InstallSnapshot; leadership transfer (§3.10); single-server membership
 * change (config.ts argues its safety); quiescence of idle groups (RaftOptions.quiesce:
 * it only withholds ticks, so it can cost liveness, never safety).
 *
 * Persistence ordering: a message that promises durable state (a vote request, a vote,
 * an append acknowledgement) goes to `msgsAfterPersist`, which the host sends only
 * after the Ready's write is durable. Messages to self in that queue are stepped by
 * RaftNode after the write: that is how the leader counts its own log and a candidate
 * its own vote.
 *
 * Imports base and the other modules of src/raft.
 */
import { assert, fail, limits, ok } from '../base/index.js'
import type { Prng, Result } from '../base/index.js'
import { applyConfChange, checkConfChange, decodeConfChange, encodeConfChange } from './config.js'
import type { ConfChange } from './config.js'
import { RaftLog } from './log.js'
import { Progress, ProgressState } from './progress.js'
import { VoteResult, committedIndex, majority, voteResult } from './quorum.js'
import { TERM_UNAVAILABLE, entryBytes } from './storage.js'
import type { Storage } from './storage.js'
import { EntryType, MessageType, NONE, Role, blankMessage } from './types.js'
import type { ConfState, Entry, HardState, Message, MutableMessage, NodeId, Snapshot, SoftState } from './types.js'

/**
 * Deliberately wrong rules, for tests that prove the simulator catches a broken core.
 * Never set outside tests.
 */
export interface UnsafeRules {
  /** Commit an entry of a previous term by counting replicas (the Figure 8 hazard). */
  readonly commitPriorTermByCounting?: boolean
  /** Grant votes without the §5.4.1 up-to-date check. */
  readonly voteWithoutLogCheck?: boolean
  /** Acknowledge appends to the leader before they are durable. */
  readonly ackBeforePersist?: boolean
  /** A follower takes AppendEntries from a leader of an older term (Figure 2: reply false if term < currentTerm). */
  readonly acceptStaleAppend?: boolean
  /**
   * The host's acknowledgement of a write marks unstable entries stable by index alone,
   * ignoring their term: entries replaced while that write was in flight pass for durable.
   */
  readonly stableByIndexOnly?: boolean
  /** A leader proposes a membership change while an earlier one is not yet committed (§4.1). */
  readonly confChangeWhilePending?: boolean
}

export interface RaftOptions {
  readonly id: NodeId
  readonly storage: Storage
  /** Source of election jitter; seed it to replay a run. */
  readonly prng: Prng
  readonly electionTicks?: number
  readonly heartbeatTicks?: number
  readonly preVote?: boolean
  readonly checkQuorum?: boolean
  readonly inflightMsgsMax?: number
  readonly appendBytesMax?: number
  readonly applyBytesMax?: number
  readonly uncommittedBytesMax?: number
  /**
   * The state machine's applied index on restart: entries up to it are not handed out
   * again. It may exceed the stored commit index (the commit index is raised to it, as
   * anything applied was committed), but not the log's last index: that assertion
   * means the log lost acknowledged entries, which the host must detect and refuse
   * before constructing the node (storage.ts states the restart contract). Below the
   * log's first index it means the host restored the storage's snapshot.
   */
  readonly applied?: number
  /**
   * Idle groups go quiet (CockroachDB's quiescence, TiKV's hibernation): a leader whose
   * every follower holds its whole log as committed sends one last heartbeat that asks
   * them to stop, and then neither it nor they tick, so thousands of idle groups cost no
   * heartbeats. A proposal, a transfer, any message that is not an answer to the leader's
   * own heartbeats or appends, or `peerDown` of a member the group depends on, wakes it.
   * Off by default: the host must run a failure detector that calls `peerDown`, or a
   * quiet follower never notices its leader is gone.
   */
  readonly quiesce?: boolean
  readonly unsafe?: UnsafeRules
}

export type ProposeError =
  | 'NOT_LEADER'
  | 'TRANSFER_IN_PROGRESS'
  | 'PROPOSAL_TOO_LARGE'
  | 'UNCOMMITTED_LIMIT'
  | 'CONF_CHANGE_PENDING'
  | 'CONF_CHANGE_INVALID'

/** Where a proposal landed: entries firstIndex..lastIndex at `term`. */
export interface Proposed {
  readonly firstIndex: number
  readonly lastIndex: number
  readonly term: number
}

function sameVoters(a: ConfState, b: ConfState): boolean {
  return a.voters.length === b.voters.length && a.voters.every((v, i) => v === b.voters[i])
}

function isAfterPersist(type: MessageType): boolean {
  return (
    type === MessageType.AppResp ||
    type === MessageType.Vote ||
    type === MessageType.VoteResp ||
    type === MessageType.PreVoteResp
  )
}

export class Raft {
  readonly id: NodeId
  readonly log: RaftLog
  term = 0
  vote: NodeId = NONE
  lead: NodeId = NONE
  role: Role = Role.Follower
  /** Leader only: one Progress per voter (and for itself). */
  readonly prs = new Map<NodeId, Progress>()
  readonly votes = new Map<NodeId, boolean>()
  /** Messages the host may send at once. */
  msgs: Message[] = []
  /** Messages the host sends only once the current Ready is durable (self-addressed ones are stepped locally). */
  msgsAfterPersist: Message[] = []
  leadTransferee: NodeId = NONE

  readonly #prng: Prng
  readonly #electionTicks: number
  readonly #heartbeatTicks: number
  readonly #preVote: boolean
  readonly #checkQuorum: boolean
  readonly #inflightMsgsMax: number
  readonly #appendBytesMax: number
  readonly #uncommittedBytesMax: number
  readonly #unsafe: UnsafeRules
  readonly #quiesce: boolean
  readonly applyBytesMax: number
  /** Quiet: no ticks (RaftOptions.quiesce). */
  #quiet = false

  #electionElapsed = 0
  #heartbeatElapsed = 0
  #randomizedElectionTimeout = 0
  #uncommittedBytes = 0
  /** Leader: new entries or a new commit index are waiting to be broadcast by flushAppends(). */
  #bcastEntries = false
  #bcastCommit = false

  /** Configuration as of the log's first index - 1 (the snapshot). */
  #baseConf: ConfState
  /** ConfChange entries in the log after the snapshot, in index order, with the configuration each yields. */
  #confLog: { index: number; conf: ConfState }[] = []

  constructor(opts: RaftOptions) {
    assert(Number.isInteger(opts.id) && opts.id > 0, `raft: node id must be a positive integer, got ${opts.id}`)
    this.id = opts.id
    this.#prng = opts.prng
    this.#electionTicks = opts.electionTicks ?? limits.raft.electionTicks
    this.#heartbeatTicks = opts.heartbeatTicks ?? limits.raft.heartbeatTicks
    assert(this.#heartbeatTicks > 0 && this.#electionTicks > this.#heartbeatTicks, 'raft: need 0 < heartbeatTicks < electionTicks')
    this.#preVote = opts.preVote ?? true
    this.#checkQuorum = opts.checkQuorum ?? true
    this.#inflightMsgsMax = opts.inflightMsgsMax ?? limits.raft.inflightMsgsMax
    this.#appendBytesMax = opts.appendBytesMax ?? limits.raft.appendBytesMax
    this.applyBytesMax = opts.applyBytesMax ?? limits.raft.applyBytesMax
    this.#uncommittedBytesMax = opts.uncommittedBytesMax ?? limits.raft.uncommittedBytesMax
    this.#unsafe = opts.unsafe ?? {}
    this.#quiesce = opts.quiesce === true

    this.log = new RaftLog(opts.storage, opts.applied ?? 0, this.#unsafe.stableByIndexOnly === true)
    const { hardState, conf } = opts.storage.initialState()
    this.#baseConf = conf
    // entries kept from before the snapshot are older than its configuration
    const snapIndex = opts.storage.snapshot().metadata.index
    this.#scanConfChanges(Math.max(this.log.firstIndex(), snapIndex + 1), this.log.lastIndex())
    this.term = hardState.term
    this.vote = hardState.vote
    this.becomeFollower(this.term, NONE)
  }

  // ---- configuration -------------------------------------------------------------

  /** The configuration in force: the latest ConfChange in the log (§4.1), else the snapshot's. */
  conf(): ConfState {
    const n = this.#confLog.length
    return n > 0 ? this.#confLog[n - 1]!.conf : this.#baseConf
  }

  /** The configuration as of index `i` (>= the snapshot index), for the host's snapshots. */
  confAt(i: number): ConfState {
    for (let k = this.#confLog.length - 1; k >= 0; k--) {
      if (this.#confLog[k]!.index <= i) return this.#confLog[k]!.conf
    }
    return this.#baseConf
  }

  #lastConfIndex(): number {
    const n = this.#confLog.length
    return n > 0 ? this.#confLog[n - 1]!.index : 0
  }

  promotable(): boolean {
    return this.conf().voters.includes(this.id)
  }

  #scanConfChanges(lo: number, hi: number): void {
    for (let i = lo; i <= hi; ) {
      const ents = this.log.slice(i, hi + 1, 64 << 20)
      this.#noteAppended(ents)
      i += ents.length
    }
  }

  /** Keeps #confLog in step with entries just written to the log (which may have truncated a suffix). */
  #noteAppended(ents: readonly Entry[]): void {
    if (ents.length === 0) return
    const from = ents[0]!.index
    let changed = false
    while (this.#confLog.length > 0 && this.#confLog[this.#confLog.length - 1]!.index >= from) {
      this.#confLog.pop()
      changed = true
    }
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!
      if (e.type !== EntryType.ConfChange) continue
      const cc = decodeConfChange(e.data)
      assert(cc !== null, () => `entry ${e.index} is a ConfChange that does not decode`)
      const prev = this.conf()
      // a node that knows the configuration before the change must agree with the result
      assert(
        prev.voters.length === 0 || sameVoters(applyConfChange(prev, cc), cc.conf),
        () => `ConfChange at ${e.index} yields [${cc.conf.voters.join(',')}], not what [${prev.voters.join(',')}] becomes`,
      )
      this.#confLog.push({ index: e.index, conf: cc.conf })
      changed = true
    }
    if (changed) this.#onConfChanged()
  }

  #onConfChanged(): void {
    if (this.role !== Role.Leader) return
    const voters = this.conf().voters
    for (const id of voters) {
      if (!this.prs.has(id)) this.prs.set(id, new Progress(this.log.lastIndex() + 1, this.#inflightMsgsMax))
    }
    for (const id of [...this.prs.keys()]) {
      if (id !== this.id && !voters.includes(id)) this.prs.delete(id)
    }
    if (this.leadTransferee !== NONE && !voters.includes(this.leadTransferee)) this.abortLeaderTransfer()
    this.#bcastEntries = true
    // a smaller configuration may already hold a majority
    this.#maybeCommit()
  }

  // ---- role changes --------------------------------------------------------------

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term
      this.vote = NONE
    }
    this.lead = NONE
    this.#quiet = false
    this.#electionElapsed = 0
    this.#heartbeatElapsed = 0
    this.#randomizedElectionTimeout = this.#electionTicks + this.#prng.int(this.#electionTicks)
    this.abortLeaderTransfer()
    this.votes.clear()
    this.prs.clear()
    this.#bcastEntries = false
    this.#bcastCommit = false
    this.#uncommittedBytes = 0
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term)
    this.lead = lead
    this.role = Role.Follower
  }

  #becomePreCandidate(): void {
    assert(this.role !== Role.Leader, 'invalid transition leader -> pre-candidate')
    // pre-vote changes neither term nor vote
    this.votes.clear()
    this.lead = NONE
    this.role = Role.PreCandidate
  }

  #becomeCandidate(): void {
    assert(this.role !== Role.Leader, 'invalid transition leader -> candidate')
    this.#reset(this.term + 1)
    this.vote = this.id
    this.role = Role.Candidate
  }

  #becomeLeader(): void {
    assert(this.role === Role.Candidate, () => `invalid transition ${this.role} -> leader`)
    this.#reset(this.term)
    this.lead = this.id
    this.role = Role.Leader
    const last = this.log.lastIndex()
    for (const id of this.conf().voters) this.prs.set(id, new Progress(last + 1, this.#inflightMsgsMax))
    if (!this.prs.has(this.id)) this.prs.set(this.id, new Progress(last + 1, this.#inflightMsgsMax))
    const self = this.prs.get(this.id)!
    self.becomeReplicate()
    // what is already durable counts now; the rest is acknowledged with the empty entry below
    self.match = this.log.unstable.snapshot ? 0 : this.log.unstable.offset - 1
    self.next = last + 1
    self.recentActive = true
    // §8: commit an entry of the new term so earlier entries commit with it
    this.#appendEntries([{ term: this.term, index: last + 1, type: EntryType.Normal, data: new Uint8Array(0) }])
  }

  // ---- time ------------------------------------------------------------------------

  tick(): void {
    if (this.#quiet) return
    if (this.role === Role.Leader) this.#tickHeartbeat()
    else this.#tickElection()
  }

  #tickElection(): void {
    this.#electionElapsed++
    if (this.promotable() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0
      this.hup(false)
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++
    this.#electionElapsed++
    if (this.#electionElapsed >= this.#electionTicks) {
      this.#electionElapsed = 0
      if (this.#checkQuorum && !this.#quorumActive()) {
        this.becomeFollower(this.term, NONE)
        return
      }
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer()
    }
    for (const pr of this.prs.values()) {
      if (pr.state === ProgressState.Snapshot && ++pr.snapshotTicks > this.#electionTicks) {
        // the snapshot (or its answer) was lost: probe again, which resends it if still needed
        pr.becomeProbe()
      }
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTicks) {
      this.#heartbeatElapsed = 0
      const quiesce = this.#mayQuiesce()
      this.#bcastHeartbeat(quiesce)
      if (quiesce) this.#quiet = true
    }
  }

  /** Leader: nothing left to send, and every follower has said it holds the whole log as committed. */
  #mayQuiesce(): boolean {
    if (!this.#quiesce || this.leadTransferee !== NONE) return false
    const last = this.log.lastIndex()
    if (this.log.committed !== last) return false
    for (const [id, pr] of this.prs) {
      if (pr.match !== last) return false
      if (id !== this.id && (pr.commitHeld !== last || pr.state !== ProgressState.Replicate)) return false
    }
    return true
  }

  get quiet(): boolean {
    return this.#quiet
  }

  /** Ends a quiet spell: the group ticks again (a leader checks its quorum afresh, and goes quiet again only after a new round of answers). */
  wake(): void {
    if (!this.#quiet) return
    this.#quiet = false
    if (this.role !== Role.Leader) return
    this.#electionElapsed = 0
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue
      pr.recentActive = false
      pr.commitHeld = 0
    }
  }

  /**
   * The host's failure detector lost node `id` (its connection closed, or it went silent).
   * A quiet leader with `id` among its voters wakes; a follower of `id` wakes and treats
   * its leader's lease as over, so it campaigns within one randomised election timeout and
   * grants votes to whoever does first (pre-vote still protects a leader others can reach).
   */
  peerDown(id: NodeId): void {
    if (id === this.id) return
    if (this.role === Role.Leader) {
      if (this.prs.has(id)) this.wake()
      return
    }
    if (this.lead !== id) return
    this.wake()
    this.#electionElapsed = Math.max(this.#electionElapsed, this.#electionTicks)
  }

  /** Does `m` leave a quiet group quiet? Only the answers to the leader's own last round, and the leader's request to stay quiet. */
  #keepsQuiet(m: Message): boolean {
    if (m.term !== this.term) return false
    if (this.role === Role.Leader) return m.type === MessageType.HeartbeatResp || (m.type === MessageType.AppResp && !m.reject)
    return m.type === MessageType.Heartbeat && m.quiesce && m.from === this.lead
  }

  /** §6.2 check-quorum: has a majority of voters been heard from since the last round? */
  #quorumActive(): boolean {
    const voters = this.conf().voters
    let active = 0
    for (const id of voters) {
      if (id === this.id) {
        active++
        continue
      }
      const pr = this.prs.get(id)
      if (pr?.recentActive) active++
      if (pr) pr.recentActive = false
    }
    return active >= majority(voters.length)
  }

  // ---- elections -----------------------------------------------------------------

  /** Starts an election (after pre-vote unless `transfer`), if this node may lead. */
  hup(transfer: boolean): void {
    if (this.role === Role.Leader || !this.promotable()) return
    if (this.#preVote && !transfer) this.#campaign(true, false)
    else this.#campaign(false, transfer)
  }

  #campaign(pre: boolean, transfer: boolean): void {
    let voteType: MessageType
    let term: number
    if (pre) {
      this.#becomePreCandidate()
      voteType = MessageType.PreVote
      term = this.term + 1
    } else {
      this.#becomeCandidate()
      voteType = MessageType.Vote
      term = this.term
    }
    const index = this.log.lastIndex()
    const logTerm = this.log.lastTerm()
    for (const id of this.conf().voters) {
      if (id === this.id) {
        // our own vote counts once it is durable (it arrives through msgsAfterPersist)
        const m = this.#message(pre ? MessageType.PreVoteResp : MessageType.VoteResp, id, term)
        this.msgsAfterPersist.push(m)
        continue
      }
      const m = this.#message(voteType, id, term)
      m.index = index
      m.logTerm = logTerm
      m.transfer = transfer
      this.#send(m)
    }
  }

  #poll(from: NodeId, granted: boolean): VoteResult {
    this.votes.set(from, granted)
    return voteResult(this.conf().voters, this.votes)
  }

  // ---- messages ------------------------------------------------------------------

  #message(type: MessageType, to: NodeId, term: number): MutableMessage {
    return blankMessage(type, this.id, to, term)
  }

  #send(m: MutableMessage): void {
    assert(m.to !== this.id || isAfterPersist(m.type), 'only durable acknowledgements are sent to self')
    const early = this.#unsafe.ackBeforePersist === true && m.type === MessageType.AppResp
    if (isAfterPersist(m.type) && !early) this.msgsAfterPersist.push(m)
    else this.msgs.push(m)
  }

  /** Feeds one message from a peer (or a self-acknowledgement, after persistence). */
  step(m: Message): void {
    // a node outside the configuration (removed, never told so, and campaigning) does not wake a
    // quiet group: its members all hold the latest configuration, as they hold the whole log
    if (this.#quiet && !this.#keepsQuiet(m) && this.conf().voters.includes(m.from)) this.wake()
    if (m.term > this.term) {
      if ((m.type === MessageType.Vote || m.type === MessageType.PreVote) && this.#ignoresOutsider(m)) return
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        // §6 / §9.6: a node that heard from a leader recently ignores a campaign, unless the leader itself asked for it
        const inLease = this.#checkQuorum && this.lead !== NONE && this.#electionElapsed < this.#electionTicks
        if (inLease && !m.transfer) return
      }
      if (m.type === MessageType.PreVote) {
        // a pre-vote does not move our term
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // a granted pre-vote carries the future term; we adopt it only by campaigning
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from)
      } else {
        this.becomeFollower(m.term, NONE)
      }
    } else if (m.term < this.term) {
      if (this.#unsafe.acceptStaleAppend === true && m.type === MessageType.App && this.role === Role.Follower) {
        this.#handleAppend(m)
        return
      }
      if ((this.#checkQuorum || this.#preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // tell a stale leader about the newer term so it steps down (and a node stuck
        // at a higher term by pre-vote-less elections gets noticed)
        this.#send(this.#message(MessageType.AppResp, m.from, this.term))
      } else if (m.type === MessageType.PreVote || m.type === MessageType.Vote) {
        // Figure 2: answer with our term, so a candidate stuck at a lower term catches up
        // (otherwise a node whose configuration never sends us anything could campaign
        // below our term forever while holding the log the cluster needs)
        const r = this.#message(m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp, m.from, this.term)
        r.reject = true
        this.#send(r)
      }
      return
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.#handleVoteRequest(m)
      return
    }
    switch (this.role) {
      case Role.Leader:
        this.#stepLeader(m)
        break
      case Role.Candidate:
      case Role.PreCandidate:
        this.#stepCandidate(m)
        break
      default:
        this.#stepFollower(m)
    }
  }

  /**
   * §4.2.3: a removed voter that never learned of its removal times out and campaigns at ever
   * higher terms; adopting its term would depose a healthy leader (pre-vote and check-quorum
   * each stop that, but either may be off). A campaign from outside our configuration whose
   * log is not as up to date as ours would be refused anyway, so it is dropped whole, term
   * and all: losing it is like losing the message. One whose log is at least as up to date is
   * handled as usual, because that candidate may hold a configuration we have not seen yet
   * (one that adds it back), and refusing it could leave the group without an electable node.
   */
  #ignoresOutsider(m: Message): boolean {
    if (this.conf().voters.includes(m.from) || m.transfer) return false
    return this.#unsafe.voteWithoutLogCheck !== true && !this.log.isUpToDate(m.index, m.logTerm)
  }

  #handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term)
    const upToDate = this.#unsafe.voteWithoutLogCheck === true || this.log.isUpToDate(m.index, m.logTerm)
    const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp
    if (canVote && upToDate) {
      this.#send(this.#message(respType, m.from, m.term))
      if (m.type === MessageType.Vote) {
        this.#electionElapsed = 0
        this.vote = m.from
      }
    } else {
      const r = this.#message(respType, m.from, this.term)
      r.reject = true
      this.#send(r)
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.#electionElapsed = 0
        this.lead = m.from
        this.#handleAppend(m)
        break
      case MessageType.Heartbeat:
        this.#electionElapsed = 0
        this.lead = m.from
        this.#handleHeartbeat(m)
        break
      case MessageType.Snap:
        this.#electionElapsed = 0
        this.lead = m.from
        this.#handleSnapshot(m)
        break
      case MessageType.TimeoutNow:
        this.hup(true)
        break
      default:
      // responses addressed to an earlier role of ours
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from)
        this.#handleAppend(m)
        break
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from)
        this.#handleHeartbeat(m)
        break
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from)
        this.#handleSnapshot(m)
        break
      case MessageType.PreVoteResp:
      case MessageType.VoteResp: {
        const mine = this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp
        if (m.type !== mine) break
        const r = this.#poll(m.from, !m.reject)
        if (r === VoteResult.Won) {
          if (this.role === Role.PreCandidate) this.#campaign(false, m.transfer)
          else this.#becomeLeader()
        } else if (r === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE)
        }
        break
      }
      default:
    }
  }

  #stepLeader(m: Message): void {
    const pr = this.prs.get(m.from)
    if (!pr) return // not (or no longer) a member
    switch (m.type) {
      case MessageType.AppResp:
        if (m.from === this.id) {
          // our own write is durable up to m.index
          if (pr.maybeUpdate(m.index) && m.index > this.log.committed) this.#maybeCommit()
          return
        }
        pr.recentActive = true
        if (m.reject) this.#handleAppendRejected(m, pr)
        else this.#handleAppendAccepted(m, pr)
        break
      case MessageType.HeartbeatResp:
        pr.recentActive = true
        pr.probeSent = false
        pr.commitHeld = m.commit
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne()
        if (pr.match < this.log.lastIndex()) this.#maybeSendAppend(m.from, true)
        break
      default:
    }
  }

  #handleAppendRejected(m: Message, pr: Progress): void {
    let nextProbe = m.rejectHint
    if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm)
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      if (pr.state === ProgressState.Replicate) pr.becomeProbe()
      this.#maybeSendAppend(m.from, true)
    }
  }

  #handleAppendAccepted(m: Message, pr: Progress): void {
    const wasPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === ProgressState.Probe)) return
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate()
    } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe()
      pr.becomeReplicate()
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index)
    }
    const committed = m.index > this.log.committed && this.#maybeCommit()
    if (!committed && wasPaused) this.#maybeSendAppend(m.from, true)
    while (this.#maybeSendAppend(m.from, false)) {
      // fill the in-flight window
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.#send(this.#message(MessageType.TimeoutNow, m.from, this.term))
    }
  }

  #handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      const r = this.#message(MessageType.AppResp, m.from, this.term)
      r.index = this.log.committed
      this.#send(r)
      return
    }
    const r = this.#message(MessageType.AppResp, m.from, this.term)
    if (this.log.matchTerm(m.index, m.logTerm)) {
      const lastNew = m.index + m.entries.length
      const ci = this.log.findConflict(m.entries)
      if (ci !== 0) {
        assert(ci > this.log.committed, () => `entry ${ci} conflicts with committed entry (committed ${this.log.committed})`)
        this.#appendToLog(ci === m.entries[0]!.index ? m.entries : m.entries.slice(ci - m.index - 1))
      }
      this.log.commitTo(Math.min(m.commit, lastNew))
      r.index = lastNew
    } else {
      // fast backtracking: point the leader at the last entry that can possibly match
      const hintIndex = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm)
      const hintTerm = this.log.term(hintIndex)
      r.index = m.index
      r.reject = true
      r.rejectHint = hintIndex
      r.logTerm = hintTerm === TERM_UNAVAILABLE ? 0 : hintTerm
    }
    this.#send(r)
  }

  #handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit)
    const r = this.#message(MessageType.HeartbeatResp, m.from, this.term)
    r.commit = this.log.committed
    this.#send(r)
    this.#quiet = this.#quiesce && m.quiesce
  }

  #handleSnapshot(m: Message): void {
    const snap = m.snapshot
    assert(snap !== null, 'Snap message without a snapshot')
    const r = this.#message(MessageType.AppResp, m.from, this.term)
    r.index = this.#restore(snap) ? this.log.lastIndex() : this.log.committed
    this.#send(r)
  }

  /** Installs a leader's snapshot unless our log already covers it; returns whether it did. */
  #restore(snap: Snapshot): boolean {
    const { index, term, conf } = snap.metadata
    if (index <= this.log.committed) return false
    if (this.log.matchTerm(index, term)) {
      this.log.commitTo(index)
      return false
    }
    this.log.restore(snap)
    this.#baseConf = conf
    this.#confLog = []
    return true
  }

  // ---- leader: replication ------------------------------------------------------

  #appendToLog(ents: readonly Entry[]): void {
    this.log.append(ents)
    this.#noteAppended(ents)
  }

  #appendEntries(ents: Entry[]): void {
    this.#appendToLog(ents)
    let bytes = 0
    for (let k = 0; k < ents.length; k++) bytes += entryBytes(ents[k]!)
    this.#uncommittedBytes += bytes
    this.wake()
    // count our own copy once the host has made it durable
    const ack = this.#message(MessageType.AppResp, this.id, this.term)
    ack.index = this.log.lastIndex()
    this.msgsAfterPersist.push(ack)
    this.#bcastEntries = true
  }

  readonly #matchOf = (id: NodeId): number => this.prs.get(id)?.match ?? 0

  /** Advances the commit index to what a majority has durably acknowledged (current-term entries only). */
  #maybeCommit(): boolean {
    const voters = this.conf().voters
    const mci = committedIndex(voters, this.#matchOf)
    if (!this.log.maybeCommit(mci, this.term, this.#unsafe.commitPriorTermByCounting === true)) return false
    this.#bcastCommit = true
    if (!voters.includes(this.id) && this.#lastConfIndex() <= this.log.committed) {
      // §4.2.2: the configuration that removed us is committed: hand over by stepping down
      this.flushAppends()
      this.becomeFollower(this.term, NONE)
    }
    return true
  }

  /** Sends what accumulated since the last call: new entries and the new commit index. */
  flushAppends(): void {
    if (this.role !== Role.Leader || (!this.#bcastEntries && !this.#bcastCommit)) return
    const sendIfEmpty = this.#bcastCommit
    this.#bcastEntries = false
    this.#bcastCommit = false
    for (const id of this.prs.keys()) {
      if (id === this.id) continue
      if (this.#maybeSendAppend(id, sendIfEmpty)) {
        while (this.#maybeSendAppend(id, false)) {
          // fill the in-flight window
        }
      }
    }
  }

  hasPendingFlush(): boolean {
    return this.role === Role.Leader && (this.#bcastEntries || this.#bcastCommit)
  }

  #maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to)
    if (!pr || pr.isPaused()) return false
    const prevIndex = pr.next - 1
    const prevTerm = this.log.term(prevIndex)
    if (prevTerm === TERM_UNAVAILABLE || pr.next < this.log.firstIndex()) return this.#maybeSendSnapshot(to, pr)
    const ents = this.log.entriesFrom(pr.next, this.#appendBytesMax)
    if (ents.length === 0 && !sendIfEmpty) return false
    const m = this.#message(MessageType.App, to, this.term)
    m.index = prevIndex
    m.logTerm = prevTerm
    m.entries = ents
    m.commit = this.log.committed
    this.#send(m)
    pr.sentEntries(ents.length, prevIndex + ents.length)
    return true
  }

  #maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false // it may be down: wait until it answers
    const snap = this.log.unstable.snapshot ?? this.log.storage.snapshot()
    assert(snap.metadata.index > 0, 'log compacted without a snapshot')
    const m = this.#message(MessageType.Snap, to, this.term)
    m.snapshot = snap
    this.#send(m)
    pr.becomeSnapshot(snap.metadata.index)
    return true
  }

  #bcastHeartbeat(quiesce: boolean): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue
      const m = this.#message(MessageType.Heartbeat, id, this.term)
      m.commit = Math.min(pr.match, this.log.committed)
      m.quiesce = quiesce
      this.#send(m)
    }
  }

  // ---- leader: client-facing operations ------------------------------------------

  #canPropose(): ProposeError | null {
    if (this.role !== Role.Leader) return 'NOT_LEADER'
    if (this.leadTransferee !== NONE) return 'TRANSFER_IN_PROGRESS'
    return null
  }

  /** Appends one entry per element of `datas` as one proposal. */
  propose(datas: readonly Uint8Array[]): Result<Proposed, ProposeError> {
    const refused = this.#canPropose()
    if (refused) return fail(refused, refused === 'NOT_LEADER' ? `not the leader (leader hint ${this.lead})` : 'leadership transfer in progress')
    if (datas.length === 0 || datas.length > limits.raft.proposalEntriesMax) {
      return fail('PROPOSAL_TOO_LARGE', `a proposal holds 1..${limits.raft.proposalEntriesMax} entries, got ${datas.length}`)
    }
    let bytes = 0
    // .length, not .byteLength: the same number for a Uint8Array, and several times faster on Node 20
    for (let k = 0; k < datas.length; k++) bytes += datas[k]!.length + 24
    if (this.#uncommittedBytes > 0 && this.#uncommittedBytes + bytes > this.#uncommittedBytesMax) {
      return fail('UNCOMMITTED_LIMIT', `uncommitted entries would exceed ${this.#uncommittedBytesMax} bytes`)
    }
    const first = this.log.lastIndex() + 1
    const ents = new Array<Entry>(datas.length)
    for (let k = 0; k < datas.length; k++) {
      ents[k] = { term: this.term, index: first + k, type: EntryType.Normal, data: datas[k]! }
    }
    this.#appendEntries(ents)
    return ok({ firstIndex: first, lastIndex: first + datas.length - 1, term: this.term })
  }

  /** Proposes a single-server membership change (config.ts states when it is allowed). */
  proposeConfChange(cc: ConfChange): Result<Proposed, ProposeError> {
    const refused = this.#canPropose()
    if (refused) return fail(refused, refused === 'NOT_LEADER' ? `not the leader (leader hint ${this.lead})` : 'leadership transfer in progress')
    if (this.#lastConfIndex() > this.log.committed && this.#unsafe.confChangeWhilePending !== true) {
      return fail('CONF_CHANGE_PENDING', `configuration change at ${this.#lastConfIndex()} is not committed yet`)
    }
    if (this.log.term(this.log.committed) !== this.term) {
      return fail('CONF_CHANGE_PENDING', 'the leader has not committed an entry of its term yet')
    }
    const why = checkConfChange(this.conf(), cc)
    if (why) return fail('CONF_CHANGE_INVALID', why)
    const index = this.log.lastIndex() + 1
    const data = encodeConfChange(cc, applyConfChange(this.conf(), cc))
    this.#appendEntries([{ term: this.term, index, type: EntryType.ConfChange, data }])
    return ok({ firstIndex: index, lastIndex: index, term: this.term })
  }

  /** §3.10: hands leadership to `target` once its log is complete. */
  transferLeader(target: NodeId): Result<null, 'NOT_LEADER' | 'NOT_A_VOTER'> {
    if (this.role !== Role.Leader) return fail('NOT_LEADER', `not the leader (leader hint ${this.lead})`)
    if (!this.conf().voters.includes(target)) return fail('NOT_A_VOTER', `node ${target} is not a voter`)
    if (target === this.id || target === this.leadTransferee) return ok(null)
    this.abortLeaderTransfer()
    this.wake()
    this.leadTransferee = target
    this.#electionElapsed = 0 // the transfer must finish within one election timeout
    const pr = this.prs.get(target)!
    if (pr.match === this.log.lastIndex()) this.#send(this.#message(MessageType.TimeoutNow, target, this.term))
    else this.#maybeSendAppend(target, true)
    return ok(null)
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE
  }

  /** The host could not reach `to`: stop streaming to it and probe instead. */
  reportUnreachable(to: NodeId): void {
    const pr = this.role === Role.Leader ? this.prs.get(to) : undefined
    if (pr && pr.state === ProgressState.Replicate) pr.becomeProbe()
  }

  /** The host tells how sending a snapshot to `to` went. */
  reportSnapshot(to: NodeId, succeeded: boolean): void {
    const pr = this.role === Role.Leader ? this.prs.get(to) : undefined
    if (!pr || pr.state !== ProgressState.Snapshot) return
    if (!succeeded) pr.pendingSnapshot = 0
    pr.becomeProbe()
    pr.probeSent = true // wait for a heartbeat answer before trying again
  }

  /** Called when committed entries are handed to the host: they no longer count against the uncommitted limit. */
  releaseUncommitted(ents: readonly Entry[]): void {
    if (this.role !== Role.Leader || this.#uncommittedBytes === 0) return
    let bytes = 0
    for (let k = 0; k < ents.length; k++) if (ents[k]!.term === this.term) bytes += entryBytes(ents[k]!)
    this.#uncommittedBytes = Math.max(0, this.#uncommittedBytes - bytes)
  }

  // ---- state for the host -----------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed }
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role }
  }
}
