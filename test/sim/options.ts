/**
 * Simulation options, all drawn from one seed (TigerBeetle's VOPR style): the seed
 * decides the cluster's size-independent fault ratios, timings and Raft settings, and
 * they are printed at the start of a run so a failure can be read as well as replayed.
 */
import { Prng } from '../../src/base/index.js'

/**
 * `mixed` draws every knob independently (and picks `churn` for one seed in eight);
 * `churn` is the leader-churn nemesis: leaders are isolated or crashed while clients
 * keep proposing to them, pre-vote and check-quorum are off, and replication moves one
 * entry per round trip, so old uncommitted entries meet newer conflicting ones — the
 * ground where the Figure 8 commitment hazard lives.
 */
export type FaultProfile = 'mixed' | 'churn'

/**
 * Where a node's durable Raft log lives, and who drives it. `memory`: a MemoryStorage the
 * host persists Readys into, with a simulated crash model and an asynchronous disk (the
 * original host). `wal`: the real per-worker write-ahead log (src/storage/wal) over a
 * MemoryWalFs, through the real LogEngine, recovered by Wal.open and replayRecord at
 * every restart (wal-disk.ts), driven by the simulator's own Ready loop. `worker`: the
 * same WAL, driven the production way, by a GroupActor in a WorkerLoop (worker-host.ts).
 */
export type StorageMode = 'memory' | 'wal' | 'worker' | 'partition'

export const STORAGE_MODES: readonly StorageMode[] = ['memory', 'wal', 'worker', 'partition']

/** What a crash does to writes no fdatasync made durable (MemoryWalFs.crash). */
export type WalCrashMode = 'drop' | 'tear' | 'keep' | 'sectors'

/** The WAL hosts' knobs (used when `storage` is `wal` or `worker`; drawn for every seed all the same). */
export interface WalSimOptions {
  /** Pre-allocated segment size: small, so that rolls, retirement and recycling happen. */
  readonly segmentBytes: number
  /** Sealed segments that may wait before the host checkpoints its store and retires them. */
  readonly sealedMax: number
  readonly recycle: boolean
  /** Per time unit and node: the chance that one step of background segment preparation runs. */
  readonly backgroundRate: number
  /** A crash treats the unsynced writes as one of these, picked per crash. */
  readonly crashModes: readonly WalCrashMode[]
  /** Share of crashes of a node with a write in flight that strike inside that write's fdatasync. */
  readonly midCommitCrash: number
  /** Per restart in the safety phase: a bit of the stored WAL is flipped before recovery. */
  readonly flipChance: number
  /** Per time unit and node: a disk-full window begins (writes growing the files fail with ENOSPC). */
  readonly fullRate: number
  /** A disk-full window lasts up to this many time units. */
  readonly fullUnits: number
  /** Per synced commit: ENOSPC on its write, or on the next segment creation. */
  readonly writeFullChance: number
  /** Per synced commit: EIO on its fdatasync (or, one time in four, on its write). */
  readonly eioChance: number
  /** A commit refused with WAL_FULL is retried after this many time units. */
  readonly retryUnits: number
}

/**
 * The harsher world (issue 12): faults a wrong rule in the core needs before it shows,
 * which the rest of the mix makes too rare. Drawn after every other knob, and applied
 * from a generator of their own that is consulted only where a knob is on, so a seed
 * with all of them off replays the history it had before they existed.
 */
export interface HarshOptions {
  /** Share of messages held back: delivered uniform in (delayMax, tailMax] units later, so a deposed leader's appends arrive terms later. */
  readonly tailShare: number
  readonly tailMax: number
  /** A duplicated message's copy takes the long tail with this chance. */
  readonly dupTailShare: number
  /** Share of partitions that hold messages back instead of dropping them (TCP retransmitting): a deposed leader's appends arrive after the heal. */
  readonly holdShare: number
  /** Share of durable writes that are slow, uniform in (diskLatencyMax, diskTailMax]: they complete after their entries were replaced. */
  readonly diskTailShare: number
  readonly diskTailMax: number
  /** Nodes whose every durable write is slow, in (diskLatencyMax, diskTailMax] (a sick disk beside healthy ones). */
  readonly slowNodes: readonly number[]
  /** After a membership change or a transfer is proposed: the chance that another of either follows at once (again and again). */
  readonly burstChance: number
  /** Per time unit, beside confChangeRate (and only where it is on): a membership change. */
  readonly moreChanges: number
  /** After a membership change is proposed: the chance that the network splits at once, while the change is in flight. */
  readonly splitAfterChange: number
  /** Per synced write of new entries by a leader: it stalls for 3-6 election timeouts, and the leader is cut off for all but the last one or more. */
  readonly stallLeader: number
  /** Per time unit: a process is paused (the leader more often than not) for up to pauseMax units. */
  readonly pauseRate: number
  readonly pauseMax: number
  /** Per durable write finished (memory and wal hosts): the node crashes right after it, before its acknowledgements leave or its entries apply. */
  readonly crashAfterPersist: number
}

const CALM: HarshOptions = { tailShare: 0, tailMax: 0, dupTailShare: 0, holdShare: 0, diskTailShare: 0, diskTailMax: 0, slowNodes: [], burstChance: 0, moreChanges: 0, splitAfterChange: 0, stallLeader: 0, pauseRate: 0, pauseMax: 0, crashAfterPersist: 0 }

export interface SimOptions {
  readonly seed: number
  readonly profile: FaultProfile
  /** Voters of the initial configuration; one spare node beyond them can be added later. */
  readonly nodes: 3 | 5
  /** Time units of the safety phase (faults on). */
  readonly safetyTime: number
  /** Per-message probabilities. */
  readonly lossRate: number
  readonly duplicateRate: number
  /** Message delay is uniform in [1, delayMax] time units (random delays reorder). */
  readonly delayMax: number
  /** Per time unit probabilities. */
  readonly crashRate: number
  /** Per time unit: crash whoever leads (Jepsen's "kill the leader" nemesis). */
  readonly leaderCrashRate: number
  /** Chance that a newly elected leader is crashed soon after (before its first entries spread). */
  readonly newLeaderCrashChance: number
  readonly restartRate: number
  readonly partitionRate: number
  readonly healRate: number
  /** Share of partitions that are one-way. */
  readonly oneWayShare: number
  /** Share of partitions that cut the current leader off alone. */
  readonly isolateLeaderShare: number
  readonly proposeRate: number
  readonly snapshotRate: number
  readonly confChangeRate: number
  readonly transferRate: number
  /** Time units between a node's ticks, per node (uneven clocks). */
  readonly tickPeriods: readonly number[]
  /** A durable write takes uniform [1, diskLatencyMax] time units. */
  readonly diskLatencyMax: number
  /** The host sends what takeMessages() gives while a write is in flight (else it waits for the next Ready). */
  readonly eagerSend: boolean
  /**
   * Per crash: the chance that the host's applied state survives whole although the log
   * store lost its unsynced commit-only hard state (the applied state lives in a store
   * of its own, not synced with the log, like the per-group database beside the WAL), so
   * the node restarts with an applied index, and possibly a snapshot, beyond its durable
   * commit index. Otherwise the host restores from its snapshot, and the log store is
   * one that synced the commit index with that snapshot.
   */
  readonly appliedSurvival: number
  readonly storage: StorageMode
  readonly wal: WalSimOptions
  readonly harsh: HarshOptions
  /** Idle groups go quiet (RaftOptions.quiesce), and a failure detector reports a peer it cannot hear for `detectElections` election timeouts (failure-detector.ts). */
  readonly quiesce: { readonly on: boolean; readonly detectElections: number }
  readonly raft: {
    readonly electionTicks: number
    readonly heartbeatTicks: number
    readonly preVote: boolean
    readonly checkQuorum: boolean
    readonly inflightMsgsMax: number
    readonly appendBytesMax: number
  }
}

const ALL_CRASH_MODES: readonly WalCrashMode[] = ['drop', 'tear', 'keep', 'sectors']

/** `storage` forces the storage mode; it is drawn all the same, so no other knob changes. */
/** `quiesce` forces quiescence on or off; it is drawn all the same. */
export function drawOptions(seed: number, nodes: 3 | 5, profile: FaultProfile = 'mixed', storage?: StorageMode, quiesce?: boolean): SimOptions {
  const r = new Prng(seed)
  const pick = <T>(xs: readonly T[]): T => r.pick(xs)
  const total = nodes + 1
  const tickPeriods: number[] = []
  const base = r.range(6, 12)
  const uneven = r.chance(0.5)
  for (let i = 0; i < total; i++) tickPeriods.push(uneven ? r.range(base - 4, base + 6) : base)
  const roll = r.int(8) // drawn always, so a seed's other draws do not depend on the profile
  const churn = profile === 'churn' || roll === 0
  const drawn: SimOptions = {
    seed,
    profile: churn ? 'churn' : 'mixed',
    nodes,
    safetyTime: r.range(1500, 4000),
    lossRate: pick([0, 0.01, 0.05, 0.15, 0.3]),
    duplicateRate: pick([0, 0, 0.02, 0.1]),
    delayMax: pick([2, 5, 15, 40]),
    crashRate: pick([0, 0.001, 0.003, 0.01]),
    leaderCrashRate: pick([0, 0, 0.002, 0.01, 0.03]),
    newLeaderCrashChance: pick([0, 0, 0.2, 0.5]),
    restartRate: pick([0.005, 0.02, 0.1]),
    partitionRate: pick([0, 0.002, 0.005, 0.01]),
    healRate: pick([0.005, 0.02, 0.05]),
    oneWayShare: pick([0, 0.3, 0.6]),
    isolateLeaderShare: pick([0, 0.5, 0.9]),
    proposeRate: pick([0.02, 0.1, 0.3]),
    snapshotRate: pick([0, 0.002, 0.01, 0.03]),
    confChangeRate: pick([0, 0, 0.002, 0.01]),
    transferRate: pick([0, 0.001, 0.005]),
    tickPeriods,
    diskLatencyMax: pick([1, 3, 10, 25]),
    eagerSend: r.chance(0.5),
    raft: {
      electionTicks: pick([8, 10, 16]),
      heartbeatTicks: pick([1, 2]),
      preVote: r.chance(0.75),
      checkQuorum: r.chance(0.75),
      inflightMsgsMax: pick([1, 4, 64]),
      appendBytesMax: pick([1, 64, 1 << 20]),
    },
    // drawn last, so that adding it left every earlier knob of a seed as it was
    appliedSurvival: pick([0, 0.5, 0.9, 1]),
    // drawn after everything else for the same reason: the memory seeds keep their histories
    wal: {
      segmentBytes: pick([4, 4, 8, 16, 64]) << 10,
      sealedMax: pick([1, 1, 2, 4]),
      recycle: r.chance(0.85),
      backgroundRate: pick([0, 0.05, 0.3, 1]),
      crashModes: pick([ALL_CRASH_MODES, ALL_CRASH_MODES, ['tear'], ['keep'], ['tear', 'sectors'], ['drop']]),
      midCommitCrash: pick([0.3, 0.7, 1]),
      flipChance: pick([0, 0.05, 0.1, 0.3]),
      fullRate: pick([0, 0, 0.0005, 0.002]),
      fullUnits: pick([50, 300, 1000]),
      writeFullChance: pick([0, 0, 0.005, 0.02]),
      eioChance: pick([0, 0, 0.0005, 0.002]),
      retryUnits: pick([5, 20, 50]),
    },
    // half the seeds run over the real WAL (drawn even when forced, so nothing else moves),
    // half of those hosted by the worker loop (drawn after it: the memory seeds stay as they were)
    storage: forced(drawStorage(r), storage),
    // drawn after the storage host, for the same reason
    harsh: drawHarsh(r, nodes, churn),
    // drawn after the harsh world, for the same reason
    quiesce: { on: forced(r.chance(0.5), quiesce), detectElections: pick([0.5, 1, 3]) },
  }
  if (!churn) return drawn
  return {
    ...drawn,
    proposeRate: 0.3,
    isolateLeaderShare: 0.9,
    partitionRate: 0.02,
    healRate: 0.01,
    leaderCrashRate: 0.02,
    restartRate: 0.05,
    raft: { ...drawn.raft, preVote: false, checkQuorum: false, appendBytesMax: 1, inflightMsgsMax: 1 },
  }
}

export function formatOptions(o: SimOptions): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
  return [
    `seed=${o.seed} profile=${o.profile} nodes=${o.nodes}(+1 spare) safetyTime=${o.safetyTime}`,
    `network: loss=${pct(o.lossRate)} dup=${pct(o.duplicateRate)} delay=1..${o.delayMax} partitions=${pct(o.partitionRate)}/unit heal=${pct(o.healRate)} oneWay=${pct(o.oneWayShare)} isolateLeader=${pct(o.isolateLeaderShare)}`,
    `nodes: crash=${pct(o.crashRate)}/unit leaderCrash=${pct(o.leaderCrashRate)}/unit newLeaderCrash=${pct(o.newLeaderCrashChance)} restart=${pct(o.restartRate)} appliedSurvives=${pct(o.appliedSurvival)} disk=1..${o.diskLatencyMax} eagerSend=${o.eagerSend} tickPeriods=[${o.tickPeriods.join(',')}]`,
    `load: propose=${pct(o.proposeRate)} snapshot=${pct(o.snapshotRate)} confChange=${pct(o.confChangeRate)} transfer=${pct(o.transferRate)}`,
    formatStorage(o),
    formatHarsh(o.harsh),
    `quiesce: ${o.quiesce.on ? `on, peers reported down after ${o.quiesce.detectElections} election timeouts of silence` : 'off'}`,
    `raft: electionTicks=${o.raft.electionTicks} heartbeatTicks=${o.raft.heartbeatTicks} preVote=${o.raft.preVote} checkQuorum=${o.raft.checkQuorum} inflight=${o.raft.inflightMsgsMax} appendBytes=${o.raft.appendBytesMax}`,
  ].join('\n')
}

/**
 * Half the seeds over the WAL (half of those through the worker loop), and a quarter of
 * the other half through the partition service (partition-sim.ts): each draw comes after
 * every other, so the seeds that stay memory, wal or worker keep their histories.
 */
function drawStorage(r: Prng): StorageMode {
  if (r.chance(0.5)) return r.chance(0.5) ? 'worker' : 'wal'
  return r.chance(0.25) ? 'partition' : 'memory'
}

/** The generator a run applies its harsher world from (both simulators: the seed's, not the options'). */
export function harshGenerator(seed: number): Prng {
  return new Prng(seed ^ 0x68e31da4)
}

/** Half the mixed seeds and every churn seed live in the harsher world, each knob on or off by itself. */
function drawHarsh(r: Prng, nodes: number, churn: boolean): HarshOptions {
  const on = r.chance(0.5) || churn
  const pick = <T>(xs: readonly T[]): T => r.pick(xs)
  const h: HarshOptions = {
    tailShare: pick([0, 0.005, 0.02, 0.05]),
    tailMax: pick([200, 1000, 4000]),
    dupTailShare: pick([0.2, 0.5, 1]),
    holdShare: pick([0, 0.3, 0.7]),
    diskTailShare: pick([0, 0, 0.05, 0.2]),
    diskTailMax: pick([60, 200, 600]),
    slowNodes: pick([[], [], [], [r.range(1, nodes)]]),
    burstChance: pick([0, 0.3, 0.6, 0.9]),
    moreChanges: pick([0, 0.005, 0.02]),
    splitAfterChange: pick([0, 0.3, 0.7]),
    crashAfterPersist: pick([0, 0.002, 0.01]),
    stallLeader: pick([0, 0.05, 0.1, 0.2]),
    pauseRate: pick([0, 0, 0.002, 0.01]),
    pauseMax: pick([50, 200, 800]),
  }
  return on ? h : CALM
}

function forced<T>(drawn: T, forcedTo: T | undefined): T {
  return forcedTo ?? drawn
}

function formatHarsh(h: HarshOptions): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
  if (h.tailShare + h.holdShare + h.diskTailShare + h.slowNodes.length + h.burstChance + h.moreChanges + h.splitAfterChange + h.stallLeader + h.pauseRate + h.crashAfterPersist === 0) return 'harsh: off'
  return `harsh: tail=${pct(h.tailShare)}(<=${h.tailMax}) dupTail=${pct(h.dupTailShare)} holdingPartitions=${pct(h.holdShare)} slowDisk=${pct(h.diskTailShare)}(<=${h.diskTailMax}) slowNodes=[${h.slowNodes.join(',')}] burst=${pct(h.burstChance)} moreChanges=${pct(h.moreChanges)}/unit splitAfterChange=${pct(h.splitAfterChange)} crashAfterPersist=${pct(h.crashAfterPersist)}/write stallLeader=${pct(h.stallLeader)}/write pause=${pct(h.pauseRate)}/unit(<=${h.pauseMax})`
}

function formatStorage(o: SimOptions): string {
  if (o.storage === 'memory') return 'storage: memory (MemoryStorage host, simulated crash model)'
  if (o.storage === 'partition') return `storage: partition (a PartitionReplica per node over the WAL and an in-memory store) segment=${o.wal.segmentBytes >> 10}KiB sealedMax=${o.wal.sealedMax}`
  const w = o.wal
  const pct = (x: number): string => `${(x * 100).toFixed(2)}%`
  return [
    `storage: ${o.storage === 'worker' ? 'worker (GroupActor in a WorkerLoop over the WAL)' : 'wal'} segment=${w.segmentBytes >> 10}KiB sealedMax=${w.sealedMax} recycle=${w.recycle} background=${pct(w.backgroundRate)}/unit`,
    `crash=[${w.crashModes.join(',')}] midCommit=${pct(w.midCommitCrash)} flip=${pct(w.flipChance)}/restart`,
    `full=${pct(w.fullRate)}/unit(<=${w.fullUnits}) writeFull=${pct(w.writeFullChance)}/commit eio=${pct(w.eioChance)}/commit retry=${w.retryUnits}`,
  ].join(' ')
}
