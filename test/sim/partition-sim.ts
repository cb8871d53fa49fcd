/**
 * The `partition` storage mode (options.ts): each node hosts one partition the
 * production way — a PartitionReplica (src/replica) over a HostedGroup, inside the real
 * GroupRuntime (WorkerLoop + LogEngine + WAL over a MemoryWalFs, with retirement), its
 * partition store a MemoryStoreDisk (src/storage/memory-store.ts) — with the
 * simulator's clock, timers and scheduler injected (HostOptions, PartitionHostOptions).
 * Every start, the first included, is production's: recoverWals (src/storage/recovery.ts)
 * replays the previous generations of the node's WAL into its store, GroupRuntime.open
 * writes the next generation, PartitionReplica.open checks the store against what the
 * WAL vouched for, and the old generations are removed.
 *
 * Faults: message loss, duplication and delay, partitions, crashes (the WAL's unsynced
 * writes dropped, torn or kept; the store keeps its synced state plus a random prefix of
 * its unsynced flushes, as LevelDB's sequential log would) and restarts.
 *
 * Clients produce record batches (1–4 records, each batch's content unique, so its
 * CRC-32C names it) through PartitionReplica.produce at a random node: a node that does
 * not lead must answer NOT_LEADER. The checker (besides the Raft Checker: election
 * safety, leader completeness, state machine safety over the applied entries, log
 * matching of the durable logs) holds the partition service to its promises:
 *   - an acknowledged batch is fetchable at the offsets it was acknowledged with, on
 *     every node whose high watermark covers it, exactly once, in offset order, with
 *     dense offsets, across crashes and restarts, and one offset never holds two
 *     different batches on two nodes;
 *   - a fetch below the high watermark never answers an empty page or an error;
 *   - a crash alone never makes a node refuse to start;
 *   - at the end (faults healed) a leader acknowledges fresh batches and every node
 *     serves every acknowledged batch.
 *
 * Snapshots: half of the seeds (drawn from a generator of their own, so a seed's other
 * draws are as they were) keep a small log view (VIEW_ENTRIES_MAX_SMALL), so a follower
 * back from a crash or a partition is often behind the leader's log and catches up by a
 * partition snapshot (src/replica/snapshot-*.ts), crashes and lost messages included,
 * with the transfers' timeouts scaled to the simulator's time; the others keep every
 * applied entry. A node that installed one is held to the same checks as any other (what
 * it serves after is what was acknowledged, byte for byte, at the same offsets); its
 * applied history resumes at the snapshot's index (`partitionSnapshotsInstalled`). No
 * disk-full or EIO faults, no membership changes, no leadership transfers here.
 *
 * Time: one unit is one millisecond of the injected clock.
 */
import { Prng } from '../../src/base/index.js'
import { EntryType, MessageType } from '../../src/raft/index.js'
import type { Entry, NodeId } from '../../src/raft/index.js'
import type { ActorLogger } from '../../src/group/index.js'
import { MemoryStoreDisk, MemoryWalFs, recoverWals, removeGenerations } from '../../src/storage/index.js'
import { GroupRuntime, PartitionReplica, TransferSlots } from '../../src/replica/index.js'
import type { PartitionHostOptions, ReplicaClock, ReplicaSpec } from '../../src/replica/index.js'
import { encodeRecordBatch, readBatchHeader } from '../../src/protocol/record-batch.js'
import { Checker, Violation, violationOf } from './checker.js'
import { formatMessage } from './simulator.js'
import { SimNetwork, healedFaults, networkFaults } from './network.js'
import { harshGenerator } from './options.js'
import type { SimOptions } from './options.js'
import type { SimConfig, SimResult, SimStats } from './simulator.js'
import { HASH_SEED, hashStep } from './state-machine.js'
import { SimFailureDetector } from './failure-detector.js'

const GROUP = 7
const WAL_ROOT = '/wal'
const groupDir = (g: number): string => `/groups/${g}`
/** Units after the safety phase for a leader and fresh acknowledgements, then for every node to catch up. */
const LIVENESS_UNITS = 20_000
/** The small log view of the seeds that exercise snapshots: a few election timeouts' worth of entries. */
const VIEW_ENTRIES_MAX_SMALL = [8, 24, 64] as const
/** Snapshot transfer times in simulator units (about 10-40 heartbeats, and a few election timeouts). */
const SNAPSHOT_TIMING = { requestRetryMs: 60, idleTimeoutMs: 1_500 }

interface Acked {
  readonly crc: number
  readonly baseOffset: number
  readonly count: number
}

interface Timer {
  readonly at: number
  readonly fn: () => void
  cancelled: boolean
}

class PNode {
  readonly id: NodeId
  tickPeriod: number
  nextTick = 0
  walFs = new MemoryWalFs({ async: 'immediate' })
  stores = new MemoryStoreDisk()
  replica: PartitionReplica | null = null
  runtime: GroupRuntime | null = null
  /** Bumped at every crash: what an older incarnation queued does nothing. */
  epoch = 0
  immediates: (() => void)[] = []
  timers: Timer[] = []
  /** The hash of the applied history at each index this node applied (its own). */
  hashes: number[] = [HASH_SEED]
  checkedApplied = 0
  /** What the replica applied and installed since the checker last looked, in order. */
  events: ({ readonly e: Entry } | { readonly installed: number })[] = []
  /** Where this incarnation counts its snapshot transfers (each simulated node is its own process). */
  slots = new TransferSlots()
  /** Lost for good (refused to start): reported as a violation at once. */
  down = false

  constructor(id: NodeId, tickPeriod: number) {
    this.id = id
    this.tickPeriod = tickPeriod
  }
}

/** The batch's identity: its CRC-32C (which does not cover baseOffset). */
function crcOf(batch: Uint8Array): number {
  return new DataView(batch.buffer, batch.byteOffset + 17, 4).getUint32(0, false)
}

/** An entry's key for the applied-history hash: a produce command's batch CRC, else 0 / -1. */
function entryKeyOf(e: Entry): number {
  if (e.type !== EntryType.Normal) return -1
  // a produce command: [0x04][flags][RecordBatch]
  if (e.data.length >= 2 + 21 && e.data[0] === 0x04) return crcOf(e.data.subarray(2))
  return e.data.length
}

const quiet: ActorLogger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} }

/** The snapshot transfers' log lines the statistics count (snapshot-receiver.ts, hosted-group.ts). */
const COUNTED: readonly (readonly [RegExp, 'partitionTransfersAborted' | 'partitionTransfersStarted' | 'partitionPendingSnapshotsDropped'])[] = [
  [/^catching up by snapshot: transfer aborted/, 'partitionTransfersAborted'],
  [/^catching up by snapshot: transfer started/, 'partitionTransfersStarted'],
  [/^dropped a received snapshot the crash kept/, 'partitionPendingSnapshotsDropped'],
]

export class PartitionSimulation {
  readonly opts: SimOptions
  readonly #cfg: SimConfig
  readonly #prng: Prng
  readonly #net: SimNetwork
  readonly #checker = new Checker()
  readonly #nodes = new Map<NodeId, PNode>()
  readonly #trace: string[] = []
  readonly #acked = new Map<number, Acked>()
  /** Offset -> the CRC of the batch some node served there (every node must agree). */
  readonly #servedAt = new Map<number, number>()
  #now = 0
  #batchSeq = 0
  readonly stats: SimStats
  /** Quiescence seeds: the peer transport's failure detector (null: quiescence off). */
  readonly #detector: SimFailureDetector | null
  /** Applied entries each replica's log view keeps (small: snapshots happen). */
  readonly viewEntriesMax: number

  constructor(cfg: SimConfig, opts: SimOptions, stats: SimStats) {
    this.#cfg = cfg
    this.opts = opts
    this.stats = stats
    this.stats.partitionRuns = 1
    this.#prng = new Prng(cfg.seed ^ 0x6c8e9cf5)
    this.#net = new SimNetwork(this.#prng.fork(), harshGenerator(cfg.seed), networkFaults(opts))
    this.#detector = SimFailureDetector.forOptions(opts)
    if (this.#detector) this.stats.quiesceRuns = 1
    const view = new Prng(cfg.seed ^ 0x1d5a_e3b7)
    this.viewEntriesMax = view.chance(0.5) ? view.pick(VIEW_ENTRIES_MAX_SMALL) : Number.MAX_SAFE_INTEGER
    for (let id = 1; id <= cfg.nodes; id++) {
      const n = new PNode(id, opts.tickPeriods[id - 1]!)
      n.nextTick = this.#prng.range(0, n.tickPeriod)
      this.#nodes.set(id, n)
    }
  }

  /** A replica's logger: quiet, but counting what the statistics show, and traced. */
  #logger(n: PNode): ActorLogger {
    const line = (level: string) => (obj: object, msg: string): void => {
      for (const [re, key] of COUNTED) if (re.test(msg)) this.stats[key]++
      if (this.#cfg.trace && (level !== 'debug' || /snapshot/.test(msg))) this.#log(() => `n${n.id} ${level}: ${msg} ${JSON.stringify(obj)}`)
    }
    return { info: line('info'), warn: line('warn'), error: line('error'), debug: line('debug') }
  }

  #log(line: () => string): void {
    if (this.#cfg.trace) this.#trace.push(`t=${this.#now} ${line()}`)
  }

  #voters(): NodeId[] {
    return [...this.#nodes.keys()]
  }

  // ---- hosting -----------------------------------------------------------------------

  #clock(n: PNode): ReplicaClock {
    const epoch = n.epoch
    return {
      now: () => this.#now,
      after: (ms, fn) => {
        const t: Timer = { at: this.#now + Math.max(1, Math.ceil(ms)), fn, cancelled: false }
        if (n.epoch === epoch) n.timers.push(t)
        return () => (t.cancelled = true)
      },
    }
  }

  /** Production's start: recovery into the store, a new WAL generation, the replica opened, old generations removed. */
  async #start(n: PNode): Promise<void> {
    const epoch = n.epoch
    const recovered = await recoverWals({ fs: n.walFs, walRoot: WAL_ROOT, groupDir, log: quiet, openStore: n.stores.open })
    if (!recovered.ok) throw new Violation('durability', `n${n.id} refused to start after a crash: ${recovered.error.code}: ${recovered.error.message}`)
    const report = recovered.value
    this.stats.partitionSnapshotsRecovered += report.snapshotsInstalled
    const clock = this.#clock(n)
    const runtime = GroupRuntime.open({
      fs: n.walFs,
      walDir: `${WAL_ROOT}/${report.nextGeneration}/w0`,
      log: quiet,
      segmentBytes: this.opts.wal.segmentBytes,
      sealedSegmentsMax: this.opts.wal.sealedMax,
      schedule: (fn) => {
        if (n.epoch === epoch) n.immediates.push(fn)
      },
      after: (ms, fn) => void clock.after(ms, fn),
    })
    if (!runtime.ok) throw new Violation('durability', `n${n.id} cannot open its WAL: ${runtime.error.message}`)
    const expect = report.expect.get(GROUP)
    const spec: ReplicaSpec = {
      groupId: GROUP,
      dir: groupDir(GROUP),
      nodeId: n.id,
      voters: this.#voters(),
      topic: 'sim',
      partition: 0,
      retentionMs: null,
      retentionBytes: null,
      electionTicks: this.opts.raft.electionTicks,
      ...(expect === undefined ? {} : { expectApplied: expect }),
    }
    const host: PartitionHostOptions = {
      openStore: n.stores.open,
      clock,
      raft: { unsafe: this.#cfg.unsafe, ...this.opts.raft, quiesce: this.opts.quiesce.on },
      sendToPeers: (msgs) => {
        if (n.epoch !== epoch) return
        for (const m of msgs) this.#net.send(this.#now, m)
      },
      viewEntriesMax: this.viewEntriesMax,
      snapshotTiming: SNAPSHOT_TIMING,
      snapshotSlots: n.slots,
      observe: {
        applied: (e) => {
          if (n.epoch === epoch) n.events.push({ e })
        },
        installed: (index) => {
          if (n.epoch === epoch) n.events.push({ installed: index })
        },
      },
      // transfers are the simulator's to schedule (its faults include them); one a replica
      // started itself just before the run's end would keep a caught-up node from serving
      preferredLeader: false,
      ...(this.#cfg.partitionUnsafe ? { unsafe: this.#cfg.partitionUnsafe } : {}),
    }
    const opened = await PartitionReplica.open(spec, runtime.value, this.#logger(n), this.#prng.fork(), host)
    if (!opened.ok) throw new Violation('durability', `n${n.id} refused to start: ${opened.error.code}: ${opened.error.message}`)
    const removed = removeGenerations(n.walFs, WAL_ROOT, report.generations)
    if (!removed.ok) throw new Violation('durability', `n${n.id} cannot remove its old WAL generations: ${removed.error.message}`)
    n.runtime = runtime.value
    n.replica = opened.value
    const applied = opened.value.actor.appliedIndex
    const hash = n.hashes[applied]
    if (hash === undefined) throw new Violation('state machine safety', `n${n.id} restarted at applied ${applied}, beyond what it had applied (${n.hashes.length - 1})`)
    n.hashes.length = applied + 1
    n.checkedApplied = applied
    this.#checker.resumed(n.id, applied, hash)
    this.#log(() => `n${n.id} view ${opened.value.view.firstIndex()}..${opened.value.view.lastIndex()} hs ${JSON.stringify(opened.value.view.hardState())}`)
    this.#log(() => `n${n.id} START applied ${applied} (recovered ${report.records} WAL records, generations ${report.generations.join(',') || 'none'}), offsets ${JSON.stringify(opened.value.offsets())}`)
  }

  /** Quiescence seeds: what the peer transport's pings would tell each node this unit. */
  #detect(d: SimFailureDetector): void {
    d.observe(
      this.#now,
      this.#voters(),
      (id) => this.#nodes.get(id)!.replica !== null,
      (observer, peer) => !this.#net.linkBlocked(peer, observer),
      (observer, peer) => {
        this.stats.peerDownReports++
        this.#log(() => `n${observer} sees n${peer} DOWN`)
        this.#nodes.get(observer)!.replica!.peerDown(peer)
      },
    )
    for (const n of this.#nodes.values()) if (n.replica?.actor.node.quiet) this.stats.quietUnits++
  }

  #crash(n: PNode): void {
    if (!n.replica) return
    this.#detector?.forget(n.id)
    const v = n.replica.view
    this.#log(() => `n${n.id} before crash: view ${v.firstIndex()}..${v.lastIndex()} hs ${JSON.stringify(v.hardState())} applied ${n.replica!.actor.appliedIndex}`)
    this.stats.crashes++
    // what it applied before the crash was applied: its store may hold it at the restart
    this.#checkApplied(n)
    n.epoch++
    n.slots = new TransferSlots()
    n.replica = null
    n.runtime = null
    n.immediates = []
    n.timers = []
    const modes = ['drop', 'tear', 'keep'] as const
    const mode = modes[this.#prng.int(modes.length)]!
    n.walFs = n.walFs.crash({ unsynced: mode, prng: this.#prng.fork() })
    const kept: number[] = []
    n.stores = n.stores.crash((_dir, unsynced) => {
      const k = this.#prng.int(unsynced + 1)
      kept.push(k, unsynced)
      return k
    })
    this.#log(() => `n${n.id} CRASH (WAL unsynced: ${mode}; store kept ${kept[0] ?? 0} of ${kept[1] ?? 0} unsynced flushes)`)
  }

  // ---- one time unit -----------------------------------------------------------------

  #deliver(): void {
    for (const m of this.#net.take(this.#now)) {
      const n = this.#nodes.get(m.to)
      if (!n?.replica) continue
      this.stats.messages++
      if (this.#cfg.trace && m.type === MessageType.Snap) this.#log(() => `deliver snapshot transfer n${m.from} -> n${m.to} at ${m.snapshot?.metadata.index} (${m.snapshot?.data.length} bytes)`)
      if (this.#cfg.trace && m.type !== MessageType.Snap && m.type !== MessageType.App && m.type !== MessageType.AppResp && m.type !== MessageType.Heartbeat && m.type !== MessageType.HeartbeatResp) this.#log(() => `deliver ${formatMessage(m)}`)
      n.replica.step(m)
    }
  }

  #runThreads(): void {
    for (const n of this.#nodes.values()) {
      if (!n.replica) continue
      const epoch = n.epoch
      if (this.#now >= n.nextTick) {
        n.nextTick = this.#now + n.tickPeriod
        n.replica.tick()
      }
      const due = n.timers.filter((t) => t.at <= this.#now)
      if (due.length > 0) {
        n.timers = n.timers.filter((t) => t.at > this.#now)
        for (const t of due) if (!t.cancelled && n.epoch === epoch) t.fn()
      }
      const queued = n.immediates
      n.immediates = []
      for (const fn of queued) if (n.epoch === epoch) fn()
    }
  }

  /** Raft safety over what the nodes did this unit. */
  #checkRaft(): void {
    for (const n of this.#nodes.values()) {
      const r = n.replica
      if (!r) continue
      const node = r.actor.node
      if (node.isLeader()) {
        this.#checker.leader(node)
        this.stats.maxTerm = Math.max(this.stats.maxTerm, node.term)
      }
      this.#checkApplied(n)
    }
    if (this.#now % 50 === 0) {
      const up = [...this.#nodes.values()].filter((n) => n.replica)
      for (let i = 0; i < up.length; i++) {
        for (let j = i + 1; j < up.length; j++) this.#checker.logsMatch(up[i]!.id, up[i]!.replica!.view, up[j]!.id, up[j]!.replica!.view)
      }
    }
  }

  /**
   * What node `n` applied since the last look, entry by entry (the log view may have
   * dropped them already: a small view compacts at once), and the snapshots it installed:
   * there its applied history resumes at the snapshot's index (what the state holds is
   * checked by what it serves, #checkFetch).
   */
  #checkApplied(n: PNode): void {
    const events = n.events
    n.events = []
    for (const ev of events) {
      if ('e' in ev) {
        const e = ev.e
        const h = hashStep(n.hashes[e.index - 1]!, entryKeyOf(e))
        n.hashes[e.index] = h
        this.#checker.applied(n.id, e, h)
        n.checkedApplied = e.index
        continue
      }
      const at = ev.installed
      const hash = this.#checker.prefixHashAt(at)
      if (hash === undefined) throw new Violation('state machine safety', `n${n.id} installed a snapshot at ${at}, beyond anything applied (${this.#checker.maxCommitted})`)
      this.#checker.installedSnapshot(n.id, at, hash)
      for (let i = n.hashes.length; i < at; i++) n.hashes[i] = this.#checker.prefixHashAt(i)!
      n.hashes[at] = hash
      n.checkedApplied = at
      this.stats.partitionSnapshotsInstalled++
      this.#log(() => `n${n.id} INSTALLED a snapshot at ${at}`)
    }
  }

  #produce(n: PNode): void {
    const r = n.replica!
    const seq = ++this.#batchSeq
    const count = 1 + this.#prng.int(4)
    const records = Array.from({ length: count }, (_, i) => ({ key: `k${seq}`, value: `batch ${seq} record ${i} of seed ${this.#cfg.seed}`, timestamp: 1_700_000_000_000 + this.#now }))
    const batch = encodeRecordBatch(records)
    const crc = crcOf(batch)
    const leading = r.actor.isLeader()
    const epoch = n.epoch
    this.stats.proposed++
    this.#log(() => `client -> n${n.id} produce #${seq} (${count} records, crc ${crc.toString(16)})${leading ? '' : ' to a follower'}`)
    void r.produce(batch, false).then((out) => {
      if (!leading) {
        if (out.ok || out.error.code !== 'NOT_LEADER') throw new Violation('partition', `n${n.id} does not lead, yet answered produce #${seq} with ${JSON.stringify(out)}`)
        return
      }
      if (!out.ok) {
        this.#log(() => `n${n.id} produce #${seq} failed: ${out.error.code}`)
        return
      }
      const s = out.summary
      if (s.baseOffset === undefined || (s.errors?.length ?? 0) > 0 || s.count !== count) {
        throw new Violation('partition', `produce #${seq} on n${n.id} answered ${JSON.stringify(s)}`)
      }
      if (n.epoch !== epoch) return // the node crashed: its answer never left
      this.#acked.set(crc, { crc, baseOffset: s.baseOffset, count })
      this.stats.partitionAcked++
      this.stats.acked++
      this.#log(() => `n${n.id} ACK produce #${seq} at offsets ${s.baseOffset}..${s.baseOffset! + count - 1}`)
    }).catch((err: unknown) => {
      this.#failure ??= err
    })
  }

  #failure: unknown = null

  /** Everything node `n` serves, read back through fetch, against what was acknowledged. */
  async #checkFetch(n: PNode, complete: boolean): Promise<void> {
    const r = n.replica
    if (!r) return
    this.stats.partitionFetchChecks++
    const { highWatermark, logStartOffset } = r.offsets()
    const seen = new Set<number>()
    let offset = logStartOffset
    while (offset < highWatermark) {
      const page = await r.fetch(offset, 1 << 16, 1000, 0)
      if (!page.ok) throw new Violation('partition', `n${n.id}: fetch at ${offset} below the high watermark ${highWatermark} failed: ${page.error.code}: ${page.error.message}`)
      if (page.batches.length === 0) throw new Violation('partition', `n${n.id}: fetch at ${offset} below the high watermark ${highWatermark} answered an empty page`)
      for (const b of page.batches) {
        const h = readBatchHeader(b)
        if (!h.ok) throw new Violation('partition', `n${n.id}: the batch served at ${offset} is unreadable: ${h.error.message}`)
        const base = h.value.baseOffset
        if (base !== offset) throw new Violation('partition', `n${n.id}: fetch served a batch at ${base} where offset ${offset} was next (offsets not dense or not in order)`)
        const crc = crcOf(b)
        if (seen.has(crc)) throw new Violation('partition', `n${n.id} serves batch ${crc.toString(16)} twice (again at ${base})`)
        seen.add(crc)
        const a = this.#acked.get(crc)
        if (a && a.baseOffset !== base) throw new Violation('partition', `n${n.id} serves batch ${crc.toString(16)} at ${base}, acknowledged at ${a.baseOffset}`)
        const other = this.#servedAt.get(base)
        if (other !== undefined && other !== crc) throw new Violation('partition', `n${n.id} serves batch ${crc.toString(16)} at offset ${base}, another node served ${other.toString(16)} there`)
        this.#servedAt.set(base, crc)
        offset = base + h.value.recordCount
      }
    }
    if (offset !== highWatermark) throw new Violation('partition', `n${n.id}: its batches end at ${offset}, its high watermark is ${highWatermark}`)
    for (const a of this.#acked.values()) {
      if (a.baseOffset + a.count <= highWatermark && !seen.has(a.crc)) {
        throw new Violation('partition', `n${n.id} (high watermark ${highWatermark}) does not serve batch ${a.crc.toString(16)} acknowledged at ${a.baseOffset}`)
      }
      if (complete && a.baseOffset + a.count > highWatermark) {
        throw new Violation('partition', `n${n.id} ends at ${highWatermark} at the end of the run, but a batch was acknowledged at ${a.baseOffset}..${a.baseOffset + a.count - 1}`)
      }
    }
    this.#log(() => `n${n.id} FETCH CHECK ok: ${seen.size} batches up to ${highWatermark}`)
  }

  async #unit(faults: boolean, produce = true): Promise<void> {
    const o = this.opts
    const p = this.#prng
    if (faults) {
      for (const n of this.#nodes.values()) {
        if (n.replica && (p.chance(o.crashRate) || (n.replica.actor.isLeader() && p.chance(o.leaderCrashRate)))) this.#crash(n)
        else if (!n.replica && p.chance(o.restartRate)) await this.#start(n)
      }
      if (!this.#net.isPartitioned() && p.chance(o.partitionRate)) {
        const ids = this.#voters()
        const k = 1 + p.int(ids.length - 1)
        const shuffled = ids.map((id) => ({ id, r: p.float() })).sort((a, b) => a.r - b.r).map((x) => x.id)
        this.#net.partition(shuffled.slice(0, k), shuffled.slice(k), p.chance(o.oneWayShare))
        this.stats.partitions++
        this.#log(() => `PARTITION ${shuffled.slice(0, k).join(',')} | ${shuffled.slice(k).join(',')}`)
      } else if (this.#net.isPartitioned() && p.chance(o.healRate)) {
        this.#net.heal(this.#now)
        this.#log(() => 'HEAL')
      }
    }
    this.#deliver()
    this.#runThreads()
    if (this.#detector) this.#detect(this.#detector)
    if (produce && p.chance(o.proposeRate)) {
      const up = [...this.#nodes.values()].filter((n) => n.replica)
      // mostly to the leader, as a client that followed NOT_LEADER's hint would
      const leader = up.find((n) => n.replica!.actor.isLeader())
      const to = leader && p.chance(0.8) ? leader : up.length > 0 ? up[p.int(up.length)] : undefined
      if (to) this.#produce(to)
    }
    await settle()
    if (this.#failure !== null) throw this.#failure
    this.#checkRaft()
    if (this.#now % 100 === 0) {
      const up = [...this.#nodes.values()].filter((n) => n.replica)
      if (up.length > 0) await this.#checkFetch(up[p.int(up.length)]!, false)
    }
  }

  async run(): Promise<SimResult> {
    let violation: SimResult['violation'] = null
    try {
      for (const n of this.#nodes.values()) await this.#start(n)
      for (; this.#now < this.opts.safetyTime; this.#now++) await this.#unit(true)
      await this.#liveness()
    } catch (err) {
      violation = violationOf(err, this.#now, (line) => this.#log(line))
    }
    this.stats.time = this.#now
    this.stats.committedIndex = this.#checker.maxCommitted
    this.stats.leaders = this.#checker.leadersSeen
    return { seed: this.#cfg.seed, options: this.opts, ok: violation === null, violation, stats: this.stats, trace: this.#trace }
  }

  /** Faults healed: every node up, a leader, fresh batches acknowledged, every node serving all of them. */
  async #liveness(): Promise<void> {
    // as the main simulator's liveness phase: clocks even, short delays (an uneven clock
    // with pre-vote off lets a stale node's vote requests keep resetting everyone else's
    // election timer, etcd's known hazard; that is not what this phase is about)
    this.#net.heal(this.#now)
    this.#net.faults = healedFaults(this.opts)
    const delayMax = this.#net.faults.delayMax
    const period = Math.max(...this.opts.tickPeriods)
    for (const n of this.#nodes.values()) n.tickPeriod = period
    this.#log(() => 'LIVENESS: faults healed, clocks even')
    for (const n of this.#nodes.values()) if (!n.replica) await this.#start(n)
    const start = this.#now
    // plus the time a pipeline of one entry per round trip needs for the backlog
    const lastMax = (): number => Math.max(0, ...[...this.#nodes.values()].map((n) => n.replica?.actor.node.lastIndex ?? 0))
    let end = start + LIVENESS_UNITS + lastMax() * 2 * (delayMax + 1)
    const ackedBefore = this.#acked.size
    for (; this.#now < end; this.#now++) {
      end = Math.max(end, start + LIVENESS_UNITS + lastMax() * 2 * (delayMax + 1))
      // fresh batches until three are acknowledged, then quiet, for everyone to catch up
      await this.#unit(false, this.#acked.size < ackedBefore + 3)
      if (this.#acked.size < ackedBefore + 3) continue
      const leader = [...this.#nodes.values()].find((n) => n.replica?.actor.isLeader())
      if (!leader) continue
      const hw = leader.replica!.offsets().highWatermark
      if ([...this.#nodes.values()].every((n) => n.replica!.offsets().highWatermark >= hw)) {
        for (const n of this.#nodes.values()) await this.#checkFetch(n, true)
        return
      }
    }
    const states = [...this.#nodes.values()].map((n) => {
      const node = n.replica?.actor.node
      return node ? `n${n.id} t${node.term} ${node.isLeader() ? 'leader' : `leader=${node.leader}`} last ${node.lastIndex} commit ${node.commit} applied ${n.replica!.actor.appliedIndex}${n.replica!.report().behind ? ' catching up by snapshot' : ''}${n.replica!.actor.stopped ? ' STOPPED' : ''}` : `n${n.id} down`
    })
    throw new Violation('liveness', `[${states.join('; ')}] no fresh batch acknowledged everywhere within ${LIVENESS_UNITS} units after healing (acknowledged ${this.#acked.size - ackedBefore} fresh)`)
  }
}

export function runPartitionSimulation(cfg: SimConfig, opts: SimOptions, stats: SimStats): Promise<SimResult> {
  return new PartitionSimulation(cfg, opts, stats).run()
}

/** Lets what the units resolved run (microtasks only: the run never yields to timers or I/O). */
async function settle(): Promise<void> {
  for (let i = 0; i < 32; i++) await null
}
