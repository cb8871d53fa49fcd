/**
 * HostedGroup: what every group a node hosts has in common, partition or controller —
 * its partition store opened and checked against what the WAL vouched for, the in-memory
 * log view rebuilt from it, the actor hosted on a GroupRuntime, and the checkpoint that
 * writes the whole group state into the store (synced) for WAL retirement and at close.
 * Between checkpoints the same state is saved WITHOUT sync every SAVE_EVERY_MS or
 * SAVE_EVERY_ENTRIES, whichever comes first: the WAL keeps everything it depends on, so
 * it is only there to bound what a restart after a process crash re-applies (the page
 * cache keeps such writes when only the process dies).
 * The state machine stays the caller's: it says how to save and restore it.
 *
 * What a host may inject (`HostOptions`; the defaults are production's): how the store is
 * opened (`openStore`, default its LevelDB), the clock and timers (`clock`), the Raft
 * options beyond the election and heartbeat ticks and quiescence (on for a group with
 * peers: RaftOptions.quiesce) (`raft`) and the way out to peers (`sendToPeers`) — the
 * simulator's partition mode hosts a three- or five-voter group with all of them. A
 * caller that can install a leader's snapshot says how (`restoreSnapshot`); the store's
 * applied state then follows it (`#restored`).
 *
 * Imports base, raft, storage, group, ./clock and ./group-runtime.
 */
import { fail, ok } from '../base/index.js'
import type { Prng, Result } from '../base/index.js'
import { MemoryStorage } from '../raft/index.js'
import type { Entry, Message, Snapshot } from '../raft/index.js'
import { openGroupStore } from '../storage/index.js'
import type { OpenStore, PartitionStore, StoreOpenError } from '../storage/index.js'
import { GroupActor } from '../group/index.js'
import type { ActorLogger, GroupActorOptions } from '../group/index.js'
import { realClock } from './clock.js'
import type { ReplicaClock } from './clock.js'
import type { GroupRuntime } from './group-runtime.js'

export interface HostedGroupOptions<R> {
  readonly groupId: number
  readonly dir: string
  readonly nodeId: number
  /** The initial voters of a group this store has no saved state for. */
  readonly voters: readonly number[]
  readonly electionTicks: number
  /** The applied index recovery says the store was synced at (undefined: the WAL never saw this group). */
  readonly expectApplied?: number
  readonly runtime: GroupRuntime
  readonly log: ActorLogger
  readonly prng: Prng
  /** Rebuilds the state machine from its saved bytes (null: a new group); returns its applied index. */
  readonly restore: (blob: Uint8Array | null) => Result<number, string>
  readonly apply: (e: Entry) => R
  /** The state machine's bytes as of the applied index. */
  readonly snapshot: () => Uint8Array
  readonly onApplied?: () => void
  /** Becomes the state of a leader's snapshot (a group with peers; see ActorStateMachine.restore). */
  readonly restoreSnapshot?: (snapshot: Snapshot) => void
  readonly host?: HostOptions
}

/** What a host injects into a group it hosts; every field defaults to production's. */
export interface HostOptions {
  /** Opens the group's store (default: its LevelDB, openGroupStore). */
  readonly openStore?: OpenStore
  /** Clock and timers (default: Date.now and setTimeout). */
  readonly clock?: ReplicaClock
  /** Raft options over the defaults (electionTicks, heartbeatTicks 1). */
  readonly raft?: GroupActorOptions<unknown>['raft']
  /** Sends the group's Raft messages to its peers (default: none, a lone voter). */
  readonly sendToPeers?: (msgs: readonly Message[]) => void
  /** Told whenever the group's leader changes (0: none known), with the term. */
  readonly onLeader?: (leader: number, term: number) => void
  /**
   * Test-only wrong rules, to show the simulator catches them. `unsyncedCheckpoint`: a
   * checkpoint (what WAL retirement trusts) writes the store without syncing it.
   * `unsyncedSnapshot`: a partition replica gives its core a received snapshot before the
   * store holds it synced (snapshot-receiver.ts).
   */
  readonly unsafe?: { readonly unsyncedCheckpoint?: boolean; readonly unsyncedSnapshot?: boolean }
}

export type HostedGroupError = StoreOpenError | 'STORAGE_FULL' | 'STORAGE_FAILED'

const EMPTY = new Uint8Array(0)

/** Unsynced saves of the group state, whichever bound comes first. */
const SAVE_EVERY_ENTRIES = 50_000
const SAVE_EVERY_MS = 5_000

export class HostedGroup<R> {
  readonly actor: GroupActor<R>
  readonly store: PartitionStore
  readonly view: MemoryStorage
  readonly clock: ReplicaClock
  readonly #opts: HostedGroupOptions<R>
  /** The store's unapplied-entry keys run from #tailFrom to #tailTo (none when from > to). */
  #tailFrom: number
  #tailTo: number
  #closed = false
  #savedIndex: number
  #savedAt: number
  #saving: Promise<unknown> | null = null
  /** Data bytes of the applied entries the view holds (what compactView bounds). */
  #viewBytes = 0

  private constructor(opts: HostedGroupOptions<R>, store: PartitionStore, view: MemoryStorage, applied: number, tail: { from: number; to: number }) {
    this.#opts = opts
    this.clock = opts.host?.clock ?? realClock
    this.#savedAt = this.clock.now()
    this.store = store
    this.view = view
    this.#tailFrom = tail.from
    this.#tailTo = tail.to
    this.#savedIndex = applied
    this.actor = new GroupActor<R>(opts.runtime.loop, {
      groupId: opts.groupId,
      nodeId: opts.nodeId,
      storage: view,
      stateMachine: opts.restoreSnapshot ? { apply: (e) => this.#counted(e), restore: (snap) => this.#restored(snap) } : { apply: (e) => this.#counted(e) },
      prng: opts.prng,
      applied,
      // a group with peers goes quiet when idle; the node's peer transport is the failure detector that wakes it (peerDown)
      raft: { electionTicks: opts.electionTicks, heartbeatTicks: 1, quiesce: opts.voters.length > 1 || opts.voters[0] !== opts.nodeId, ...opts.host?.raft },
      ...(opts.host?.sendToPeers ? { sendToPeers: opts.host.sendToPeers } : {}),
      ...(opts.host?.onLeader ? { onLeader: opts.host.onLeader } : {}),
      log: opts.log,
      onApplied: () => {
        opts.onApplied?.()
        this.#maybeSave()
      },
    })
  }

  /**
   * The core installed a leader's snapshot (durable in the WAL by now): the caller's state
   * machine becomes it, and the store's applied state follows, staged for the caller's next
   * flush together with whatever the caller staged in its hook (dropping the received copy:
   * snapshot-receiver.ts). The entries the store kept past the old applied state are gone
   * with the log the snapshot replaced.
   */
  #restored(snap: Snapshot): void {
    // a Ready the loop finishes after the group stopped (a retried commit): the group is closing, nothing is installed
    if (this.actor.stopped || this.#closed) return
    this.#opts.restoreSnapshot!(snap)
    const { index, term, conf } = snap.metadata
    this.store.saveApplied({ index, term, conf, blob: this.#opts.snapshot() })
    this.store.putHardState(this.view.hardState())
    this.store.replaceEntries(this.#tailFrom, this.#tailTo, [])
    this.#tailFrom = index + 1
    this.#tailTo = index
    this.#savedIndex = index
    this.#savedAt = this.clock.now()
    this.#viewBytes = 0
  }

  #counted(e: Entry): R {
    this.#viewBytes += e.data.byteLength
    return this.#opts.apply(e)
  }

  static async open<R>(opts: HostedGroupOptions<R>): Promise<Result<HostedGroup<R>, HostedGroupError>> {
    const openStore = opts.host?.openStore ?? openGroupStore
    const opened = await openStore(opts.dir, opts.expectApplied === undefined ? {} : { mustExist: true, expectApplied: opts.expectApplied })
    if (!opened.ok) return opened
    const { store, state } = opened.value
    const saved = state.applied
    const restored = opts.restore(saved?.blob ?? null)
    const appliedIndex = saved?.index ?? 0
    if (!restored.ok || restored.value !== appliedIndex) {
      await store.close()
      const why = restored.ok ? `its state says applied ${restored.value}, saved as ${appliedIndex}` : restored.error.message
      return fail('STORE_CORRUPT', `group store ${opts.dir}: the saved state machine is unreadable: ${why}`)
    }
    const view = new MemoryStorage(saved?.conf.voters ?? opts.voters)
    if (saved) view.applySnapshot({ metadata: { index: saved.index, term: saved.term, conf: saved.conf }, data: new Uint8Array(0) })
    view.append(state.entries)
    if (state.hardState) view.setHardState(state.hardState)
    // a snapshot received whole that the WAL never said was installed (recovery installs one
    // it did): the crash came before the core took it; the store is as before the transfer
    if (state.pendingSnapshot !== null) {
      opts.log.info({ group: opts.groupId, index: state.pendingSnapshot.index, applied: appliedIndex }, 'dropped a received snapshot the crash kept from being installed')
      store.putPendingSnapshot(null)
    }
    const g = new HostedGroup(opts, store, view, appliedIndex, { from: appliedIndex + 1, to: appliedIndex + state.entries.length })
    const hosted = opts.runtime.host(opts.groupId, view, { index: appliedIndex, term: saved?.term ?? 0 }, { checkpoint: () => g.checkpoint() })
    if (!hosted.ok) {
      await store.close()
      return hosted
    }
    opts.runtime.loop.add(g.actor)
    return ok(g)
  }

  /** A lone voter elects itself at once and re-applies its log; resolves once it has (or after `waitMs`). */
  async leadAlone(waitMs: number): Promise<boolean> {
    const o = this.#opts
    if (!(o.voters.length === 1 && o.voters[0] === o.nodeId)) return false
    this.actor.campaign()
    const clock = this.clock
    const until = clock.now() + waitMs
    while (!this.caughtUp() && clock.now() < until) await new Promise<void>((r) => clock.after(1, r, true))
    // what was re-applied need not be again after another crash
    if (this.caughtUp() && this.actor.appliedIndex > this.#savedIndex && !this.#saving) await this.#write(false)
    return this.caughtUp()
  }

  caughtUp(): boolean {
    return this.actor.isLeader() && this.actor.appliedIndex >= this.actor.node.lastIndex
  }

  /**
   * Drops applied entries from the view once more than `keep.entries` of them, or more
   * than `keep.bytes` of their data, are held: the oldest go, down to half of either
   * bound, so the cost of counting them back is spread over many applies. What stays is
   * what a lagging peer can still be sent from the log rather than by snapshot.
   */
  compactView(keep: { readonly entries: number; readonly bytes: number }, floor: number | null = null): void {
    let applied = this.actor.appliedIndex
    const first = this.view.firstIndex()
    // a snapshot at `floor` is being sent: the entries after it stay, so that its follower
    // goes on from the log once it has it, as long as the view holds no more than twice its bounds
    if (floor !== null && floor < applied && applied - first + 1 <= 2 * keep.entries && this.#viewBytes <= 2 * keep.bytes) applied = floor
    if (applied < first) return
    if (applied - first + 1 <= keep.entries && this.#viewBytes <= keep.bytes) return
    if (keep.bytes === Infinity) {
      // only a count bound: no sizes to keep track of
      this.#compactTo(Math.max(first, applied - Math.floor(keep.entries / 2)))
      return
    }
    const entries = this.view.entries(first, applied + 1, Infinity)
    let drop = 0
    let bytes = this.#viewBytes
    while (drop < entries.length && (entries.length - drop > keep.entries / 2 || bytes > keep.bytes / 2)) bytes -= entries[drop++]!.data.byteLength
    if (drop === 0) return
    this.#compactTo(entries[drop - 1]!.index)
    this.#viewBytes = bytes
  }

  /**
   * Drops the view's entries through `index`, which its snapshot (metadata only) then
   * stands for: the core names it when a follower needs what went, and the caller turns
   * that into a snapshot of its own (the partition replica: snapshot-sender.ts).
   */
  #compactTo(index: number): void {
    if (index < this.view.firstIndex()) return
    this.view.createSnapshot(index, this.actor.node.confAt(index), EMPTY)
    this.view.compact(index)
  }

  /** Writes the whole group state as of now into the store, synced (WAL retirement, close). */
  checkpoint(): Promise<Result<{ index: number; term: number }, string>> {
    return this.#write(this.#opts.host?.unsafe?.unsyncedCheckpoint !== true)
  }

  #maybeSave(): void {
    if (this.#saving || this.#closed) return
    const applied = this.actor.appliedIndex
    if (applied === this.#savedIndex) return
    if (applied - this.#savedIndex < SAVE_EVERY_ENTRIES && this.clock.now() - this.#savedAt < SAVE_EVERY_MS) return
    this.#saving = this.#write(false).finally(() => (this.#saving = null))
  }

  async #write(sync: boolean): Promise<Result<{ index: number; term: number }, string>> {
    const a = this.actor
    const index = a.appliedIndex
    const term = a.appliedTerm
    this.store.saveApplied({ index, term, conf: a.node.confAt(index), blob: this.#opts.snapshot() })
    this.store.putHardState(this.view.hardState())
    const last = this.view.lastIndex()
    const tail = last > index ? this.view.entries(index + 1, last + 1, Infinity) : []
    this.store.replaceEntries(this.#tailFrom, this.#tailTo, tail)
    this.#tailFrom = index + 1
    this.#tailTo = last
    this.#savedIndex = index
    this.#savedAt = this.clock.now()
    const r = await this.store.flush({ sync })
    if (!r.ok) return fail(r.error.code, r.error.message)
    return ok({ index, term })
  }

  /** Stops the actor, checkpoints (unless `removed`: the group is gone) and closes the store. */
  async close(opts: { readonly removed: boolean }): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#opts.runtime.loop.remove(this.actor)
    while (this.#saving) await this.#saving
    if (!opts.removed && this.store.failure === null && !(await this.#opts.runtime.checkpointNow(this.#opts.groupId))) {
      this.#opts.log.error({ group: this.#opts.groupId }, 'could not write the group state at close; it is rebuilt from the WAL at the next start')
    }
    this.#opts.runtime.unhost(this.#opts.groupId, opts)
    await this.store.close()
  }
}
