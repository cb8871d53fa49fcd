/**
 * The deterministic cluster simulator. One seed decides everything: the options (see
 * options.ts), every message delay, loss and duplicate, partitions, crashes, restarts,
 * clock rates, snapshots, membership changes, leadership transfers, client proposals
 * and storage faults. The real RaftNode runs under a simulated host that follows the
 * Ready contract with a simulated disk latency.
 *
 * Two storage hosts, drawn per seed (options.ts `storage`; `--storage` forces one):
 *
 * `memory`, the original: a Ready is persisted into a MemoryStorage when its simulated
 * write completes. A crash loses whatever a node had not yet made durable: the write in
 * flight, and every commit-only hard state written since the last sync (a Ready with
 * `mustSync` false is written at once but not synced; the next sync covers it, as in a
 * WAL). The host's applied state is its own store, not synced with the log: with the
 * seed's `appliedSurvival` chance it survives the crash whole, so the node restarts with
 * an applied index (and perhaps a snapshot taken from it) beyond its durable commit
 * index; otherwise the host restores its snapshot, and the log store synced the commit
 * index together with that snapshot when it was taken.
 *
 * `wal`: the node's log is the real per-worker WAL through the real LogEngine
 * (wal-disk.ts). A Ready is staged and the engine committed (one write, one fdatasync)
 * when its simulated write completes, as WorkerLoop does in a turn; a crash is
 * MemoryWalFs.crash() and a restart a real recovery (Wal.open + replayRecord), checked
 * against what the node had made durable: nothing synced may be lost or changed. The
 * storage faults: crashes that drop, tear, keep (or keep sector by sector) the write an
 * fdatasync was making durable; bit flips before a restart (in an acknowledged record:
 * the node must refuse to start, WAL_CORRUPT, and is then lost for good, like a disk an
 * operator replaces, at most one node per run and only where the rest can still elect a
 * leader; in the interrupted write or past the data: it must recover without them);
 * ENOSPC on a write or a segment creation and disk-full windows (WAL_FULL: the Ready
 * stays staged and the commit is retried, as WorkerLoop retries a stalled turn); EIO on
 * a write or fdatasync (WAL_IO: the node fail-stops without acknowledging the write; the
 * machine reboots, which drops the page cache fsyncgate poisoned, and the node restarts
 * from what is durable). The applied state keeps the `appliedSurvival` model.
 *
 * `worker`: the node is hosted the production way (worker-host.ts): its group is a
 * GroupActor inside a WorkerLoop, whose LoopEngine is that same WAL and LogEngine, with
 * the simulator's scheduler and timers injected. The loop takes the Ready, stages it,
 * commits (one write, one fdatasync) and acknowledges, applies and advances in one turn,
 * and peer messages leave through the actor's sendToPeers: the Ready loop is the
 * worker's, not the simulator's. The sync blocks the simulated thread for a disk latency
 * (what the turn sends after it leaves when it returns); a crash while it is blocked
 * strikes inside that fdatasync (the write held back unsynced in the SimWalFs, dropped,
 * torn or kept) or just after it, and the storage faults, recovery and checks are the
 * `wal` host's. A full disk stalls the loop's turn, which it retries on its own timer;
 * an EIO fail-stops the loop, and the simulator reboots the node.
 *
 * Why half the seeds, and not a profile: the storage faults compose with every network
 * and node fault (and with `churn`), and a seed's storage mode is drawn after all its
 * other knobs, with its own generator for the disk, so each memory seed still replays
 * exactly the history it had before the WAL host existed, and the default slice and
 * sweeps keep their coverage of the original host while exercising the WAL on the rest
 * (half of those through the worker loop: that draw comes last of all).
 *
 * The harsher world (issue 12, options.ts HarshOptions), for half the mixed seeds and
 * every churn seed: the faults that three wrong rules in the core need before they show,
 * which the rest of the mix made too rare (500 seeds of every profile passed with each
 * switched in). A deposed leader's appends arrive terms later (a long delay tail; a
 * partition that holds messages, as TCP does, and delivers them after the heal). A write
 * completes after its entries were replaced (a leader's write stalls for several election
 * timeouts while its network drops out and comes back first; slow disks; paused
 * processes, which on resume take what arrived before they see their write done). A
 * second membership change before the first committed (changes and transfers back to
 * back, and a split at once, the leader with the fewest voters that make a majority of
 * its newest configuration on one side). And crashes right after a durable write, before
 * anything of it is acknowledged. Each is drawn from the seed, printed with the options
 * and applied from a generator of its own that is consulted only where it is on.
 *
 * A run has two phases: safety (faults on; the Checker is consulted after every step)
 * and liveness (faults healed; a leader must appear and fresh proposals must commit on
 * every voter within a bound). The same seed replays the same history, so a failure is
 * reported with its seed and can be re-run with a readable trace. Runs are async only
 * because background segment preparation (promises) runs between steps in WAL mode, and
 * a worker host's proposals are answered by promises; nothing else ever waits.
 */
import { Prng } from '../../src/base/index.js'
import { ConfChangeOp, EntryType, MemoryStorage, MessageType, RaftNode, messageTypeName } from '../../src/raft/index.js'
import type { Entry, HardState, Message, NodeId, Ready, Snapshot, UnsafeRules } from '../../src/raft/index.js'
import type { ActorLogger, LoopEngine } from '../../src/group/index.js'
import { Checker, Violation, violationOf } from './checker.js'
import { SimNetwork, healedFaults, networkFaults } from './network.js'
import { drawOptions, harshGenerator } from './options.js'
import type { FaultProfile, SimOptions } from './options.js'
import type { StorageMode } from './options.js'
import { SimStateMachine, encodeId, entryKey } from './state-machine.js'
import type { StateMark } from './state-machine.js'
import { SIM_GROUP, WalDisk, compareImage, flip, imageAfter, imageOf } from './wal-disk.js'
import type { Flip, FlipKind, LogImage, StoreState, WriteSpan } from './wal-disk.js'
import { WorkerHost } from './worker-host.js'
import { runPartitionSimulation } from './partition-sim.js'
import { SimFailureDetector } from './failure-detector.js'

export interface SimConfig {
  readonly seed: number
  readonly nodes: 3 | 5
  /** Keep a readable event trace (slower; used to replay a failing seed). */
  readonly trace?: boolean
  /** Deliberately wrong rules in the core, to prove the checker catches them. */
  readonly unsafe?: UnsafeRules
  /** The fault profile the options are drawn from (default mixed). */
  readonly profile?: FaultProfile
  /** Forces the storage host (default: drawn from the seed). */
  readonly storage?: StorageMode
  /** Forces quiescence on or off (default: drawn from the seed). */
  readonly quiesce?: boolean
  /** Test-only WAL damage the simulator does not draw by itself (wal-disk.ts, flips). */
  readonly walFaults?: {
    /** Flips hit the newest acknowledged commit three times as often (they are drawn anyway). */
    readonly flipNewestCommit?: boolean
    /** Every restart in the safety phase changes an entry's payload and fixes its checksum. */
    readonly forgeEntries?: boolean
  }
  /** Partition mode: deliberately wrong rules in the hosted group (HostOptions.unsafe), to prove the partition checker catches them. */
  readonly partitionUnsafe?: { readonly unsyncedCheckpoint?: boolean; readonly unsyncedSnapshot?: boolean }
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
  /** The harsher world (HarshOptions): messages held back to the long tail, slow writes, back-to-back changes, crashes right after a durable write. */
  messagesHeld: number
  slowWrites: number
  /** Durable writes whose last entry was replaced while the write was in flight (the stable-by-term rule's ground). */
  replacedInFlight: number
  bursts: number
  crashesAfterPersist: number
  pauses: number
  /** Leaders' writes that hung while their network dropped out (HarshOptions.stallLeader). */
  stalls: number
  /** Partitions at a membership change (HarshOptions.splitAfterChange). */
  splitsAfterChange: number
  /** WAL storage mode: runs, synced commits, segment rolls, retirements and reuses. */
  walRuns: number
  walSyncs: number
  walRolls: number
  walCheckpoints: number
  walRetired: number
  walRecycled: number
  walPreparedInBackground: number
  /** ENOSPC injected on a segment creation (the roll's commit refused with WAL_FULL). */
  walNoSpaceOnCreate: number
  /** Crashes inside the fdatasync of a write in flight: all, torn (tear or sectors), kept by the OS. */
  walCrashesMidCommit: number
  walCrashesTorn: number
  walCrashesKept: number
  walTornBytesDropped: number
  /** Flips in acknowledged records (the node refused to start: lost for good) and elsewhere (recovered). */
  walFlipsRefused: number
  walFlipsRecovered: number
  /** Commits refused with WAL_FULL (then retried), and disk-full windows. */
  walFullRefusals: number
  walFullWindows: number
  /** Nodes that fail-stopped on WAL_IO (an EIO). */
  walFailStops: number
  /** Worker storage mode: runs, and peer messages or client requests that waited for a thread blocked in a sync. */
  workerRuns: number
  workerArrivalsWhileBlocked: number
  /** Partition mode (partition-sim.ts): runs, acknowledged batches, fetch checks, leaders' snapshots installed. */
  partitionRuns: number
  partitionAcked: number
  partitionFetchChecks: number
  partitionSnapshotsInstalled: number
  /** Snapshot transfers started and aborted; received snapshots a crash kept from installing (dropped at the restart), and installed ones a crash kept from the store (recovery took them in). */
  partitionTransfersStarted: number
  partitionTransfersAborted: number
  partitionPendingSnapshotsDropped: number
  partitionSnapshotsRecovered: number
  /** Quiescence (SimOptions.quiesce): runs with it on, node-units spent quiet, and peers the failure detector reported down. */
  quiesceRuns: number
  quietUnits: number
  peerDownReports: number
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
  /** WAL mode: the node's disk (its WAL, log engine and store); null in memory mode. */
  disk: WalDisk | null = null
  /** WAL mode: the node refused to start (a damaged WAL) and is gone for good. */
  lost = false
  /** WAL mode, after a crash: what recovery must give back, and the write the crash interrupted. */
  crashed: { readonly pre: LogImage; readonly post: LogImage | null; readonly inflight: WriteSpan | null } | null = null
  /** WAL mode: a disk-full window ends at this time (-1: none). */
  fullUntil = -1
  /** WAL mode: a checkpoint whose store write completes at `doneAt`. */
  checkpointing: { readonly state: StoreState; readonly doneAt: number; readonly retireThrough: number } | null = null
  raft: RaftNode | null = null
  sm = new SimStateMachine()
  tickPeriod: number
  nextTick = 0
  /** A crash the nemesis has scheduled (-1: none). */
  crashAt = -1
  /** A paused process (harsh seeds): until then it neither ticks nor completes writes, and what arrives waits in `paused`. */
  pausedUntil = -1
  paused: Message[] = []
  /** The Ready being made durable, and when the write completes (WAL mode: whether it is staged in the engine). */
  pending: { ready: Ready; doneAt: number; staged: boolean } | null = null
  /** The commit index of the last synced hard state (later commit-only writes are unsynced). */
  syncedCommit = 0
  /** The last crash kept the applied state (`sm`), so the restart resumes from it. */
  appliedSurvived = false
  /** After a restart that raised the commit index: the commit its first Ready must write (0: none). */
  commitToWrite = 0
  /** Worker mode: the simulated worker thread with the node's WorkerLoop and GroupActor. */
  host: WorkerHost | null = null
  /** Worker mode: Readys the loop staged since its last successful commit. */
  staged: Ready[] = []
  /** Worker mode: the synced commit whose fdatasync the thread is blocked in (held back in the SimWalFs). */
  inflight: { readonly undo: Undo; readonly write: WriteSpan | null } | null = null
  /** Worker mode: the loop's commit failed with WAL_IO; the node fail-stops once the turn is over. */
  failed: string | null = null

  constructor(id: NodeId, voters: readonly NodeId[], tickPeriod: number) {
    this.id = id
    this.storage = new MemoryStorage(voters)
    this.tickPeriod = tickPeriod
  }
}

/** The node's log and state as they were before a synced commit, so that a crash inside its fdatasync can say what was durable. */
interface Undo {
  readonly first: number
  /** The first index the commit's entries replaced from, and what the log held from there. */
  readonly from: number
  readonly suffix: readonly Entry[]
  readonly hardState: HardState
  readonly syncedCommit: number
  readonly sm: StateMark
}

export class Simulation {
  readonly opts: SimOptions
  readonly #cfg: SimConfig
  readonly #prng: Prng
  /** WAL mode: the disk's own generator, so that the storage faults do not perturb the other draws. */
  readonly #disk: Prng
  /** Decides the harsher world's faults (HarshOptions), consulted only where one is on. */
  readonly #harsh: Prng
  readonly #wal: boolean
  /** Worker mode (a WAL host too): the nodes are GroupActors in WorkerLoops. */
  readonly #worker: boolean
  /** Nodes lost for good to a damaged WAL. */
  #lost = 0
  readonly #net: SimNetwork
  readonly #checker = new Checker()
  readonly #nodes = new Map<NodeId, SimNode>()
  readonly #trace: string[] = []
  #now = 0
  /** Faults are on (the safety phase). */
  #faulty = true
  /** A stalled leader's partition heals at this time (-1: none). */
  #healAt = -1
  #nextProposalId = 1
  /** Proposal id -> the node whose host accepted it. */
  readonly #inFlight = new Map<number, NodeId>()
  readonly #acked = new Set<number>()
  readonly stats: SimStats = emptyStats()
  /** Quiescence seeds: the peer transport's failure detector (null: quiescence off). */
  readonly #detector: SimFailureDetector | null

  constructor(cfg: SimConfig) {
    this.#cfg = cfg
    this.opts = drawOptions(cfg.seed, cfg.nodes, cfg.profile, cfg.storage, cfg.quiesce)
    // the options consumed their own generator; the run gets an independent one
    this.#prng = new Prng(cfg.seed ^ 0x5bd1e995)
    this.#disk = new Prng(cfg.seed ^ 0x2545f491)
    this.#harsh = harshGenerator(cfg.seed)
    this.#wal = this.opts.storage !== 'memory'
    this.#worker = this.opts.storage === 'worker'
    if (this.#wal) this.stats.walRuns = 1
    if (this.#worker) this.stats.workerRuns = 1
    this.#detector = SimFailureDetector.forOptions(this.opts)
    if (this.#detector) this.stats.quiesceRuns = 1
    this.#net = new SimNetwork(this.#prng.fork(), this.#harsh.fork(), networkFaults(this.opts))
    const voters: NodeId[] = []
    for (let id = 1; id <= cfg.nodes; id++) voters.push(id)
    for (let id = 1; id <= cfg.nodes + 1; id++) {
      // the spare node starts with no configuration: it only learns one from the log once added
      const n = new SimNode(id, id <= cfg.nodes ? voters : [], this.opts.tickPeriods[id - 1]!)
      if (this.#wal) n.disk = new WalDisk(id <= cfg.nodes ? voters : [], { segmentBytes: this.opts.wal.segmentBytes, recycle: this.opts.wal.recycle }, this.stats)
      n.nextTick = this.#prng.range(0, n.tickPeriod)
      this.#nodes.set(id, n)
      this.#startNode(n)
    }
  }

  #log(line: () => string): void {
    if (this.#cfg.trace) this.#trace.push(`t=${this.#now} ${line()}`)
  }

  #startNode(n: SimNode, flipped: Flip | null = null): void {
    if (n.disk && !this.#recover(n, flipped)) return
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
    if (this.#worker) {
      n.host = new WorkerHost({
        nodeId: n.id,
        groupId: SIM_GROUP,
        view: st,
        applied,
        prng: this.#prng.fork(),
        raft: { unsafe: this.#cfg.unsafe, ...this.opts.raft, quiesce: this.opts.quiesce.on },
        engine: this.#loopEngine(n),
        stateMachine: {
          apply: (e) => {
            this.#apply(n, e)
            return null
          },
          restore: (snap) => this.#installSnapshot(n, snap),
        },
        log: this.#actorLog(n),
        retryUnits: this.opts.wal.retryUnits,
        now: this.#now,
      })
      n.raft = n.host.actor.node
    } else {
      n.raft = new RaftNode({
        id: n.id,
        storage: st,
        prng: this.#prng.fork(),
        applied,
        unsafe: this.#cfg.unsafe,
        ...this.opts.raft,
        quiesce: this.opts.quiesce.on,
      })
    }
    // what the node now holds committed must be the committed history (it is raised past the durable commit index)
    this.#checker.committedDurable(n.id, st, n.raft.commit)
    n.commitToWrite = n.raft.commit > durableCommit ? n.raft.commit : 0
    n.pending = null
  }

  async run(): Promise<SimResult> {
    let violation: SimResult['violation'] = null
    try {
      await this.#safetyPhase()
      await this.#livenessPhase()
      this.#finalCheck()
    } catch (err) {
      violation = violationOf(err, this.#now, (line) => this.#log(line))
    }
    this.stats.time = this.#now
    this.stats.messagesHeld = this.#net.held
    this.stats.acked = this.#acked.size
    this.stats.committedIndex = this.#checker.maxCommitted
    this.stats.leaders = this.#checker.leadersSeen
    return { seed: this.#cfg.seed, options: this.opts, ok: violation === null, violation, stats: this.stats, trace: this.#trace }
  }

  // ---- phases -------------------------------------------------------------------

  async #safetyPhase(): Promise<void> {
    const end = this.opts.safetyTime
    while (this.#now < end) {
      this.#faults()
      this.#load()
      this.#step()
      if (this.#now % LOG_CHECK_EVERY === 0) this.#checkLogs()
      if (this.#wal && this.#background()) await settle()
      else if (this.#worker) await null // the answers to proposals
    }
  }

  async #livenessPhase(): Promise<void> {
    this.#log(() => `HEAL: restart all, network healed, clocks even${this.#wal ? ', disks free' : ''}`)
    this.#faulty = false
    this.#healAt = -1
    this.#net.heal(this.#now)
    this.#net.faults = healedFaults(this.opts)
    const period = Math.max(...this.opts.tickPeriods)
    for (const n of this.#nodes.values()) {
      n.tickPeriod = period
      if (n.disk) {
        n.disk.fs.setCapacity(Infinity)
        n.disk.proxy.disarm()
        n.fullUntil = -1
      }
      if (n.pausedUntil > this.#now) n.pausedUntil = this.#now
      if (!n.raft && !n.lost) this.#restart(n)
    }
    const electionUnits = LIVENESS_ELECTION_TICKS * this.opts.raft.electionTicks * period
    const deadline = this.#now + electionUnits
    while (!this.#leader()) {
      if (this.#now >= deadline) {
        throw new Violation('liveness', `no leader within ${LIVENESS_ELECTION_TICKS} election timeouts after healing`)
      }
      this.#step()
      if (this.#wal && this.#background()) await settle()
      else if (this.#worker) await null
    }
    // fresh proposals must commit on every voter; if the leader that took them loses
    // office first they may be lost (never acknowledged), so the next leader gets new ones
    let batch: { ids: number[]; leader: NodeId; term: number; refused: boolean } | null = null
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
      if (leader?.raft && (!batch || batch.refused || batch.leader !== leader.id || batch.term !== leader.raft.term)) {
        const ids: number[] = []
        for (let i = 0; i < LIVENESS_PROPOSALS; i++) ids.push(this.#nextProposalId++)
        // a worker host answers later: a refusal then asks for a new batch
        const b = { ids, leader: leader.id, term: leader.raft.term, refused: false }
        if (this.#propose(leader, ids, () => (b.refused = true))) batch = b
      }
      this.#step()
      if (this.#wal && this.#background()) await settle()
      else if (this.#worker) await null
    }
    this.#checkLogs()
  }

  #finalCheck(): void {
    const leader = this.#leader()
    if (!leader?.raft) throw new Violation('liveness', 'no leader at the end of the liveness phase')
    for (const id of leader.raft.voters()) {
      const n = this.#nodes.get(id)!
      if (n.lost) continue // its disk was replaced: no longer part of what must hold
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
    for (const n of this.#nodes.values()) if (!n.lost) behind = Math.max(behind, leader.raft.lastIndex - n.storage.lastIndex())
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
      if (n.lost) continue
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
      if (n.pausedUntil > this.#now) continue
      if (n.pausedUntil >= 0) this.#resume(n)
      if (n.host) {
        this.#driveWorker(n, n.host)
        continue
      }
      if (this.#now >= n.nextTick) {
        n.nextTick = this.#now + n.tickPeriod
        n.raft.tick()
      }
      this.#drive(n)
    }
    if (this.#worker) {
      for (const n of this.#nodes.values()) {
        if (!n.host) continue
        for (const m of n.host.sent(this.#now)) this.#send(m)
        n.host.answered(this.#now)
      }
    }
    if (this.#detector) this.#detect(this.#detector)
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

  /** Quiescence seeds: what the peer transport's pings would tell each node this unit. */
  #detect(d: SimFailureDetector): void {
    const running = (id: NodeId): boolean => {
      const n = this.#nodes.get(id)!
      return n.raft !== null && n.pausedUntil <= this.#now
    }
    d.observe(
      this.#now,
      [...this.#nodes.keys()],
      running,
      (observer, peer) => !this.#net.linkBlocked(peer, observer),
      (observer, peer) => {
        const n = this.#nodes.get(observer)!
        this.stats.peerDownReports++
        this.#log(() => `n${observer} sees n${peer} DOWN`)
        const host = n.host
        if (host) host.post(() => host.actor.peerDown(peer))
        else n.raft!.peerDown(peer)
      },
    )
    for (const n of this.#nodes.values()) if (n.raft?.quiet) this.stats.quietUnits++
  }

  #deliver(m: Message): void {
    const n = this.#nodes.get(m.to)
    if (!n?.raft) return
    if (n.pausedUntil > this.#now) {
      // the process is stopped; its socket buffers what arrives
      n.paused.push(m)
      return
    }
    const host = n.host
    if (host) {
      // the worker thread takes it when it is free
      if (host.blocked(this.#now)) this.stats.workerArrivalsWhileBlocked++
      host.post(() => {
        this.#log(() => `deliver ${formatMessage(m)}`)
        host.actor.step(m)
      })
      return
    }
    this.#log(() => `deliver ${formatMessage(m)}`)
    n.raft.step(m)
  }

  #send(m: Message): void {
    this.stats.messages++
    this.#net.send(this.#now, m)
  }

  /** How long a durable write takes; in the safety phase of a harsh seed, some take long (their entries may be replaced meanwhile). */
  #diskTime(n: SimNode): number {
    const usual = this.#prng.range(1, this.opts.diskLatencyMax)
    const h = this.opts.harsh
    if (!this.#faulty) return usual
    const slow = h.slowNodes.includes(n.id) || (h.diskTailShare > 0 && this.#harsh.chance(h.diskTailShare))
    if (!slow) return usual
    this.stats.slowWrites++
    return this.#harsh.range(this.opts.diskLatencyMax + 1, Math.max(this.opts.diskLatencyMax + 1, h.diskTailMax))
  }

  /** The host loop of one node: finish a durable write that is due, then take the next Ready. */
  #drive(n: SimNode): void {
    const raft = n.raft!
    if (n.disk) {
      // the store's side of retirement runs beside the Ready pipeline, as GroupRuntime's does
      if (n.checkpointing && n.checkpointing.doneAt <= this.#now) this.#finishCheckpoint(n)
      else if (!n.checkpointing && n.disk.sealedWaiting >= this.opts.wal.sealedMax) this.#maybeRetire(n)
      if (!n.raft) return
    }
    if (n.pending && n.pending.doneAt <= this.#now) {
      if (n.disk === null || this.#walCommit(n)) {
        const rd = n.pending.ready
        n.pending = null
        this.#finishReady(n, rd)
        if (!n.raft) return // crashed right after the write
      } else if (!n.raft) {
        return // fail-stopped
      }
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
      const stall = this.#maybeStall(n, rd)
      n.pending = { ready: rd, doneAt: this.#now + (stall >= 0 ? stall : this.#diskTime(n)), staged: false }
    } else if (n.disk) {
      // no sync needed: staged and committed at once (its hard state rides with the next sync),
      // unless an earlier checkpoint left records the disk refused, which this commit retries
      n.pending = { ready: rd, doneAt: this.#now, staged: false }
      if (this.#walCommit(n)) {
        n.pending = null
        this.#finishReady(n, rd)
      }
    } else {
      this.#finishReady(n, rd)
    }
  }

  // ---- the worker host ----------------------------------------------------------------

  /**
   * Worker mode, one time unit of a node: nothing while its thread is blocked in a sync;
   * once free, the sync it was blocked in completes, retirement goes on beside the loop
   * (as GroupRuntime's does), and the thread runs (worker-host.ts).
   */
  #driveWorker(n: SimNode, host: WorkerHost): void {
    if (host.blocked(this.#now)) return
    if (n.inflight) {
      n.disk!.proxy.releaseHeldSync()
      n.inflight = null
    }
    if (n.checkpointing && n.checkpointing.doneAt <= this.#now) this.#finishCheckpoint(n)
    else if (!n.checkpointing && n.disk!.sealedWaiting >= this.opts.wal.sealedMax) this.#maybeRetire(n)
    if (!n.raft) return // fail-stopped
    const tick = this.#now >= n.nextTick
    if (tick) n.nextTick = this.#now + n.tickPeriod
    host.run(this.#now, tick)
    if (n.failed !== null) this.#failStop(n, n.failed)
  }

  /** The LoopEngine the node's WorkerLoop commits through: its LogEngine, with the storage faults and checks of the WAL host. */
  #loopEngine(n: SimNode): LoopEngine {
    return {
      stage: (group, rd) => {
        if (n.commitToWrite > 0) {
          // the commit index raised on restart must become the durable one again
          if ((rd.hardState?.commit ?? 0) < n.commitToWrite) {
            throw new Violation('durability', `n${n.id}'s first Ready after a restart at commit ${n.commitToWrite} does not write it (hard state ${JSON.stringify(rd.hardState)})`)
          }
          n.commitToWrite = 0
        }
        n.staged.push(rd)
        n.disk!.engine!.stage(group, rd)
      },
      commit: () => this.#workerCommit(n),
    }
  }

  /**
   * Worker mode: one commit of the loop's turn. A synced one blocks the thread for a disk
   * latency, its fdatasync held back meanwhile (in the safety phase), so that a crash can
   * strike inside it; WAL_FULL is the loop's to retry, WAL_IO fail-stops the node.
   */
  #workerCommit(n: SimNode): ReturnType<LoopEngine['commit']> {
    const disk = n.disk!
    const engine = disk.engine!
    const sync = engine.syncNeeded
    // a crash strikes inside the newest sync only: whatever the thread applied before it happened
    if (sync) n.host!.settleApplies()
    const undo = sync ? this.#undoPoint(n) : null
    if (sync && this.#faulty) this.#armCommitFaults(n)
    // as in the WAL host, a snapshot's commit is not struck mid-way (its store write follows it)
    disk.proxy.holdSyncs(undo !== null && this.#faulty && n.staged.every((rd) => rd.snapshot === null))
    const before = this.#syncPoint(n)
    const r = engine.commit()
    disk.proxy.holdSyncs(false)
    disk.proxy.disarm('write')
    disk.proxy.disarm('sync')
    if (!r.ok) {
      // a sync that returned before the commit failed is durable
      disk.proxy.releaseHeldSync()
      n.inflight = null
      if (r.error.code === 'WAL_FULL') {
        this.stats.walFullRefusals++
        this.#log(() => `n${n.id} WAL_FULL (${disk.proxy.fired.join(',') || 'capacity'}): the loop's turn stalls, retried in ${this.opts.wal.retryUnits}: ${r.error.message}`)
        return { ok: false, error: { code: 'FULL', message: r.error.message } }
      }
      n.failed = r.error.message
      return { ok: false, error: { code: 'FAILED', message: r.error.message } }
    }
    const synced = engine.syncs !== before.syncs
    this.#synced(n, before)
    for (const rd of n.staged) {
      for (const e of rd.entries) this.#checker.persisted(n.id, e)
      if (rd.snapshot) this.#log(() => `n${n.id} persist snapshot @${rd.snapshot!.metadata.index}`)
      if (rd.entries.length > 0) this.#log(() => `n${n.id} persist ${formatEntries(rd.entries)}`)
    }
    n.staged = []
    if (synced) {
      n.host!.block(this.#diskTime(n))
      const write = disk.proxy.heldWrite
      n.inflight = write === undefined || undo === null ? null : { undo, write }
    }
    return { ok: true }
  }

  /** What a crash inside the coming commit's fdatasync must find durable (null: it cannot be said cheaply, so no crash strikes inside it). */
  #undoPoint(n: SimNode): Undo | null {
    const st = n.storage
    const first = st.firstIndex()
    const last = st.lastIndex()
    let from = last + 1
    for (const rd of n.staged) if (rd.entries.length > 0) from = Math.min(from, rd.entries[0]!.index)
    if (from < first) return null
    return { first, from, suffix: from <= last ? st.entries(from, last + 1, Infinity) : [], hardState: { ...st.hardState() }, syncedCommit: n.syncedCommit, sm: n.sm.mark() }
  }

  /** The durable log before the commit `undo` was taken for. */
  #imageBefore(n: SimNode, undo: Undo): LogImage {
    const st = n.storage
    if (st.firstIndex() !== undo.first) throw new Error(`n${n.id}: the log's first index moved from ${undo.first} to ${st.firstIndex()} during a sync`)
    const kept = undo.from > undo.first ? st.entries(undo.first, undo.from, Infinity) : []
    return { first: undo.first, entries: kept.concat(undo.suffix), hardState: { ...undo.hardState, commit: Math.min(undo.hardState.commit, undo.syncedCommit) } }
  }

  /**
   * Worker mode: the machine goes down. If the thread is blocked in a sync, the crash
   * strikes inside that fdatasync (the write it held back dropped, torn or kept, and
   * nothing the turn did after it happened: the applied state that survives is the one
   * before it), or (the rest of the time) just after it returned, before what the turn
   * sent after it left. Answers the thread had given by now reach their clients.
   */
  #crashWorker(n: SimNode, host: WorkerHost): void {
    const disk = n.disk!
    const w = this.opts.wal
    const d = this.#disk
    host.answered(this.#now)
    const mode = d.pick(w.crashModes)
    const f = n.inflight !== null && disk.proxy.heldWrite !== undefined ? n.inflight : null
    let pre: LogImage
    let post: LogImage | null = null
    let inflight: WriteSpan | null = null
    if (f !== null && d.chance(w.midCommitCrash)) {
      pre = this.#imageBefore(n, f.undo)
      post = imageOf(n.storage, n.syncedCommit)
      inflight = f.write
      if (n.appliedSurvived) n.sm.rollback(f.undo.sm)
      this.stats.walCrashesMidCommit++
      if (mode === 'tear' || mode === 'sectors') this.stats.walCrashesTorn++
      if (mode === 'keep') this.stats.walCrashesKept++
    } else {
      disk.proxy.releaseHeldSync()
      host.settleApplies()
      pre = imageOf(n.storage, n.syncedCommit)
    }
    disk.crashTo(disk.fs.crash({ unsynced: mode, prng: d }))
    n.crashed = { pre, post, inflight }
    n.fullUntil = -1
    n.checkpointing = null
    this.#dropHost(n)
    this.#log(
      () =>
        `n${n.id} CRASH (${mode}${inflight ? `, inside the fdatasync of ${inflight.length} bytes at ${inflight.path}:${inflight.position}` : f ? ', just after an fdatasync' : ''}) durable commit ${pre.hardState.commit}, applied ${n.appliedSurvived ? `${n.sm.index} survives` : 'lost'}`,
    )
  }

  /** Worker mode: the thread is gone, with everything queued in it. */
  #dropHost(n: SimNode): void {
    n.host = null
    n.staged = []
    n.inflight = null
    n.failed = null
  }

  /** The actor's and the loop's log lines, into the trace. */
  #actorLog(n: SimNode): ActorLogger {
    const line = (obj: object, msg: string): void => this.#log(() => `n${n.id} ${msg} ${JSON.stringify(obj)}`)
    return { info: line, warn: line, error: line, debug: line }
  }

  /**
   * WAL mode: stages the pending Ready (once) and commits the engine: one write and one
   * fdatasync when anything needs it. False when the disk refused (WAL_FULL: the Ready
   * stays staged and is retried later) or failed (WAL_IO: the node fail-stopped).
   */
  #walCommit(n: SimNode): boolean {
    const p = n.pending!
    const disk = n.disk!
    const engine = disk.engine!
    if (!p.staged) {
      engine.stage(SIM_GROUP, p.ready)
      p.staged = true
    }
    if (engine.syncNeeded && this.#faulty) this.#armCommitFaults(n)
    const before = this.#syncPoint(n)
    const r = engine.commit()
    disk.proxy.disarm('write')
    disk.proxy.disarm('sync')
    if (r.ok) {
      this.#synced(n, before)
      return true
    }
    if (r.error.code === 'WAL_FULL') {
      this.stats.walFullRefusals++
      p.doneAt = this.#now + this.opts.wal.retryUnits
      this.#log(() => `n${n.id} WAL_FULL (${disk.proxy.fired.join(',') || 'capacity'}): the Ready stays staged, retried at t=${p.doneAt}: ${r.error.message}`)
      return false
    }
    this.#failStop(n, r.error.message)
    return false
  }

  #syncPoint(n: SimNode): { readonly seq: number; readonly syncs: number } {
    const disk = n.disk!
    return { seq: disk.wal!.activeSeq, syncs: disk.engine!.syncs }
  }

  /** After an engine commit: if it synced, the commit index written so far is durable; count the segment rolls. */
  #synced(n: SimNode, before: { readonly seq: number; readonly syncs: number }): void {
    const disk = n.disk!
    if (disk.engine!.syncs === before.syncs) return // nothing was written: queued commit indexes are still unsynced
    const seqBefore = before.seq
    this.stats.walSyncs++
    this.stats.walRolls += disk.wal!.activeSeq - seqBefore
    n.syncedCommit = n.storage.hardState().commit
    disk.proxy.fired.length = 0
  }

  /** The storage faults of one synced commit, each aimed at exactly one call (wal-disk.ts, SimWalFs). */
  #armCommitFaults(n: SimNode): void {
    const w = this.opts.wal
    const d = this.#disk
    const proxy = n.disk!.proxy
    if (d.chance(w.eioChance)) {
      proxy.arm(d.chance(0.25) ? 'write' : 'sync', 'EIO')
    } else if (d.chance(w.writeFullChance)) {
      // a segment creation's ENOSPC waits for the next roll that needs a fresh file
      if (d.chance(0.5)) proxy.arm('write', 'ENOSPC')
      else proxy.arm('create', 'ENOSPC')
    }
  }

  /**
   * WAL mode, as GroupRuntime retires segments: once enough are sealed, the group
   * checkpoints if the oldest hold data its store lacks, else its checkpoint record is
   * carried forward and they go at once.
   */
  #maybeRetire(n: SimNode): void {
    const disk = n.disk!
    const through = disk.wal!.activeSeq - 1
    if (disk.checkpointDue(through)) {
      this.#beginCheckpoint(n, through)
      return
    }
    this.#retire(n, through)
  }

  #retire(n: SimNode, through: number): void {
    const disk = n.disk!
    const before = this.#syncPoint(n)
    const r = disk.retire(through)
    if (!r.ok) {
      this.#log(() => `n${n.id} retiring WAL segments through ${through} failed: ${r.code} ${r.message}`)
      if (r.code === 'WAL_IO') this.#failStop(n, r.message)
      return
    }
    this.#synced(n, before)
    this.stats.walRetired += r.retired
    if (r.retired > 0) this.#log(() => `n${n.id} retired WAL segments through ${through}, active ${disk.wal!.activeSeq}`)
  }

  /**
   * WAL mode: the host captures its state for its store now (the engine's checkpointBegin),
   * perhaps with a Ready in flight or stalled; the synced store write completes a
   * simulated disk latency later, Readys going on meanwhile. `retireThrough` (0: none) is
   * what the checkpoint is for.
   */
  #beginCheckpoint(n: SimNode, retireThrough: number): void {
    const disk = n.disk!
    const raft = n.raft!
    const st = n.storage
    const index = n.sm.index
    const last = st.lastIndex()
    const state: StoreState = {
      index,
      term: st.term(index),
      conf: raft.confAt(index),
      data: n.sm.encode(),
      hardState: st.hardState(),
      tail: index < last ? st.entries(index + 1, last + 1, Infinity) : [],
    }
    disk.beginCheckpoint()
    n.checkpointing = { state, doneAt: this.#now + this.#diskTime(n), retireThrough }
    this.#log(() => `n${n.id} checkpoint @${index} begins${retireThrough > 0 ? ` (to retire through ${retireThrough})` : ''}`)
  }

  #finishCheckpoint(n: SimNode): void {
    const disk = n.disk!
    const { state, retireThrough } = n.checkpointing!
    n.checkpointing = null
    const before = this.#syncPoint(n)
    const r = disk.finishCheckpoint(state)
    this.stats.walCheckpoints++
    if (!r.ok) {
      this.#log(() => `n${n.id} checkpoint @${state.index}: store synced, its record not committed: ${r.code} ${r.message}`)
      if (r.code === 'WAL_IO') this.#failStop(n, r.message)
      return
    }
    this.#synced(n, before)
    this.#log(() => `n${n.id} checkpoint @${state.index}: store synced and recorded`)
    if (retireThrough > 0 && !disk.checkpointDue(retireThrough)) this.#retire(n, retireThrough)
  }

  #finishReady(n: SimNode, rd: Ready): void {
    const raft = n.raft!
    const st = n.storage
    for (const e of rd.entries) this.#checker.persisted(n.id, e)
    // the WAL host's engine made the Ready current in its view when it committed
    if (n.disk === null) st.persist(rd)
    // a sync makes every earlier write durable too (a WAL): the commit index included
    if (rd.mustSync) n.syncedCommit = st.hardState().commit
    if (rd.snapshot) this.#log(() => `n${n.id} persist snapshot @${rd.snapshot!.metadata.index}`)
    if (rd.entries.length > 0) this.#log(() => `n${n.id} persist ${formatEntries(rd.entries)}`)
    if (rd.mustSync && rd.snapshot === null && this.#crashesAfterPersist()) {
      // durable, but nothing of it acknowledged or applied: the restart must take it from the disk
      this.stats.crashesAfterPersist++
      this.#log(() => `n${n.id} crashes after its write, before acknowledging it`)
      this.#crash(n)
      return
    }
    const last = rd.entries[rd.entries.length - 1]
    if (last && raft.logTerm(last.index) > 0 && raft.logTerm(last.index) !== last.term) {
      this.stats.replacedInFlight++
      this.#log(() => `n${n.id} wrote ${last.index}@t${last.term}, replaced meanwhile by t${raft.logTerm(last.index)} (log now ..${raft.lastIndex})`)
    }
    for (const m of rd.messagesAfterPersist) this.#send(m)
    if (rd.snapshot) this.#installSnapshot(n, rd.snapshot)
    for (const e of rd.committedEntries) this.#apply(n, e)
    raft.advance()
  }

  /** A leader's snapshot, durable in the log, becomes the node's state (and, with a WAL, its store's). */
  #installSnapshot(n: SimNode, snap: Snapshot): void {
    const st = n.storage
    const { index, term, conf } = snap.metadata
    n.sm = SimStateMachine.decode(index, snap.data)
    this.#checker.installedSnapshot(n.id, index, n.sm.hash)
    this.stats.snapshotsInstalled++
    this.#log(() => `n${n.id} install snapshot @${index} voters [${conf.voters.join(',')}]`)
    if (n.disk) {
      // the snapshot's state goes to the store, synced with the WAL commit that recorded
      // it; a checkpoint captured before it would take the store back: it is dropped
      if (n.checkpointing) {
        n.disk.cancelCheckpoint()
        n.checkpointing = null
      }
      const last = st.lastIndex()
      n.disk.store = { index, term, conf, data: snap.data, hardState: st.hardState(), tail: index < last ? st.entries(index + 1, last + 1, Infinity) : [] }
    }
  }

  #apply(n: SimNode, e: Entry): void {
    const twice = n.sm.apply(e)
    if (twice !== null) this.#checker.appliedTwice(n.id, twice)
    const hash = n.sm.hash
    if (n.host) n.host.record(() => this.#checker.applied(n.id, e, hash))
    else this.#checker.applied(n.id, e, hash)
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
      else if (!n.raft && !n.lost && r.chance(o.restartRate)) this.#restart(n)
    }
    if (this.#wal) this.#diskFull()
    this.#pause()
    if (r.chance(o.leaderCrashRate)) {
      const leader = this.#leader()
      if (leader) this.#crash(leader)
    }
    if (!this.#net.isPartitioned() && r.chance(o.partitionRate)) this.#partition()
    else if (this.#net.isPartitioned() && (this.#healAt < 0 ? r.chance(o.healRate) : this.#now >= this.#healAt)) {
      this.#net.heal(this.#now)
      this.#healAt = -1
      this.#log(() => 'partition healed')
    }
    if (r.chance(o.snapshotRate)) this.#snapshot(r.pick([...this.#nodes.values()]))
    const more = this.opts.harsh.moreChanges
    if (r.chance(o.confChangeRate) || (more > 0 && o.confChangeRate > 0 && this.#harsh.chance(more))) {
      const before = this.#leader()?.raft?.voters() ?? []
      this.#burst('change')
      const split = this.opts.harsh.splitAfterChange
      if (split > 0 && this.#harsh.chance(split)) this.#atLeader((leader) => this.#splitAfterChange(leader, before))
    }
    if (r.chance(o.transferRate)) this.#burst('transfer')
  }

  /**
   * Harsh seeds: stop a process (SIGSTOP, a VM freeze, a long GC pause), the leader more
   * often than not. On resume it first takes what arrived meanwhile, then finds its write
   * done: the write completes after the messages that replaced its entries.
   */
  #pause(): void {
    const h = this.opts.harsh
    if (h.pauseRate === 0 || !this.#harsh.chance(h.pauseRate)) return
    // a worker thread inside a sync is paused once that sync returned (a pause does not make a sync longer)
    const live = [...this.#nodes.values()].filter((n) => n.raft && n.pausedUntil < 0 && (!n.host || (!n.host.blocked(this.#now) && n.inflight === null)))
    if (live.length === 0) return
    const leader = this.#leader()
    const n = leader && live.includes(leader) && this.#harsh.chance(0.6) ? leader : this.#harsh.pick(live)
    const units = this.#harsh.range(10, h.pauseMax)
    n.pausedUntil = this.#now + units
    this.stats.pauses++
    this.#log(() => `n${n.id} PAUSED until t=${n.pausedUntil}${n.pending ? ' with a write in flight' : ''}`)
    if (n.host) n.host.block(units)
  }

  /**
   * Harsh seeds: a leader's write of new entries stalls (hung I/O) while its network drops
   * out (what is sent waits in TCP), and the network comes back first. The rest elect a
   * new leader, whose entries reach the stalled node and replace the ones its write still
   * holds: the write completes after they were replaced (and what the stalled leader sent
   * arrives terms late). Returns the write's time, or -1 if no stall.
   */
  #maybeStall(n: SimNode, rd: Ready): number {
    const h = this.opts.harsh
    if (h.stallLeader === 0 || !this.#faulty || rd.entries.length === 0 || !n.raft?.isLeader() || this.#net.isPartitioned()) return -1
    if (!this.#harsh.chance(h.stallLeader)) return -1
    const election = this.#electionUnits()
    // long enough for the rest to elect a leader (2E at most) and for it to reach the stalled node
    const units = this.#harsh.range(3 * election, 6 * election)
    this.stats.stalls++
    this.#log(() => `n${n.id} STALL: its write of ${formatEntries(rd.entries)} hangs for ${units}`)
    this.#cutOff([n.id], [...this.#nodes.keys()].filter((id) => id !== n.id), true, this.#harsh.range(2 * election, units - election))
    return units
  }

  #resume(n: SimNode): void {
    n.pausedUntil = -1
    const mail = n.paused
    n.paused = []
    this.#log(() => `n${n.id} RESUMED with ${mail.length} messages waiting`)
    for (const m of mail) this.#deliver(m)
  }

  /**
   * Harsh seeds: the network splits the moment a membership change is in flight (what it
   * sent is dropped): the leader with the fewest voters that make a majority of its newest
   * configuration, the voters it added first, on one side; everyone else on the other.
   * One change at a time leaves no room for a majority of the configuration before it on
   * the other side (the two overlap); a second change before the first committed may.
   */
  #splitAfterChange(leader: SimNode, before: readonly NodeId[]): void {
    // a worker thread may get to it only after the faults ended
    if (!leader.raft || this.#net.isPartitioned() || !this.#faulty) return
    const newest = leader.raft.voters()
    const a = [leader.id]
    const candidates = [...newest.filter((id) => !before.includes(id)), ...newest.filter((id) => before.includes(id))]
    for (const id of candidates) {
      if (a.filter((x) => newest.includes(x)).length > newest.length / 2) break
      if (!a.includes(id)) a.push(id)
    }
    const b = [...this.#nodes.keys()].filter((id) => !a.includes(id))
    this.stats.splitsAfterChange++
    this.#log(() => 'a membership change is in flight: the network splits')
    // long enough for each side to elect and commit, if it can
    const election = this.#electionUnits()
    this.#cutOff(a, b, undefined, this.#harsh.range(2 * election, 4 * election))
  }

  /** A two-way partition of the harsh world that heals after `units`, not at the seed's heal rate (`hold`: see SimNetwork.partition). */
  #cutOff(a: readonly NodeId[], b: readonly NodeId[], hold: boolean | undefined, units: number): void {
    this.#net.partition(a, b, false, hold)
    this.#healAt = this.#now + units
    this.stats.partitions++
    this.#log(() => `PARTITION {${a.join(',')}} x {${b.join(',')}} until t=${this.#healAt}`)
  }

  /** One election timeout of the slowest clock, in time units. */
  #electionUnits(): number {
    return this.opts.raft.electionTicks * Math.max(...this.opts.tickPeriods)
  }

  /** Crash right after a durable write (harsh seeds, safety phase)? */
  #crashesAfterPersist(): boolean {
    const p = this.opts.harsh.crashAfterPersist
    return p > 0 && this.#faulty && this.#harsh.chance(p)
  }

  /**
   * A membership change or a transfer, then (harsh seeds) more back to back, each at once
   * after the one before, mostly of the same kind; only of the kinds the seed makes at all
   * (a seed without membership changes may lose a node for good: #mayLoseNode).
   */
  #burst(first: 'change' | 'transfer'): void {
    const changes = this.opts.confChangeRate > 0
    const transfers = this.opts.transferRate > 0
    let kind = first
    for (;;) {
      if (kind === 'change') this.#confChange()
      else this.#transfer()
      const p = this.opts.harsh.burstChance
      if (p === 0 || !this.#harsh.chance(p)) return
      this.stats.bursts++
      const other = kind === 'change' ? 'transfer' : 'change'
      if (this.#harsh.chance(0.15) && (other === 'change' ? changes : transfers)) kind = other
    }
  }

  #crash(n: SimNode): void {
    // everything not yet durable (the pending write, the in-memory log, commit-only hard
    // states written since the last sync) is lost
    const st = n.storage
    const hs = st.hardState()
    const survived = this.#prng.chance(this.opts.appliedSurvival)
    n.appliedSurvived = survived
    if (n.host) {
      this.#crashWorker(n, n.host)
    } else if (n.disk) {
      this.#crashDisk(n)
    } else {
      let commit = n.syncedCommit
      // a host whose applied state does not survive restores its snapshot; its log store
      // synced the commit index together with that snapshot
      if (!survived) commit = Math.max(commit, Math.min(hs.commit, st.snapshot().metadata.index))
      if (commit !== hs.commit) st.setHardState({ ...hs, commit })
      this.#log(() => `n${n.id} CRASH durable commit ${commit} (written ${hs.commit}), applied ${survived ? `${n.sm.index} survives` : 'lost'}`)
    }
    n.raft = null
    n.pending = null
    n.crashAt = -1
    n.pausedUntil = -1
    n.paused = []
    this.stats.crashes++
  }

  /**
   * WAL mode: the machine goes down. If a write is in flight, the crash may strike inside
   * its fdatasync: the commit runs on the doomed machine, and the disk is what that sync
   * left, its write dropped, torn, kept or kept in part (the crash mode, drawn per crash).
   */
  #crashDisk(n: SimNode): void {
    const disk = n.disk!
    const w = this.opts.wal
    const d = this.#disk
    const mode = d.pick(w.crashModes)
    const pre = imageOf(n.storage, n.syncedCommit)
    let post: LogImage | null = null
    let inflight: WriteSpan | null = null
    let image = null
    const p = n.pending
    // a snapshot's Ready is not struck mid-commit: the host writes the snapshot into its
    // store right after that commit, and a crash between the two is not the WAL's to survive
    if (p && p.ready.snapshot === null && d.chance(w.midCommitCrash)) {
      post = imageAfter(n.storage, p.ready)
      const got = disk.commitAndCrash(p.staged ? null : p.ready, { unsynced: mode, prng: d })
      p.staged = true
      if (got !== null) {
        image = got.fs
        inflight = got.write
        this.stats.walCrashesMidCommit++
        if (mode === 'tear' || mode === 'sectors') this.stats.walCrashesTorn++
        if (mode === 'keep') this.stats.walCrashesKept++
      }
    }
    image ??= disk.fs.crash({ unsynced: mode, prng: d })
    disk.crashTo(image)
    n.crashed = { pre, post, inflight }
    n.fullUntil = -1
    n.checkpointing = null
    this.#log(
      () =>
        `n${n.id} CRASH (${mode}${inflight ? `, inside the fdatasync of ${inflight.length} bytes at ${inflight.path}:${inflight.position}` : ''}) durable commit ${pre.hardState.commit}, applied ${n.appliedSurvived ? `${n.sm.index} survives` : 'lost'}`,
    )
  }

  /**
   * WAL_IO: the node fail-stops at once, acknowledging nothing of the failed write. The
   * machine reboots before the node is restarted: a restart over the same page cache
   * would trust writes a failed fdatasync never made durable (fsyncgate).
   */
  #failStop(n: SimNode, message: string): void {
    const disk = n.disk!
    this.stats.walFailStops++
    n.appliedSurvived = this.#prng.chance(this.opts.appliedSurvival)
    n.crashed = { pre: imageOf(n.storage, n.syncedCommit), post: null, inflight: null }
    disk.crashTo(disk.fs.crash({ unsynced: 'drop' }))
    n.fullUntil = -1
    n.checkpointing = null
    n.raft = null
    n.pending = null
    n.crashAt = -1
    // the failed commit applied nothing; what the thread applied before it happened
    n.host?.settleApplies()
    this.#dropHost(n)
    this.#log(() => `n${n.id} FAIL-STOP on WAL_IO (${message}): down until restarted after a reboot`)
  }

  /** WAL mode: disk-full windows (writes that grow the files fail with ENOSPC until they end). */
  #diskFull(): void {
    const w = this.opts.wal
    const d = this.#disk
    for (const n of this.#nodes.values()) {
      if (!n.raft || !n.disk) continue
      const fs = n.disk.fs
      if (n.fullUntil >= 0) {
        if (this.#now < n.fullUntil) continue
        fs.setCapacity(Infinity)
        n.fullUntil = -1
        this.#log(() => `n${n.id} disk space freed`)
      } else if (d.chance(w.fullRate)) {
        const capacity = fs.usedBytes + d.int(w.segmentBytes)
        fs.setCapacity(capacity)
        n.fullUntil = this.#now + d.range(1, w.fullUnits)
        this.stats.walFullWindows++
        this.#log(() => `n${n.id} disk full at ${capacity} bytes until t=${n.fullUntil}`)
      }
    }
  }

  /** WAL mode: one step of queued background segment preparation, for some nodes (true if any ran). */
  #background(): boolean {
    const rate = this.opts.wal.backgroundRate
    if (rate === 0) return false
    let ran = false
    for (const n of this.#nodes.values()) {
      if (!n.raft || !n.disk || n.disk.fs.pendingAsync === 0 || !this.#disk.chance(rate)) continue
      // the step itself runs now; what awaits it runs in the settle() that follows
      void n.disk.fs.runAsync(1)
      ran = true
    }
    return ran
  }

  #restart(n: SimNode): void {
    const flipped = n.disk && this.#faulty ? this.#flip(n) : null
    this.#detector?.forget(n.id)
    this.#startNode(n, flipped)
    if (!n.raft) return // lost
    n.nextTick = this.#now + this.#prng.range(1, n.tickPeriod)
    this.#log(() => `n${n.id} RESTART term ${n.raft!.term} commit ${n.raft!.commit} applied ${n.sm.index} last ${n.raft!.lastIndex} snapshot @${n.storage.snapshot().metadata.index}`)
  }

  /** Whether a node may be lost for good and the rest still elect and commit whatever membership changes do. */
  #mayLoseNode(): boolean {
    // 5 voters keep at least 4 through membership changes (one lost leaves a majority);
    // 3 voters may drop to 2, which one lost node would stall forever
    return this.#lost === 0 && (this.#cfg.nodes === 5 || this.opts.confChangeRate === 0)
  }

  /** WAL mode, before a restart: perhaps a bit of the stored WAL flips (drawn from the seed). */
  #flip(n: SimNode): Flip | null {
    const disk = n.disk!
    const d = this.#disk
    const inflight = n.crashed?.inflight ?? null
    let kind: FlipKind
    if (this.#cfg.walFaults?.forgeEntries) {
      kind = 'forged'
    } else {
      if (!d.chance(this.opts.wal.flipChance)) return null
      const kinds: FlipKind[] = ['unused']
      // these may make the node refuse to start, which loses it for good
      if (this.#mayLoseNode()) kinds.push('synced', 'synced', 'newest')
      if (this.#mayLoseNode() && inflight !== null) kinds.push('inflight')
      if (this.#mayLoseNode() && this.#cfg.walFaults?.flipNewestCommit) kinds.push('newest', 'newest')
      kind = d.pick(kinds)
    }
    const f = flip(disk.fs, kind, d, inflight)
    if (f !== null) this.#log(() => `n${n.id} FLIP (${f.kind}) bit ${f.bit} of ${f.path} at byte ${f.offset}`)
    return f
  }

  /**
   * WAL mode: a restart's recovery, checked. False when the node refused to start (it is
   * then lost for good); a refusal nothing explains, or a recovered log that lost or
   * changed what the node had made durable, is a violation.
   */
  #recover(n: SimNode, flipped: Flip | null): boolean {
    const disk = n.disk!
    const out = disk.open()
    const expected = n.crashed
    n.crashed = null
    const what = flipped ? ` after a flip (${flipped.kind}) of bit ${flipped.bit} at ${flipped.path}:${flipped.offset}` : ''
    // a damaged acknowledged record must be refused; anything else must recover
    const mustRefuse = flipped?.kind === 'synced' || flipped?.kind === 'newest'
    if (out.kind === 'refused') {
      if ((mustRefuse || flipped?.mayRefuse === true) && out.code !== 'WAL_IO') {
        n.lost = true
        this.#lost++
        this.stats.walFlipsRefused++
        this.#log(() => `n${n.id} REFUSES TO START (${out.code}): ${out.message}; its disk is replaced: the node is gone for good`)
        return false
      }
      throw new Violation('storage', `n${n.id} refused to start${what}: ${out.code} ${out.message}`)
    }
    if (out.kind === 'broken') throw new Violation('durability', `n${n.id}'s recovered WAL cannot be its log${what}: ${out.message}`)
    // every recovered entry must be one that was written: a changed entry is a log matching violation
    for (const e of out.entries) this.#checker.persisted(n.id, e)
    if (mustRefuse) throw new Violation('storage', `n${n.id} started over a WAL with a flipped bit in an acknowledged record${what}: the damage went unnoticed`)
    if (expected !== null) {
      const vsPre = compareImage(out.view, expected.pre)
      const vsPost = expected.post === null ? null : compareImage(out.view, expected.post)
      if (vsPre !== null && (expected.post === null || vsPost !== null)) {
        throw new Violation('durability', `n${n.id} recovered a log that lost or changed what it had made durable${what}: ${vsPre}${expected.post ? `; nor is it the log with the interrupted write: ${vsPost}` : ''}`)
      }
    }
    if (flipped !== null) this.stats.walFlipsRecovered++
    this.stats.walTornBytesDropped += out.report.tornBytesDropped
    if (out.report.tornBytesDropped > 0) this.#log(() => `n${n.id} recovery dropped a torn tail of ${out.report.tornBytesDropped} bytes`)
    n.storage = out.view
    return true
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
    const host = n.host
    if (host) {
      // the host's own work runs on the worker thread, between turns
      host.post(() => this.#takeSnapshot(n))
      return
    }
    this.#takeSnapshot(n)
  }

  #takeSnapshot(n: SimNode): void {
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
    if (n.disk && !n.checkpointing) this.#beginCheckpoint(n, 0)
  }

  /** Runs `fn` on the leader: on its simulated worker thread when one hosts it, then kicks its loop. */
  #atLeader(fn: (leader: SimNode) => void): void {
    const leader = this.#leader()
    if (!leader?.raft) return
    const host = leader.host
    if (!host) return fn(leader)
    host.post(() => {
      if (!host.actor.isLeader()) return
      fn(leader)
      host.loop.kick(host.actor)
    })
  }

  #confChange(): void {
    this.#atLeader((leader) => this.#proposeConfChange(leader))
  }

  #proposeConfChange(leader: SimNode): void {
    if (!leader.raft) return
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
    this.#atLeader((leader) => this.#transferFrom(leader))
  }

  #transferFrom(leader: SimNode): void {
    if (!leader.raft) return
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

  /**
   * Hands `ids` to `n` as one proposal. A worker host takes it when its thread is free
   * and answers through the actor's promise (`onRefused` if it refuses): true means only
   * that it was handed over.
   */
  #propose(n: SimNode, ids: readonly number[], onRefused?: () => void): boolean {
    if (!n.raft || n.pausedUntil > this.#now) return false
    if (n.host) {
      this.#proposeToWorker(n, n.host, ids, onRefused)
      return true
    }
    const r = n.raft.propose(ids.map(encodeId))
    this.#log(() => `n${n.id} propose [${ids.join(',')}]: ${r.ok ? `at ${r.value.firstIndex}..${r.value.lastIndex} t${r.value.term}` : r.error.code}`)
    if (!r.ok) return false
    this.stats.proposed += ids.length
    for (const id of ids) this.#inFlight.set(id, n.id)
    return true
  }

  /** The client's side of GroupActor.propose: acknowledged once the promise says so and the answer has left the thread. */
  #proposeToWorker(n: SimNode, host: WorkerHost, ids: readonly number[], onRefused?: () => void): void {
    if (host.blocked(this.#now)) this.stats.workerArrivalsWhileBlocked++
    host.post(() => {
      const node = host.actor.node
      const last = node.lastIndex
      const answer = host.actor.propose(ids.map(encodeId))
      if (node.lastIndex > last) {
        this.#log(() => `n${n.id} propose [${ids.join(',')}]: at ${last + 1}..${node.lastIndex} t${node.term}`)
        this.stats.proposed += ids.length
      }
      void answer.then((r) => {
        if (r.ok) {
          host.answer(() => {
            for (const id of ids) this.#acked.add(id)
          })
          return
        }
        this.#log(() => `n${n.id} propose [${ids.join(',')}]: ${r.error.code}`)
        onRefused?.()
      })
    })
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

/** Every counter at zero. */
export function emptyStats(): SimStats {
  return {
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
    messagesHeld: 0,
    slowWrites: 0,
    replacedInFlight: 0,
    bursts: 0,
    crashesAfterPersist: 0,
    pauses: 0,
    stalls: 0,
    splitsAfterChange: 0,
    walRuns: 0,
    walSyncs: 0,
    walRolls: 0,
    walCheckpoints: 0,
    walRetired: 0,
    walRecycled: 0,
    walPreparedInBackground: 0,
    walNoSpaceOnCreate: 0,
    walCrashesMidCommit: 0,
    walCrashesTorn: 0,
    walCrashesKept: 0,
    walTornBytesDropped: 0,
    walFlipsRefused: 0,
    walFlipsRecovered: 0,
    walFullRefusals: 0,
    walFullWindows: 0,
    walFailStops: 0,
    workerRuns: 0,
    workerArrivalsWhileBlocked: 0,
    partitionRuns: 0,
    partitionAcked: 0,
    partitionFetchChecks: 0,
    partitionSnapshotsInstalled: 0,
    partitionTransfersStarted: 0,
    partitionTransfersAborted: 0,
    partitionPendingSnapshotsDropped: 0,
    partitionSnapshotsRecovered: 0,
    quiesceRuns: 0,
    quietUnits: 0,
    peerDownReports: 0,
  }
}

export function runSimulation(cfg: SimConfig): Promise<SimResult> {
  const opts = drawOptions(cfg.seed, cfg.nodes, cfg.profile ?? 'mixed', cfg.storage, cfg.quiesce)
  if (opts.storage === 'partition') return runPartitionSimulation(cfg, opts, emptyStats())
  return new Simulation(cfg).run()
}

/** Lets what background WAL work resolved run (microtasks only: the run never yields to timers or I/O). */
async function settle(): Promise<void> {
  for (let i = 0; i < 32; i++) await null
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
