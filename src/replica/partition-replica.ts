/**
 * PartitionReplica: one partition's Raft group replica inside a worker — a GroupActor
 * driven by the worker's Ready loop, applying to a PartitionStateMachine whose records go
 * into the group's own partition store (LevelDB) — and the produce, fetch and retention
 * service around it.
 *
 * Produce: the batch's fixed header and CRC-32C are checked here (never on the main
 * thread), and then its records are walked (decompressed first if need be; a large
 * compressed batch arrives already walked by the codec pool): the CRC proves only that
 * the bytes are the ones the producer sent, not that they are well-formed records, and a
 * batch stored with a malformed record could never be read back. Oversized records
 * reject the whole batch when it is atomic or idempotent; otherwise the good records are
 * re-framed into a new batch and proposed, and the refused records' positions are merged
 * back into the answer: a summary `{ count, baseOffset, errors }`. One request is one
 * proposal of one entry; requests that arrive during a disk sync share the next turn's
 * write (group commit in WorkerLoop, across every group of the worker). The entry is the
 * batch and `atomic` (src/partition/commands.ts): apply reads the record count, producer
 * fields and maxTimestamp from the batch header itself, so the header is parsed once here
 * (checkBatch) and once per apply, and a re-framed batch is applied with its own.
 *
 * Durability: an acknowledged entry is in the worker's WAL, synced. Apply then stamps
 * the batch's baseOffset in place (it lies outside the CRC) and stages it into the
 * partition store, written without sync after each applied run; until that write lands,
 * and for a while after (a bounded cache of recent batches), fetch serves it from memory.
 * The state machine's own state goes to the store at each checkpoint (WAL retirement)
 * and at close; after a crash it is rebuilt by re-applying the log from there.
 *
 * Reads fail loudly: a stored batch whose CRC or offset does not match, or a batch
 * missing below the high watermark, is STORAGE_CORRUPT with the partition and offset
 * (logged), never an empty page.
 *
 * Housekeeping, on the leader, when the host asks: retention (a `cleanup` command) and
 * idempotent producer expiry (an `expire` command); apply has no clock, so the leader's
 * clock goes into the command.
 *
 * A host may inject (`PartitionHostOptions`, defaults production's) the group's store,
 * clock and timers, Raft options and peer transport (HostOptions, hosted-group.ts) and
 * how many applied entries the log view keeps (`viewEntriesMax`).
 *
 * Catch-up by snapshot: a follower further behind than the leader's log view keeps is
 * not sent the core's snapshot (the view's, metadata only: it carries no records) but a
 * partition snapshot — the state machine as of the leader's applied index and the records
 * it retains — which it pulls in bounded chunks over the group's own Raft messages and
 * installs only once it holds all of it (snapshot-sender.ts, snapshot-receiver.ts,
 * snapshot-wire.ts). Until then it serves from, and stays, what it was.
 *
 * Imports base, raft, protocol, storage, partition, group and ./ modules.
 */
import { assert, fail, limits, ok } from '../base/index.js'
import type { Prng, Result } from '../base/index.js'
import { EntryType, MessageType, decodeConfChange } from '../raft/index.js'
import type { Entry, MemoryStorage, Message, Snapshot } from '../raft/index.js'
import { checkBatch, recordSizes, reframe, setBaseOffset } from '../protocol/record-batch.js'
import { checkStored } from './stored-check.js'
import { wireError } from '../protocol/errors.js'
import type { WireError } from '../protocol/errors.js'
import type { GroupReport } from '../protocol/api.js'
import { PartitionStateMachine, batchFactsProblem, batchOf, encodeCleanup, encodeExpire, encodeProduce } from '../partition/index.js'
import type { ApplyResult, StoredBatch } from '../partition/index.js'
import type { GroupActor } from '../group/index.js'
import type { ActorLogger } from '../group/index.js'
import type { GroupRuntime } from './group-runtime.js'
import type { ReplicaClock } from './clock.js'
import { proposeError } from './errors.js'
import { HostedGroup } from './hosted-group.js'
import type { HostOptions, HostedGroupError } from './hosted-group.js'
import { RecentBatches } from './recent-batches.js'
import { PartitionMove } from './partition-move.js'
import type { ProduceSummary, ReplicaAssignment, WireErrorLike } from './worker-messages.js'
import { decodeTransferItem } from './snapshot-wire.js'
import { SnapshotSender } from './snapshot-sender.js'
import type { ChunkReadError, SnapshotCapture, TransferSlots, TransferTiming } from './snapshot-sender.js'
import { SnapshotReceiver } from './snapshot-receiver.js'

export interface ReplicaSpec {
  readonly groupId: number
  readonly dir: string
  readonly nodeId: number
  readonly voters: readonly number[]
  readonly topic: string
  readonly partition: number
  readonly retentionMs: number | null
  readonly retentionBytes: number | null
  readonly electionTicks: number
  /** The applied index recovery says this group's store was synced at (undefined: a group the WAL never saw). */
  readonly expectApplied?: number
  /**
   * This replica is the partition's preferred leader: a new group (empty log) campaigns at
   * once instead of waiting out an election timeout, so a topic is writable soon after its
   * creation and leaders spread as the assignment spread the preferred replicas.
   */
  readonly campaign?: boolean
}

export type ProduceOutcome = { readonly ok: true; readonly summary: ProduceSummary } | { readonly ok: false; readonly error: WireErrorLike }

export type FetchOutcome =
  | { readonly ok: true; readonly batches: Uint8Array[]; readonly highWatermark: number; readonly logStartOffset: number }
  | { readonly ok: false; readonly error: WireErrorLike }

/** What a host injects into a partition replica (every field defaults to production's). */
export interface PartitionHostOptions extends HostOptions {
  /** Applied entries the in-memory log view may hold before it compacts (default: VIEW_KEEP, or VIEW_KEEP_PEERS for a group with peers). */
  readonly viewEntriesMax?: number
  /** Snapshot transfers' stall and retry times (default: limits.snapshot; the simulator's time runs faster). */
  readonly snapshotTiming?: TransferTiming
  /** Told of every entry applied and every snapshot installed, in order (the simulator's checker). */
  readonly observe?: { readonly applied: (e: Entry) => void; readonly installed: (index: number) => void }
  /** Where the transfers under way are counted (default: the thread's; the simulator gives each node its own). */
  readonly snapshotSlots?: TransferSlots
  /** False: a leader never hands leadership back to the preferred replica by itself (the simulator drives its own transfers). */
  readonly preferredLeader?: boolean
  /** Told the group's configuration whenever a replica applies a change of it, and by a leader that finished a move (partition-move.ts). */
  readonly onConf?: (index: number, voters: readonly number[]) => void
}

interface Waiter {
  readonly offset: number
  readonly wake: () => void
}

/** How long opening a single-voter replica waits for it to elect itself. */
const OPEN_LEADER_WAIT_MS = 5_000
/** What a lone voter's in-memory log view keeps behind the applied index: nobody is fed from it. */
const VIEW_KEEP = { entries: 256, bytes: Infinity }
/**
 * What a replica with peers keeps: a follower that fell behind by less (a restart, a
 * pause) catches up from the log; one further behind is sent a partition snapshot (see
 * `step`), which costs the whole retained partition. Every replica keeps it, since any
 * may lead.
 */
const VIEW_KEEP_PEERS = { entries: 1_000_000, bytes: 64 << 20 }
/** Entries the preferred replica may lack when leadership is handed back to it. */
const TRANSFER_LAG_MAX = 64
/** A failed transfer's retry waits an election timeout, doubling up to 64 of them. */
const TRANSFER_BACKOFF_DOUBLINGS = 6
/** How often a replica that drops what it cannot read as a snapshot transfer item says so. */
const SNAPSHOT_LOG_MS = 10_000
/** How often a store write refused for a full disk is tried again. */
const STORE_RETRY_MS = 500

export class PartitionReplica {
  readonly spec: ReplicaSpec
  readonly #group: HostedGroup<ApplyResult>
  readonly #actor: GroupActor<ApplyResult>
  #sm: PartitionStateMachine
  readonly #sender: SnapshotSender
  readonly #receiver: SnapshotReceiver
  /** Sends Raft messages to peers as the host said (none: a lone voter). */
  readonly #toPeers: (msgs: readonly Message[]) => void
  readonly #log: ActorLogger
  readonly #clock: ReplicaClock
  /** The host's bound on the log view's entries, if it set one (else VIEW_KEEP or VIEW_KEEP_PEERS, by the group's voters now). */
  readonly #viewEntriesSet: number | null
  readonly #move: PartitionMove
  /** The topic's retention: the spec's at open, then what the metadata says (assign). */
  #retention: { readonly retentionMs: number | null; readonly retentionBytes: number | null }
  readonly #waiters = new Set<Waiter>()
  readonly #recent = new RecentBatches(limits.storage.recentBatchBytesMax)
  /** Ticks as leader with another preferred replica, and the last of them at which it had answered. */
  #ticks = 0
  #preferredSeenAt = -Infinity
  /** Transfers to the preferred replica tried since this replica last stopped leading, and when the next may go. */
  #transfersTried = 0
  #nextTransferAt = 0
  readonly #preferredOff: boolean
  readonly #observe: PartitionHostOptions['observe']
  /** Records staged to the store end before this offset. */
  #stagedOffset = 0
  #flushing: Promise<void> | null = null
  #flushAgain = false
  #storeError: WireError | null = null
  #closed = false
  /** Cancels the pending retry of a store write the full disk refused. */
  #retry: (() => void) | undefined

  private constructor(spec: ReplicaSpec, group: HostedGroup<ApplyResult>, sm: PartitionStateMachine, log: ActorLogger, host: PartitionHostOptions) {
    this.spec = spec
    this.#group = group
    this.#actor = group.actor
    this.#sm = sm
    this.#log = log
    this.#clock = group.clock
    this.#preferredOff = host.preferredLeader === false
    this.#viewEntriesSet = host.viewEntriesMax ?? null
    this.#retention = { retentionMs: spec.retentionMs, retentionBytes: spec.retentionBytes }
    this.#move = new PartitionMove(group.actor as GroupActor<unknown>, {
      nodeId: spec.nodeId,
      electionTicks: spec.electionTicks,
      log,
      ids: { group: spec.groupId, topic: spec.topic, partition: spec.partition },
      report: (index, voters) => host.onConf?.(index, voters),
    })
    this.#observe = host.observe
    const toPeers = host.sendToPeers ?? (() => {})
    this.#toPeers = toPeers
    const where = { group: spec.groupId, topic: spec.topic, partition: spec.partition }
    const node = this.#actor.node
    this.#sender = new SnapshotSender({
      self: spec.nodeId,
      where,
      log,
      now: () => this.#clock.now(),
      send: (m) => toPeers([m]),
      leadingTerm: () => (node.isLeader() ? node.term : null),
      reportSnapshot: (to, succeeded) => node.reportSnapshot(to, succeeded),
      capture: () => this.#capture(),
      readChunk: (at, end) => this.#readChunk(at, end),
      ...(host.snapshotTiming ? { timing: host.snapshotTiming } : {}),
      ...(host.snapshotSlots ? { slots: host.snapshotSlots } : {}),
    })
    this.#receiver = new SnapshotReceiver({
      self: spec.nodeId,
      where,
      log,
      store: group.store,
      now: () => this.#clock.now(),
      send: (m) => toPeers([m]),
      raft: () => ({ term: node.term, leader: node.leader, commit: node.commit }),
      nextOffset: () => this.#sm.nextOffset,
      install: (m) => {
        const index = m.snapshot!.metadata.index
        this.#actor.step(m)
        // the core took it when its log is now the snapshot alone (it declines one its log covers)
        return node.firstIndex === index + 1 && node.lastIndex === index
      },
      ...(host.snapshotTiming ? { timing: host.snapshotTiming } : {}),
      ...(host.snapshotSlots ? { slots: host.snapshotSlots } : {}),
      ...(host.unsafe?.unsyncedSnapshot ? { unsyncedSnapshot: true } : {}),
    })
  }

  /**
   * What the log view keeps: a group with peers (or about to have some) feeds them from it;
   * a lone voter feeds no one. A bound given in entries (a node's --view-entries-max; the
   * simulator's are tiny) keeps the peers' byte bound.
   */
  #viewKeep(): { readonly entries: number; readonly bytes: number } {
    const voters = this.#actor.node.voters()
    const peers = voters.length > 1 || voters[0] !== this.spec.nodeId || this.#move.moving
    if (!peers) return VIEW_KEEP
    return this.#viewEntriesSet !== null ? { entries: this.#viewEntriesSet, bytes: VIEW_KEEP_PEERS.bytes } : VIEW_KEEP_PEERS
  }

  /**
   * What the metadata says of this partition now: where it is moving (null: it is not; its
   * leader takes it there), and its topic's retention (alterTopic), from the next check on.
   */
  assign(a: ReplicaAssignment): void {
    this.#move.setTarget(a.target)
    this.#retention = { retentionMs: a.retentionMs, retentionBytes: a.retentionBytes }
  }

  static async open(spec: ReplicaSpec, runtime: GroupRuntime, log: ActorLogger, prng: Prng, host: PartitionHostOptions = {}): Promise<Result<PartitionReplica, HostedGroupError>> {
    let sm = new PartitionStateMachine()
    // the replica exists only once its group does; apply and the hooks reach it through this
    let self: PartitionReplica | null = null
    // what the core would send a follower as a snapshot becomes a partition snapshot's offer
    const out = host.sendToPeers
    const wired: PartitionHostOptions = out ? { ...host, sendToPeers: (msgs) => (self ? self.#outgoing(msgs) : out(msgs)) } : host
    const group = await HostedGroup.open<ApplyResult>({
      groupId: spec.groupId,
      dir: spec.dir,
      nodeId: spec.nodeId,
      voters: spec.voters,
      electionTicks: spec.electionTicks,
      ...(spec.expectApplied === undefined ? {} : { expectApplied: spec.expectApplied }),
      runtime,
      log,
      prng,
      restore: (blob) => {
        if (blob === null) return ok(0)
        const r = PartitionStateMachine.restore(blob)
        if (!r.ok) return r
        sm = r.value
        return ok(sm.appliedIndex)
      },
      apply: (e) => self!.#apply(e),
      snapshot: () => (self ? self.#sm : sm).snapshot(),
      onApplied: () => self!.#afterApply(),
      restoreSnapshot: (snap) => self!.#installSnapshot(snap),
      host: wired,
    })
    if (!group.ok) return group
    self = new PartitionReplica(spec, group.value, sm, log, host)
    log.info({ group: spec.groupId, topic: spec.topic, partition: spec.partition, applied: sm.appliedIndex, nextOffset: sm.nextOffset }, 'partition replica opened')
    // a lone voter answers only once it leads and has re-applied its whole log, so a topic
    // is writable as soon as its creation is acknowledged and reads after a restart never see less
    await group.value.leadAlone(OPEN_LEADER_WAIT_MS)
    if (spec.campaign === true && spec.voters.length > 1 && group.value.view.lastIndex() === 0) group.value.actor.campaign()
    return ok(self)
  }

  get groupId(): number {
    return this.spec.groupId
  }

  /** The group's actor (its Raft node), for hosts that step it themselves. */
  get actor(): GroupActor<ApplyResult> {
    return this.#actor
  }

  /** The group's in-memory log view (durable entries, kept current by the log engine). */
  get view(): MemoryStorage {
    return this.#group.view
  }

  /**
   * A Raft message from a peer. A Snap is never the core's: between partition replicas it
   * carries a snapshot transfer item (snapshot-wire.ts), for this replica's sender (it
   * leads) or receiver (it follows); its core is given a Snap only by the receiver, once
   * the whole snapshot is stored. One that is no such item is dropped, and said so every
   * SNAPSHOT_LOG_MS.
   */
  step(m: Message): void {
    if (m.type !== MessageType.Snap) {
      this.#actor.step(m)
      return
    }
    const item = m.snapshot === null ? null : decodeTransferItem(m.snapshot.data)
    if (item === null || !item.ok) {
      this.snapshotsRefused++
      const now = this.#clock.now()
      if (now - this.#snapshotLoggedAt >= SNAPSHOT_LOG_MS) {
        this.#snapshotLoggedAt = now
        const why = item === null ? 'no snapshot' : item.error.message
        this.#log.error({ group: this.spec.groupId, topic: this.spec.topic, partition: this.spec.partition, from: m.from, reason: why }, 'a snapshot message that is no partition snapshot transfer; dropped')
      }
      return
    }
    const meta = m.snapshot!.metadata
    const v = item.value
    if (v.kind === 'ask' || v.kind === 'end') this.#sender.onItem(m.from, m.term, meta, v)
    if (v.kind !== 'ask') this.#receiver.onItem(m.from, m.term, meta, v)
  }

  /** Snap messages dropped because they carried no snapshot transfer item (see `step`). */
  snapshotsRefused = 0
  #snapshotLoggedAt = -Infinity

  /** What this replica's Raft core sends: a snapshot for a follower becomes an offer (snapshot-sender.ts). */
  #outgoing(msgs: readonly Message[]): void {
    let snaps = 0
    for (const m of msgs) if (m.type === MessageType.Snap) snaps++
    if (snaps === 0) {
      this.#toPeers(msgs)
      return
    }
    if (snaps < msgs.length) this.#toPeers(msgs.filter((m) => m.type !== MessageType.Snap))
    for (const m of msgs) if (m.type === MessageType.Snap) this.#sender.offer(m.to)
  }

  /** The partition as of its applied index, for a snapshot offer. */
  #capture(): SnapshotCapture {
    const a = this.#actor
    const sm = this.#sm
    assert(sm.appliedIndex === a.appliedIndex, () => `group ${this.spec.groupId}: the state machine is at ${sm.appliedIndex}, the actor applied ${a.appliedIndex}`)
    return {
      meta: { index: a.appliedIndex, term: a.appliedTerm, conf: a.node.confAt(a.appliedIndex) },
      state: sm.snapshot(),
      firstOffset: this.#firstRetainedBase(),
      endOffset: sm.nextOffset,
      recordBytes: sm.retainedBytes,
      batches: sm.batchCount,
    }
  }

  /** Stored record batches from base offset `at` on, below `end`, at most one transfer chunk (snapshot-sender.ts). */
  async #readChunk(at: number, end: number): Promise<Result<Uint8Array[], ChunkReadError>> {
    const sm = this.#sm
    // the first retained batch may begin below the log start (retention cuts through batches)
    const loc = sm.locate(Math.max(at, sm.logStartOffset), limits.snapshot.chunkBytesMax, limits.snapshot.chunkBatchesMax)
    if (loc.kind !== 'ok' || loc.batches[0]!.baseOffset !== at) return fail('RANGE_GONE', `offset ${at} is not retained (log start ${sm.logStartOffset}) or begins no batch`)
    const wanted = loc.batches.filter((b) => b.baseOffset < end)
    const read = await this.#read(wanted)
    if (!read.ok) return fail('STORE_FAILED', `${read.error.code}: ${read.error.message}`)
    // retention may have dropped the range while it was read
    if (read.value.length < wanted.length || at < this.#firstRetainedBase()) return fail('RANGE_GONE', `retention dropped records from ${at} while they were read`)
    return ok(read.value)
  }

  /**
   * The core installed a leader's snapshot (the WAL holds it): the state machine the
   * receiver took in becomes this replica's; records it no longer retains go, and so does
   * the store's received copy (HostedGroup stages the applied state in the same flush).
   */
  #installSnapshot(snap: Snapshot): void {
    const got = this.#receiver.takeInstalled(snap.metadata.index)
    assert(got !== null, () => `group ${this.spec.groupId}: the core installed a snapshot at ${snap.metadata.index} this replica did not receive`)
    assert(got.sm.appliedIndex === snap.metadata.index, () => `group ${this.spec.groupId}: a snapshot at ${snap.metadata.index} holds a state at ${got.sm.appliedIndex}`)
    this.#sm = got.sm
    this.#stagedOffset = got.sm.nextOffset
    this.#recent.dropBelow(got.sm.logStartOffset)
    this.#group.store.deleteRecordsBelow(this.#firstRetainedBase())
    this.#group.store.putPendingSnapshot(null)
    this.snapshotsInstalled++
    this.#observe?.installed(snap.metadata.index)
  }

  /** Leaders' snapshots this replica installed since it opened. */
  snapshotsInstalled = 0

  /** What `raftmq cluster status` shows of this replica (apis/cluster.ts GroupReport). */
  report(): GroupReport {
    const node = this.#actor.node
    const st = node.status()
    const followers = [...st.progress].filter(([id]) => id !== this.spec.nodeId).map(([id, p]) => ({ id, match: p.match, active: p.recentActive }))
    return {
      topic: this.spec.topic,
      partition: this.spec.partition,
      groupId: this.spec.groupId,
      role: st.role,
      quiet: node.quiet,
      leader: st.leader,
      term: st.term,
      commit: st.commit,
      applied: this.#actor.appliedIndex,
      lastIndex: st.lastIndex,
      ...this.#transferReport(),
      followers,
    }
  }

  tick(): void {
    this.#actor.tick()
    this.#sender.tick()
    this.#receiver.tick()
    this.#backToPreferred()
    this.#move.tick()
  }

  /** The node's failure detector lost node `id` (RaftNode.peerDown). */
  peerDown(id: number): void {
    this.#actor.peerDown(id)
  }

  /** A snapshot transfer this replica receives, for status: `behind` while one runs, with its bytes so far and in all. */
  #transferReport(): { readonly behind: boolean; readonly snapshotBytes: number; readonly snapshotBytesTotal: number } {
    const p = this.#receiver.progress()
    return p === null ? { behind: false, snapshotBytes: 0, snapshotBytesTotal: 0 } : { behind: true, snapshotBytes: p.bytes, snapshotBytesTotal: p.total }
  }

  /**
   * Leadership goes back to the preferred replica (the assignment's first) once it is
   * answering and has (nearly) the whole log, as Kafka's preferred-leader election does:
   * leaders then stay spread the way placement spread them, after elections that went
   * elsewhere (a new group's first, a node that restarted). Looked at every tick, because
   * the core forgets who answered at every check of its quorum: a look once per election
   * timeout could always fall just after it.
   */
  /** An operator asked (electPreferredLeaders): hands leadership back now if it may go; true if a transfer started. */
  electPreferred(): boolean {
    return this.#backToPreferred(true)
  }

  #backToPreferred(now = false): boolean {
    const preferred = this.spec.voters[0]!
    if (preferred === this.spec.nodeId || (this.#preferredOff && !now)) return false
    const pr = this.#actor.node.progressOf(preferred)
    if (pr === null) {
      // not leading (any more): a transfer that took place is no failure
      this.#transfersTried = 0
      return false
    }
    if (!now) this.#ticks++
    if (pr.recentActive) this.#preferredSeenAt = this.#ticks
    if (this.#ticks - this.#preferredSeenAt > this.spec.electionTicks || (!now && this.#ticks < this.#nextTransferAt)) return false
    // nearly caught up is enough: the transfer itself sends it the rest first (under a
    // steady load a follower's match always trails the newest entry a little)
    if (this.#actor.node.lastIndex - pr.match > TRANSFER_LAG_MAX) return false
    // a transfer that did not take (the preferred replica cannot win: a one-way link, a
    // flapping node) costs writes an election timeout each time: try again ever later
    this.#nextTransferAt = this.#ticks + this.spec.electionTicks * 2 ** Math.min(this.#transfersTried, TRANSFER_BACKOFF_DOUBLINGS)
    this.#transfersTried++
    this.#log.info({ group: this.spec.groupId, topic: this.spec.topic, partition: this.spec.partition, to: preferred, attempt: this.#transfersTried, asked: now }, 'handing leadership back to the preferred replica')
    return this.#actor.transferLeader(preferred)
  }

  /** A single-voter group that leads and is not moving: nothing for ticks to do. */
  leadsAlone(): boolean {
    return this.#actor.isLeader() && this.#actor.node.voters().length === 1 && !this.#move.moving
  }

  // ---- apply -----------------------------------------------------------------------------

  #apply(e: Entry): ApplyResult {
    this.#observe?.applied(e)
    // configuration changes are the Raft layer's business; their bytes are no command
    if (e.type !== EntryType.Normal) {
      const cc = decodeConfChange(e.data)
      if (cc !== null) this.#move.applied(e.index, cc.conf.voters)
      this.#sm.skip(e.index)
      return { kind: 'noop' }
    }
    const r = this.#sm.apply(e.index, e.data)
    if (r.kind === 'produce' && r.ok && !r.duplicate) {
      // the entry's bytes are durable in the WAL already; the stamped view is what is stored and served
      const batch = batchOf(e.data)
      setBaseOffset(batch, r.baseOffset)
      this.#group.store.putRecord(r.baseOffset, batch)
      this.#recent.add(r.baseOffset, batch)
      this.#stagedOffset = r.baseOffset + r.count
    } else if (r.kind === 'cleanup') {
      this.#group.store.deleteRecordsBelow(this.#firstRetainedBase())
      this.#recent.dropBelow(this.#sm.logStartOffset)
    }
    return r
  }

  #firstRetainedBase(): number {
    const loc = this.#sm.locate(this.#sm.logStartOffset, 0, 1)
    return loc.kind === 'ok' ? loc.batches[0]!.baseOffset : this.#sm.nextOffset
  }

  #afterApply(): void {
    for (const w of this.#waiters) if (this.#sm.nextOffset > w.offset) w.wake()
    this.#flush()
    this.#group.compactView(this.#viewKeep(), this.#sender.floor())
  }

  /** Writes what apply staged (unsynced), one write at a time; a write asked for meanwhile follows it. */
  #flush(): void {
    // a retry timer may fire after close: the store is closed (and its state saved) then
    if (this.#closed) return
    if (this.#flushing) {
      this.#flushAgain = true
      return
    }
    const through = this.#stagedOffset
    this.#flushing = this.#group.store.flush({ sync: false }).then((r) => {
      this.#flushing = null
      if (r.ok) {
        if (this.#storeError?.code === 'STORAGE_FULL') this.#log.info({ group: this.spec.groupId }, 'the partition store took writes again')
        this.#storeError = null
        this.#recent.flushedThrough(through)
        if (this.#flushAgain && !this.#closed) {
          this.#flushAgain = false
          this.#flush()
        }
        return
      }
      this.#storeFailed(r.error.code, r.error.message)
    })
  }

  #storeFailed(code: 'STORE_FULL' | 'STORE_FAILED', message: string): void {
    const where = { topic: this.spec.topic, partition: this.spec.partition }
    if (this.#storeError === null) this.#log.error({ group: this.spec.groupId, code, err: message }, 'partition store write failed')
    if (code === 'STORE_FULL') {
      this.#storeError = wireError('STORAGE_FULL', { reason: message })
      // the records stay staged (and served from memory): try again until space returns
      if (!this.#closed) this.#retry = this.#clock.after(STORE_RETRY_MS, () => this.#flush())
    } else {
      this.#storeError = wireError('STORAGE_FAILED', { ...where, reason: message })
    }
  }

  // ---- produce ---------------------------------------------------------------------------

  #notLeader(): WireError {
    const leader = this.#actor.node.leader
    return wireError('NOT_LEADER', { topic: this.spec.topic, partition: this.spec.partition }, leader ? { leader } : {})
  }

  /**
   * Why this replica may not answer reads now, or null: only a leader does (Kafka's
   * consumers read from leaders too), and only once it applied an entry of its own term —
   * before that a new leader's state may lack entries an earlier leader committed, and a
   * read would see the log shrink. `fetch` and `offsets` read whatever this replica
   * holds; a host asks this first for a client's read.
   */
  readRefusal(): WireError | null {
    if (!this.#actor.isLeader()) return this.#notLeader()
    if (this.#actor.appliedTerm !== this.#actor.node.term) return wireError('LEADER_NOT_AVAILABLE', { topic: this.spec.topic, partition: this.spec.partition })
    return null
  }

  /** Who this replica knows leads its group (0: nobody), and as of which term. */
  leader(): { readonly leader: number; readonly term: number } {
    return { leader: this.#actor.node.leader, term: this.#actor.node.term }
  }

  /** `verifiedSizes`: the record sizes, when the codec pool already decompressed and measured the batch. */
  async produce(batch: Uint8Array, atomic: boolean, verifiedSizes?: readonly number[]): Promise<ProduceOutcome> {
    if (!this.#actor.isLeader()) return { ok: false, error: this.#notLeader() }
    if (this.#storeError) return { ok: false, error: this.#storeError }
    const checked = checkBatch(batch)
    if (!checked.ok) return { ok: false, error: checked.error }
    const h = checked.value
    if (h.transactional || h.control) {
      return { ok: false, error: wireError('INVALID_RECORD', { reason: 'transactional and control batches are not supported' }) }
    }
    // the CRC covers the producer fields but not their sense: refuse here, from this header, what apply would refuse
    const unappliable = batchFactsProblem(h)
    if (unappliable !== null) return { ok: false, error: wireError('INVALID_RECORD', { reason: unappliable }) }
    // every record is walked, compressed or not (see the header); the CRC was checked above
    const sizes = verifiedSizes
      ? { ok: true as const, value: verifiedSizes }
      : recordSizes(batch, { maxBytes: limits.produce.batchDecompressedBytesMax, verifyCrc: false })
    if (!sizes.ok) return { ok: false, error: sizes.error }
    const max = limits.produce.messageBytesMax
    const count = sizes.value.length
    const bad: number[] = []
    for (let i = 0; i < count; i++) if (sizes.value[i]! > max) bad.push(i)
    if (bad.length === 0) return this.#proposeBatch(batch, atomic)
    const tooLarge = (i: number): WireErrorLike => wireError('MESSAGE_TOO_LARGE', { bytes: sizes.value[i]!, limit: max })
    if (atomic || h.producerId >= 0 || bad.length === count) {
      // all or nothing: an idempotent batch's sequence range cannot have holes
      const rejected = wireError('BATCH_REJECTED')
      const errors = sizes.value.map((_, i) => ({ index: i, error: bad.includes(i) ? tooLarge(i) : rejected }))
      return { ok: true, summary: { count, errors } }
    }
    const kept = sizes.value.map((_, i) => i).filter((i) => !bad.includes(i))
    const framed = reframe(batch, kept, { maxBytes: limits.produce.batchDecompressedBytesMax })
    if (!framed.ok) return { ok: false, error: framed.error }
    // the new batch's header has the kept records' count and maxTimestamp, and apply reads them there
    const outcome = await this.#proposeBatch(framed.value, atomic)
    if (!outcome.ok) return outcome
    // back to the positions the client sent: the kept records' errors move to their places
    const s = outcome.summary
    const errors = [...bad.map((i) => ({ index: i, error: tooLarge(i) })), ...(s.errors ?? []).map((e) => ({ index: kept[e.index]!, error: e.error }))]
    errors.sort((a, b) => a.index - b.index)
    return { ok: true, summary: { ...s, count, errors } }
  }

  /** Proposes `batch`, checked, as one produce command: the batch and `atomic`, nothing copied out of its header. */
  async #proposeBatch(batch: Uint8Array, atomic: boolean): Promise<ProduceOutcome> {
    const r = await this.#actor.propose([encodeProduce({ atomic }, batch)])
    if (!r.ok) return { ok: false, error: proposeError(r.error.code, r.error.message, { topic: this.spec.topic, partition: this.spec.partition, leader: this.#actor.node.leader }) }
    const applied = r.value.results[0]!
    if (applied.kind !== 'produce') {
      const why = applied.kind === 'invalid' ? `: ${applied.error.message}` : ''
      return { ok: false, error: wireError('INTERNAL', { reason: `produce applied as ${applied.kind}${why}` }) }
    }
    if (!applied.ok) {
      const error: WireErrorLike = { code: applied.error.code, message: applied.error.message }
      return { ok: true, summary: { count: applied.count, errors: Array.from({ length: applied.count }, (_, index) => ({ index, error })) } }
    }
    const summary = { count: applied.count, baseOffset: applied.baseOffset }
    return { ok: true, summary: applied.duplicate ? { ...summary, duplicate: true } : summary }
  }

  // ---- fetch -----------------------------------------------------------------------------

  offsets(): { highWatermark: number; logStartOffset: number } {
    return { highWatermark: this.#sm.highWatermark(), logStartOffset: this.#sm.logStartOffset }
  }

  /**
   * Committed batches from `offset`, up to `maxBytes` (at least one batch) and about
   * `maxMessages` records; waits up to `maxWaitMs` for data at the end of the log.
   * `cancelled` ends the wait early.
   */
  async fetch(offset: number, maxBytes: number, maxMessages: number, maxWaitMs: number, cancelled?: Promise<void>): Promise<FetchOutcome> {
    // locate bounds batches, not records: a batch holds at least one record, so maxMessages batches is enough
    let loc = this.#sm.locate(offset, maxBytes, Math.max(1, maxMessages))
    if (loc.kind === 'none' && maxWaitMs > 0) {
      await this.#waitForData(offset, maxWaitMs, cancelled)
      loc = this.#sm.locate(offset, maxBytes, Math.max(1, maxMessages))
    }
    const { highWatermark, logStartOffset } = this.offsets()
    if (loc.kind === 'error') {
      return { ok: false, error: wireError('OFFSET_OUT_OF_RANGE', { offset, logStartOffset: loc.logStartOffset, highWatermark: loc.highWatermark }, { details: { logStartOffset: loc.logStartOffset, highWatermark: loc.highWatermark } }) }
    }
    if (loc.kind === 'none') return { ok: true, batches: [], highWatermark, logStartOffset }
    const wanted: StoredBatch[] = []
    let records = 0
    for (const b of loc.batches) {
      wanted.push(b)
      records += b.lastOffset - b.baseOffset + 1
      if (records >= maxMessages) break
    }
    const read = await this.#read(wanted)
    if (!read.ok) return { ok: false, error: read.error }
    return { ok: true, batches: read.value, highWatermark, logStartOffset }
  }

  /** The stored bytes of `wanted` (consecutive batches), from memory or the store, each checked. */
  async #read(wanted: readonly StoredBatch[]): Promise<{ readonly ok: true; readonly value: Uint8Array[] } | { readonly ok: false; readonly error: WireError }> {
    const out: Uint8Array[] = []
    let k = 0
    for (; k < wanted.length; k++) {
      const cached = this.#recent.get(wanted[k]!.baseOffset)
      if (cached === undefined) break
      out.push(cached)
    }
    if (k === wanted.length) return ok(out)
    // the rest from the store, in one range read; the cache may hold the tail again
    const rest = wanted.slice(k)
    const stored = await this.#group.store.readRecords(rest[0]!.baseOffset, rest[rest.length - 1]!.baseOffset)
    if (!stored.ok) {
      const reason = stored.error.message
      this.#log.error({ group: this.spec.groupId, store: this.spec.dir, code: stored.error.code, err: reason }, 'partition store read failed')
      const where = { topic: this.spec.topic, partition: this.spec.partition }
      return { ok: false, error: stored.error.code === 'STORE_FULL' ? wireError('STORAGE_FULL', { reason }) : wireError('STORAGE_FAILED', { ...where, reason }) }
    }
    const byOffset = new Map(stored.value)
    for (const b of rest) {
      const bytes = byOffset.get(b.baseOffset) ?? this.#recent.get(b.baseOffset)
      if (bytes === undefined) {
        // retention may have dropped it while we read; below the log start that is no damage
        if (b.lastOffset < this.#sm.logStartOffset) break
        return this.#corrupt(b.baseOffset, 'the record batch is missing from the partition store')
      }
      const why = checkStored(bytes, b)
      if (why !== null) return this.#corrupt(b.baseOffset, why)
      out.push(bytes)
    }
    return ok(out)
  }

  #corrupt(offset: number, reason: string): { readonly ok: false; readonly error: WireError } {
    this.#log.error({ group: this.spec.groupId, topic: this.spec.topic, partition: this.spec.partition, offset, store: this.spec.dir, reason }, 'stored data failed its checks; not served')
    const error = wireError('STORAGE_CORRUPT', { topic: this.spec.topic, partition: this.spec.partition, offset, reason })
    return { ok: false, error }
  }

  #waitForData(offset: number, maxWaitMs: number, cancelled?: Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        cancel()
        this.#waiters.delete(w)
        resolve()
      }
      const w: Waiter = { offset, wake: done }
      const cancel = this.#clock.after(Math.min(maxWaitMs, limits.fetch.maxWaitMsMax), done, true)
      this.#waiters.add(w)
      void cancelled?.then(done)
    })
  }

  // ---- housekeeping ----------------------------------------------------------------------

  /** Leader only: proposes a cleanup if retention drops anything now. */
  async enforceRetention(nowMs: number): Promise<void> {
    const { retentionMs, retentionBytes } = this.#retention
    if (!this.#actor.isLeader() || (retentionMs === null && retentionBytes === null)) return
    const cutoff = this.#sm.retentionCutoff({ nowMs, retentionMs, retentionBytes })
    if (cutoff === null || cutoff <= this.#sm.logStartOffset) return
    const r = await this.#actor.propose([encodeCleanup(cutoff)])
    if (r.ok) this.#log.info({ group: this.spec.groupId, logStartOffset: cutoff }, 'retention advanced the log start')
  }

  /** Leader only: proposes an expire if some idempotent producer was last heard of before `idleBefore` (ms). */
  async expireProducers(idleBefore: number): Promise<void> {
    if (!this.#actor.isLeader()) return
    const oldest = this.#sm.oldestProducerTimestamp()
    if (oldest === null || oldest >= idleBefore) return
    const r = await this.#actor.propose([encodeExpire(idleBefore)])
    if (!r.ok) return
    const applied = r.value.results[0]
    if (applied?.kind === 'expire') this.#log.info({ group: this.spec.groupId, producers: applied.producersExpired, idleBefore }, 'forgot idle idempotent producers')
  }

  /** Stops the group, writes its whole state to the store (synced) and closes it; `removed`: the topic is gone. */
  async close(opts: { readonly removed: boolean } = { removed: false }): Promise<void> {
    if (this.#closed) return
    this.#actor.stop()
    this.#sender.close()
    this.#receiver.close()
    for (const w of this.#waiters) w.wake()
    while (this.#flushing) await this.#flushing
    this.#closed = true
    this.#retry?.()
    await this.#group.close(opts)
  }
}
