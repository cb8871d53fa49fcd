/**
 * The deterministic cluster simulator. One seed decides everything: the options (see
 * options.ts), every message delay, loss and duplicate, partitions, crashes, restarts,
 * clock rates, snapshots, membership changes, leadership transfers and client
 * proposals. The real RaftNode runs under a simulated host that follows the Ready
 * contract with a simulated disk latency.
 *
 * The crash model: a crash loses whatever a node had not yet made durable: the write
 * in flight, and every commit-only hard state written since the last sync (a Ready
 * with `mustSync` false is written at once but not synced; the next sync covers it, as
 * in a WAL). The host's applied state is its own store, not synced with the log: with
 * the seed's `appliedSurvival` chance it survives the crash whole, so the node restarts
 * with an applied index (and perhaps a snapshot taken from it) beyond its durable
 * commit index; otherwise the host restores its snapshot, and the log store synced the
 * commit index together with that snapshot when it was taken.
 *
 * A run has two phases: safety (faults on; the Checker is consulted after every step)
 * and liveness (faults healed; a leader must appear and fresh proposals must commit on
 * every voter within a bound). The same seed replays the same history, so a failure is
 * reported with its seed and can be re-run with a readable trace.
 */
import { Prng } from '../../src/base/index.js'
import { ConfChangeOp, EntryType, MemoryStorage, MessageType, RaftNode, messageTypeName } from '../../src/raft/index.js'
import type { Entry, Message, NodeId, Ready, UnsafeRules } from '../../src/raft/index.js'
import { Checker, Violation } from './checker.js'
import { SimNetwork } from './network.js'
import { drawOptions } from './options.js'
import type { FaultProfile, SimOptions } from './options.js'
import { SimStateMachine, encodeId, entryKey } from './state-machine.js'

export interface SimConfig {
  readonly seed: number
  readonly nodes: 3 | 5
  /** Keep a readable event trace (slower; used to replay a failing seed). */
  readonly trace?: boolean
  /** Deliberately wrong rules in the core, to prove the checker catches them. */
  readonly unsafe?: UnsafeRules
  /** The fault profile the options are drawn from (default mixed). */
  readonly profile?: FaultProfile
}

export interface SimStats {
  time: number
  leaders: number
  maxTerm: number
  proposed: number
  acked: number
  committedIndex: number
  crashes: number
  partitions: number
  snapshotsTaken: number
  snapshotsInstalled: number
  /** Restarts with the host's applied index beyond the durable commit index. */
  restartsAppliedAhead: number
  /** Restarts with a snapshot beyond the durable commit index and above the log's first index - 1. */
  restartsSnapshotAhead: number
  confChanges: number
  transfers: number
  messages: number
}

export interface SimResult {
  readonly seed: number
  readonly options: SimOptions
  readonly ok: boolean
  readonly violation: { readonly kind: string; readonly message: string; readonly time: number } | null
  readonly stats: SimStats
  /** The event trace, when asked for. */
  readonly trace: readonly string[]
}

/** Ticks the healed cluster gets to elect a leader, and then to commit fresh proposals everywhere. */
const LIVENESS_ELECTION_TICKS = 50
const LIVENESS_COMMIT_TICKS = 50
const LIVENESS_PROPOSALS = 5
const LOG_CHECK_EVERY = 50

class SimNode {
  readonly id: NodeId
  storage: MemoryStorage
  raft: RaftNode | null = null
  sm = new SimStateMachine()
  tickPeriod: number
  nextTick = 0
  /** A crash the nemesis has scheduled (-1: none). */
  crashAt = -1
  /** The Ready being made durable, and when the write completes. */
  pending: { ready: Ready; doneAt: number } | null = null
  /** The commit index of the last synced hard state (later commit-only writes are unsynced). */
  syncedCommit = 0
  /** The last crash kept the applied state (`sm`), so the restart resumes from it. */
  appliedSurvived = false
  /** After a restart that raised the commit index: the commit its first Ready must write (0: none). */
  commitToWrite = 0

  constructor(id: NodeId, voters: readonly NodeId[], tickPeriod: number) {
    this.id = id
    this.storage = new MemoryStorage(voters)
    this.tickPeriod = tickPeriod
  }
}

export class Simulation {
  readonly opts: SimOptions
  readonly #cfg: SimConfig
  readonly #prng: Prng
  readonly #net: SimNetwork
  readonly #checker = new Checker()
  readonly #nodes = new Map<NodeId, SimNode>()
  readonly #trace: string[] = []
  #now = 0
  /** Faults are on (the safety phase). */
  #faulty = true
  #nextProposalId = 1
  /** Proposal id -> the node whose host accepted it. */
  readonly #inFlight = new Map<number, NodeId>()
  readonly #acked = new Set<number>()
  readonly stats: SimStats = {
    time: 0,
    leaders: 0,
    maxTerm: 0,
    proposed: 0,
    acked: 0,
    committedIndex: 0,
    crashes: 0,
    partitions: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    restartsAppliedAhead: 0,
    restartsSnapshotAhead: 0,
    confChanges: 0,
    transfers: 0,
    messages: 0,
  }

  constructor(cfg: SimConfig) {
    this.#cfg = cfg
    this.opts = drawOptions(cfg.seed, cfg.nodes, cfg.profile)
    // the options consumed their own generator; the run gets an independent one
    this.#prng = new Prng(cfg.seed ^ 0x5bd1e995)
    this.#net = new SimNetwork(this.#prng.fork(), {
      lossRate: this.opts.lossRate,
      duplicateRate: this.opts.duplicateRate,
      delayMax: this.opts.delayMax,
    })
    const voters: NodeId[] = []
    for (let id = 1; id <= cfg.nodes; id++) voters.push(id)
    for (let id = 1; id <= cfg.nodes + 1; id++) {
      // the spare node starts with no configuration: it only learns one from the log once added
      const n = new SimNode(id, id <= cfg.nodes ? voters : [], this.opts.tickPeriods[id - 1]!)
      n.nextTick = this.#prng.range(0, n.tickPeriod)
      this.#nodes.set(id, n)
      this.#startNode(n)
    }
  }

  #log(line: () => string): void {
    if (this.#cfg.trace) this.#trace.push(`t=${this.#now} ${line()}`)
  }

  #startNode(n: SimNode): void {
    const st = n.storage
    const snap = st.snapshot()
    // the applied state that survived, else the snapshot's (a snapshot is never newer than the applied state it was taken from)
    if (!n.appliedSurvived || n.sm.index < snap.metadata.index) n.sm = SimStateMachine.decode(snap.metadata.index, snap.data)
    n.appliedSurvived = false
    const applied = n.sm.index
    const durableCommit = st.hardState().commit
    n.syncedCommit = durableCommit
    if (applied > durableCommit) this.stats.restartsAppliedAhead++
    if (snap.metadata.index > durableCommit && snap.metadata.index > st.firstIndex() - 1) this.stats.restartsSnapshotAhead++
    this.#checker.resumed(n.id, applied, n.sm.hash)
    n.raft = new RaftNode({
      id: n.id,
      storage: st,
      prng: this.#prng.fork(),
      applied,
      unsafe: this.#cfg.unsafe,
      ...this.opts.raft,
    })
    // what the node now holds committed must be the committed history (it is raised past the durable commit index)
    this.#checker.committedDurable(n.id, st, n.raft.commit)
    n.commitToWrite = n.raft.commit > durableCommit ? n.raft.commit : 0
    n.pending = null
  }

  run(): SimResult {
    let violation: SimResult['violation'] = null
    try {
      this.#safetyPhase()
      this.#livenessPhase()
      this.#finalCheck()
    } catch (err) {
      const kind = err instanceof Violation ? err.kind : err instanceof Error ? err.name : 'error'
      const message = err instanceof Error ? err.message : String(err)
      violation = { kind, message, time: this.#now }
      this.#log(() => `VIOLATION ${kind}: ${message}`)
      if (!(err instanceof Violation) && err instanceof Error && err.stack) this.#log(() => err.stack!)
    }
    this.stats.time = this.#now
    this.stats.acked = this.#acked.size
    this.stats.committedIndex = this.#checker.maxCommitted
    this.stats.leaders = this.#checker.leadersSeen
    return { seed: this.#cfg.seed, options: this.opts, ok: violation === null, violation, stats: this.stats, trace: this.#trace }
  }

  // ---- phases -------------------------------------------------------------------

  #safetyPhase(): void {
    const end = this.opts.safetyTime
    while (this.#now < end) {
      this.#faults()
      this.#load()
      this.#step()
      if (this.#now % LOG_CHECK_EVERY === 0) this.#checkLogs()
    }
  }

  #livenessPhase(): void {
    this.#log(() => 'HEAL: restart all, network healed, clocks even')
    this.#faulty = false
    this.#net.heal()
    this.#net.faults = { lossRate: 0, duplicateRate: 0, delayMax: Math.min(this.opts.delayMax, 5) }
    const period = Math.max(...this.opts.tickPeriods)
    for (const n of this.#nodes.values()) {
      n.tickPeriod = period
      if (!n.raft) this.#restart(n)
    }
    const electionUnits = LIVENESS_ELECTION_TICKS * this.opts.raft.electionTicks * period
    const deadline = this.#now + electionUnits
    while (!this.#leader()) {
      if (this.#now >= deadline) {
        throw new Violation('liveness', `no leader within ${LIVENESS_ELECTION_TICKS} election timeouts after healing`)
      }
      this.#step()
    }
    // fresh proposals must commit on every voter; if the leader that took them loses
    // office first they may be lost (never acknowledged), so the next leader gets new ones
    let batch: { ids: number[]; leader: NodeId; term: number } | null = null
    const commitDeadline = this.#now + LIVENESS_COMMIT_TICKS * this.opts.raft.electionTicks * period + this.#catchUpTime()
    while (!batch || !this.#allApplied(batch.ids)) {
      if (this.#now >= commitDeadline) {
        const leader = this.#leader()
        throw new Violation(
          'liveness',
          `proposals ${batch?.ids.join(',') ?? '(none accepted)'} not applied on every voter within ${LIVENESS_COMMIT_TICKS} election timeouts after healing (leader ${leader?.id ?? 'none'}, voters ${leader?.raft?.voters().join(',') ?? '?'})`,
        )
      }
      const leader = this.#leader()
      if (leader?.raft && (!batch || batch.leader !== leader.id || batch.term !== leader.raft.term)) {
        const ids: number[] = []
        for (let i = 0; i < LIVENESS_PROPOSALS; i++) ids.push(this.#nextProposalId++)
        if (this.#propose(leader, ids)) batch = { ids, leader: leader.id, term: leader.raft.term }
      }
      this.#step()
    }
    this.#checkLogs()
  }

  #finalCheck(): void {
    const leader = this.#leader()
    if (!leader?.raft) throw new Violation('liveness', 'no leader at the end of the liveness phase')
    for (const id of leader.raft.voters()) {
      const n = this.#nodes.get(id)!
      for (const p of this.#acked) {
        if (!n.sm.seen.has(p)) throw new Violation('durability', `acknowledged proposal ${p} is missing on voter ${id}`)
      }
    }
  }

  /**
   * How long replicating the current backlog may take with the configured pipeline: a
   * slow follower with a small append size and window needs one round trip per window.
   */
  #catchUpTime(): number {
    const leader = this.#leader()
    if (!leader?.raft) return 0
    let behind = 0
    for (const n of this.#nodes.values()) behind = Math.max(behind, leader.raft.lastIndex - n.storage.lastIndex())
    const perMessage = Math.max(1, Math.floor(this.opts.raft.appendBytesMax / 28))
    const roundTrips = Math.ceil(behind / perMessage / this.opts.raft.inflightMsgsMax)
    // a follower's write, and (unless the host sends eagerly) the leader's own
    const roundTrip = 2 * Math.min(this.opts.delayMax, 5) + this.opts.diskLatencyMax * (this.opts.eagerSend ? 1 : 2) + 2
    return roundTrips * roundTrip
  }

  #allApplied(ids: readonly number[]): boolean {
    const leader = this.#leader()
    if (!leader?.raft) return false
    for (const v of leader.raft.voters()) {
      const n = this.#nodes.get(v)!
      if (!n.raft) return false
      for (const id of ids) if (!n.sm.seen.has(id)) return false
    }
    return true
  }

  #leader(): SimNode | undefined {
    let best: SimNode | undefined
    for (const n of this.#nodes.values()) {
      if (n.raft?.isLeader() && (!best || n.raft.term > best.raft!.term)) best = n
    }
    return best
  }

  // ---- one time unit -------------------------------------------------------------

  #step(): void {
    this.#now++
    for (const m of this.#net.take(this.#now)) this.#deliver(m)
    for (const n of this.#nodes.values()) {
      if (!n.raft) continue
      if (this.#now >= n.nextTick) {
        n.nextTick = this.#now + n.tickPeriod
        n.raft.tick()
      }
      this.#drive(n)
    }
    for (const n of this.#nodes.values()) {
      if (n.raft?.isLeader()) {
        if (this.#checker.leader(n.raft) && this.#faulty && this.#prng.chance(this.opts.newLeaderCrashChance)) {
          // schedule a crash before the new leader's first entries can have spread far
          n.crashAt = this.#now + this.#prng.range(0, 2 * this.opts.delayMax + this.opts.diskLatencyMax)
        }
      }
      if (n.raft && n.raft.term > this.stats.maxTerm) this.stats.maxTerm = n.raft.term
    }
  }

  #deliver(m: Message): void {
    const n = this.#nodes.get(m.to)
    if (!n?.raft) return
    this.#log(() => `deliver ${formatMessage(m)}`)
    n.raft.step(m)
  }

  #send(m: Message): void {
    this.stats.messages++
    this.#net.send(this.#now, m)
  }

  /** The host loop of one node: finish a durable write that is due, then take the next Ready. */
  #drive(n: SimNode): void {
    const raft = n.raft!
    if (n.pending && n.pending.doneAt <= this.#now) {
      const rd = n.pending.ready
      n.pending = null
      this.#finishReady(n, rd)
    }
    if (n.pending) {
      if (this.opts.eagerSend) for (const m of raft.takeMessages()) this.#send(m)
      return
    }
    if (!raft.hasReady()) return
    const rd = raft.ready()
    if (n.commitToWrite > 0) {
      // the commit index raised on restart must become the durable one again
      if ((rd.hardState?.commit ?? 0) < n.commitToWrite) {
        throw new Violation('durability', `n${n.id}'s first Ready after a restart at commit ${n.commitToWrite} does not write it (hard state ${JSON.stringify(rd.hardState)})`)
      }
      n.commitToWrite = 0
    }
    if (rd.softState) this.#log(() => `n${n.id} ${rd.softState!.role} term ${raft.term} leader ${rd.softState!.leader}`)
    for (const m of rd.messages) this.#send(m)
    if (rd.mustSync) {
      n.pending = { ready: rd, doneAt: this.#now + this.#prng.range(1, this.opts.diskLatencyMax) }
    } else {
      this.#finishReady(n, rd)
    }
  }

  #finishReady(n: SimNode, rd: Ready): void {
    const raft = n.raft!
    const st = n.storage
    for (const e of rd.entries) this.#checker.persisted(n.id, e)
    st.persist(rd)
    // a sync makes every earlier write durable too (a WAL): the commit index included
    if (rd.mustSync) n.syncedCommit = st.hardState().commit
    if (rd.snapshot) this.#log(() => `n${n.id} persist snapshot @${rd.snapshot!.metadata.index}`)
    if (rd.entries.length > 0) this.#log(() => `n${n.id} persist ${formatEntries(rd.entries)}`)
    for (const m of rd.messagesAfterPersist) this.#send(m)
    if (rd.snapshot) {
      const { index, conf } = rd.snapshot.metadata
      n.sm = SimStateMachine.decode(index, rd.snapshot.data)
      this.#checker.installedSnapshot(n.id, index, n.sm.hash)
      this.stats.snapshotsInstalled++
      this.#log(() => `n${n.id} install snapshot @${index} voters [${conf.voters.join(',')}]`)
    }
    for (const e of rd.committedEntries) this.#apply(n, e)
    raft.advance()
  }

  #apply(n: SimNode, e: Entry): void {
    const twice = n.sm.apply(e)
    if (twice !== null) this.#checker.appliedTwice(n.id, twice)
    this.#checker.applied(n.id, e, n.sm.hash)
    if (e.type === EntryType.ConfChange) this.stats.confChanges++
    // the host that accepted a proposal acknowledges it when it applies it
    const id = entryKey(e)
    if (id > 0 && this.#inFlight.get(id) === n.id) {
      this.#inFlight.delete(id)
      this.#acked.add(id)
    }
  }

  // ---- faults and load ------------------------------------------------------------

  #faults(): void {
    const o = this.opts
    const r = this.#prng
    for (const n of this.#nodes.values()) {
      if (n.raft && (r.chance(o.crashRate) || n.crashAt === this.#now)) this.#crash(n)
      else if (!n.raft && r.chance(o.restartRate)) this.#restart(n)
    }
    if (r.chance(o.leaderCrashRate)) {
      const leader = this.#leader()
      if (leader) this.#crash(leader)
    }
    if (!this.#net.isPartitioned() && r.chance(o.partitionRate)) this.#partition()
    else if (this.#net.isPartitioned() && r.chance(o.healRate)) {
      this.#net.heal()
      this.#log(() => 'partition healed')
    }
    if (r.chance(o.snapshotRate)) this.#snapshot(r.pick([...this.#nodes.values()]))
    if (r.chance(o.confChangeRate)) this.#confChange()
    if (r.chance(o.transferRate)) this.#transfer()
  }

  #crash(n: SimNode): void {
    // everything not yet durable (the pending write, the in-memory log, commit-only hard
    // states written since the last sync) is lost
    const st = n.storage
    const hs = st.hardState()
    const survived = this.#prng.chance(this.opts.appliedSurvival)
    let commit = n.syncedCommit
    // a host whose applied state does not survive restores its snapshot; its log store
    // synced the commit index together with that snapshot
    if (!survived) commit = Math.max(commit, Math.min(hs.commit, st.snapshot().metadata.index))
    if (commit !== hs.commit) st.setHardState({ ...hs, commit })
    n.appliedSurvived = survived
    n.raft = null
    n.pending = null
    n.crashAt = -1
    this.stats.crashes++
    this.#log(() => `n${n.id} CRASH durable commit ${commit} (written ${hs.commit}), applied ${survived ? `${n.sm.index} survives` : 'lost'}`)
  }

  #restart(n: SimNode): void {
    this.#startNode(n)
    n.nextTick = this.#now + this.#prng.range(1, n.tickPeriod)
    this.#log(() => `n${n.id} RESTART term ${n.raft!.term} commit ${n.raft!.commit} applied ${n.sm.index} last ${n.raft!.lastIndex} snapshot @${n.storage.snapshot().metadata.index}`)
  }

  #partition(): void {
    const ids = [...this.#nodes.keys()]
    const a: NodeId[] = []
    const b: NodeId[] = []
    const leader = this.#leader()
    if (leader && this.#prng.chance(this.opts.isolateLeaderShare)) {
      for (const id of ids) (id === leader.id ? a : b).push(id)
    } else {
      for (const id of ids) (this.#prng.chance(0.5) ? a : b).push(id)
    }
    if (a.length === 0 || b.length === 0) return
    const oneWay = this.#prng.chance(this.opts.oneWayShare)
    this.#net.partition(a, b, oneWay)
    this.stats.partitions++
    this.#log(() => `PARTITION {${a.join(',')}} ${oneWay ? '->x' : 'x'} {${b.join(',')}}`)
  }

  #snapshot(n: SimNode): void {
    if (!n.raft) return
    const applied = n.sm.index
    const st = n.storage
    if (applied <= st.snapshot().metadata.index || applied > st.lastIndex()) return
    st.createSnapshot(applied, n.raft.confAt(applied), n.sm.encode())
    // keep a random tail of entries so lagging followers are sometimes served from the log
    const keep = this.#prng.pick([0, 0, 5, 50])
    if (applied - keep > st.firstIndex()) st.compact(applied - keep)
    this.stats.snapshotsTaken++
    this.#log(() => `n${n.id} snapshot @${applied}, log now ${st.firstIndex()}..${st.lastIndex()}`)
  }

  #confChange(): void {
    const leader = this.#leader()
    if (!leader?.raft) return
    const voters = leader.raft.voters()
    const spare = [...this.#nodes.keys()].filter((id) => !voters.includes(id))
    const nodes = this.#cfg.nodes
    const add = spare.length > 0 && (voters.length <= nodes - 1 || (voters.length < nodes + 1 && this.#prng.chance(0.5)))
    const cc = add
      ? { op: ConfChangeOp.AddVoter, nodeId: this.#prng.pick(spare) }
      : { op: ConfChangeOp.RemoveVoter, nodeId: this.#prng.pick(voters) }
    const r = leader.raft.proposeConfChange(cc)
    this.#log(() => `n${leader.id} propose ${add ? 'add' : 'remove'} ${cc.nodeId}: ${r.ok ? `at ${r.value.firstIndex}` : r.error.code}`)
  }

  #transfer(): void {
    const leader = this.#leader()
    if (!leader?.raft) return
    const target = this.#prng.pick(leader.raft.voters())
    const r = leader.raft.transferLeader(target)
    if (r.ok) this.stats.transfers++
    this.#log(() => `n${leader.id} transfer leadership to ${target}: ${r.ok ? 'started' : r.error.code}`)
  }

  #load(): void {
    if (!this.#prng.chance(this.opts.proposeRate)) return
    // clients mostly find the leader, sometimes ask a stale one
    const live = [...this.#nodes.values()].filter((n) => n.raft)
    if (live.length === 0) return
    const target = this.#prng.chance(0.8) ? (this.#leader() ?? this.#prng.pick(live)) : this.#prng.pick(live)
    const count = this.#prng.pick([1, 1, 1, 3, 8])
    const ids: number[] = []
    for (let i = 0; i < count; i++) ids.push(this.#nextProposalId++)
    this.#propose(target, ids)
  }

  #propose(n: SimNode, ids: readonly number[]): boolean {
    if (!n.raft) return false
    const r = n.raft.propose(ids.map(encodeId))
    this.#log(() => `n${n.id} propose [${ids.join(',')}]: ${r.ok ? `at ${r.value.firstIndex}..${r.value.lastIndex} t${r.value.term}` : r.error.code}`)
    if (!r.ok) return false
    this.stats.proposed += ids.length
    for (const id of ids) this.#inFlight.set(id, n.id)
    return true
  }

  #checkLogs(): void {
    const live = [...this.#nodes.values()]
    for (let i = 0; i < live.length; i++) {
      this.#checker.committedDurable(live[i]!.id, live[i]!.storage)
      for (let j = i + 1; j < live.length; j++) {
        this.#checker.logsMatch(live[i]!.id, live[i]!.storage, live[j]!.id, live[j]!.storage)
      }
    }
  }
}

export function runSimulation(cfg: SimConfig): SimResult {
  return new Simulation(cfg).run()
}

function formatEntries(ents: readonly Entry[]): string {
  const first = ents[0]!
  const last = ents[ents.length - 1]!
  return ents.length === 1 ? `${first.index}@t${first.term}` : `${first.index}..${last.index}@t${first.term}..t${last.term}`
}

export function formatMessage(m: Message): string {
  const head = `${messageTypeName[m.type]} ${m.from}->${m.to} t${m.term}`
  switch (m.type) {
    case MessageType.App:
      return `${head} prev ${m.index}@t${m.logTerm} ${m.entries.length > 0 ? formatEntries(m.entries) : 'empty'} commit ${m.commit}`
    case MessageType.AppResp:
      return m.reject ? `${head} REJECT ${m.index} hint ${m.rejectHint}@t${m.logTerm}` : `${head} ok ${m.index}`
    case MessageType.Vote:
    case MessageType.PreVote:
      return `${head} last ${m.index}@t${m.logTerm}${m.transfer ? ' transfer' : ''}`
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      return `${head} ${m.reject ? 'REJECT' : 'grant'}`
    case MessageType.Heartbeat:
      return `${head} commit ${m.commit}`
    case MessageType.Snap:
      return `${head} snapshot @${m.snapshot!.metadata.index}`
    default:
      return head
  }
}
