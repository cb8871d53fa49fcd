/**
 * The controller: the metadata Raft group (group 0), run on the main thread because the
 * main thread routes by its state and its traffic is rare (topic changes, producer ids).
 * It is the same HostedGroup as a partition's — its own partition store at
 * `<data-dir>/groups/0`, over the main thread's own GroupRuntime (write-ahead log
 * `<data-dir>/wal/<generation>/main`) — applying to the MetadataStateMachine, whose
 * whole state is saved at each checkpoint.
 *
 * In a cluster the group's voters are the first up-to-3 nodes (cluster.ts says which);
 * its Raft traffic goes through `peers`, and a node that is not its leader forwards
 * metadata commands to the one that is (cluster.ts). Every replica applies every command,
 * and `onApplied` lets the node act on what changed (open or remove its partitions).
 *
 * Imports base, raft (types), storage, controller, group and replica.
 */
import { Prng, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import type { WalFs } from '../storage/index.js'
import { MetadataStateMachine, encodeMetadataCommand } from '../controller/index.js'
import type { MetadataCommand, MetadataResult } from '../controller/index.js'
import type { ActorLogger, ActorProposeError } from '../group/index.js'
import type { Message } from '../raft/index.js'
import { GroupRuntime, HostedGroup } from '../replica/index.js'
import type { StorageTrouble } from '../replica/group-runtime.js'

export const CONTROLLER_GROUP_ID = 0
const CONTROLLER_SEGMENT_BYTES = 4 << 20

/**
 * This node's copy of the metadata: a voter's replica of the metadata group (Controller),
 * or, on a node beyond the group's voters, what the group's leader last sent it
 * (MetadataObserver). The node, its cluster and its handlers read it the same way.
 */
export interface MetadataReplica {
  readonly metadata: MetadataStateMachine
  isLeader(): boolean
  /** The metadata group's leader as this node knows it (0: none). */
  readonly leader: number
  /** Durable commits of the main thread's WAL since start. */
  readonly syncs: number
  tick(): void
  peerDown(id: number): void
  /** A Raft message of the metadata group from another node. */
  step(m: Message): void
  /** Resolves true once the replica can be read (and, for a lone node, leads), false after `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>
  /** Commits a metadata command (on the leader only). */
  submit(cmd: MetadataCommand): Promise<Result<MetadataResult, ActorProposeError>>
  close(): Promise<StorageTrouble[]>
}

export class Controller implements MetadataReplica {
  readonly #group: HostedGroup<MetadataResult>
  readonly #runtime: GroupRuntime
  readonly #log: ActorLogger
  readonly #metadata: { sm: MetadataStateMachine }

  private constructor(group: HostedGroup<MetadataResult>, runtime: GroupRuntime, metadata: { sm: MetadataStateMachine }, log: ActorLogger) {
    this.#group = group
    this.#runtime = runtime
    this.#metadata = metadata
    this.#log = log
  }

  get metadata(): MetadataStateMachine {
    return this.#metadata.sm
  }

  static async open(opts: {
    dir: string
    walDir: string
    fs: WalFs
    nodeId: number
    voters: readonly number[]
    electionTicks: number
    expectApplied?: number
    log: ActorLogger
    /** The group's way to its other voters (a cluster), and who leads it. */
    peers?: { sendToPeers(msgs: readonly Message[]): void; onLeader(leader: number, term: number): void }
    /** Called after each applied run of metadata commands. */
    onApplied?: () => void
  }): Promise<Result<Controller, string>> {
    // metadata traffic is small: a small segment (the default suits a worker's produce stream)
    const runtime = GroupRuntime.open({ fs: opts.fs, walDir: opts.walDir, log: opts.log, segmentBytes: CONTROLLER_SEGMENT_BYTES })
    if (!runtime.ok) return { ok: false, error: { code: runtime.error.code, message: `controller: ${runtime.error.message}` } }
    const metadata = { sm: new MetadataStateMachine() }
    let applied = 0
    const group = await HostedGroup.open<MetadataResult>({
      groupId: CONTROLLER_GROUP_ID,
      dir: opts.dir,
      nodeId: opts.nodeId,
      voters: opts.voters,
      electionTicks: opts.electionTicks,
      ...(opts.expectApplied === undefined ? {} : { expectApplied: opts.expectApplied }),
      runtime: runtime.value,
      log: opts.log,
      prng: new Prng(opts.nodeId),
      restore: (blob) => {
        if (blob === null) return ok(0)
        const r = MetadataStateMachine.restore(blob)
        if (!r.ok) return r
        metadata.sm = r.value
        applied = r.value.appliedIndex
        return ok(applied)
      },
      apply: (e) => metadata.sm.apply(e.index, e.data),
      snapshot: () => metadata.sm.snapshot(),
      ...(opts.onApplied ? { onApplied: opts.onApplied } : {}),
      ...(opts.peers ? { host: { sendToPeers: (msgs: readonly Message[]) => opts.peers!.sendToPeers(msgs), onLeader: opts.peers.onLeader } } : {}),
    })
    if (!group.ok) {
      await runtime.value.close()
      return { ok: false, error: { code: group.error.code, message: `the metadata store (controller group): ${group.error.message}` } }
    }
    return ok(new Controller(group.value, runtime.value, metadata, opts.log))
  }

  tick(): void {
    this.#group.actor.tick()
  }

  /** The node's failure detector lost node `id` (RaftNode.peerDown). */
  peerDown(id: number): void {
    this.#group.actor.peerDown(id)
  }

  /** Durable commits of the main thread's WAL since start. */
  get syncs(): number {
    return this.#runtime.engine.syncs
  }

  isLeader(): boolean {
    return this.#group.actor.isLeader()
  }

  /** The leader this replica knows of (0: none). */
  get leader(): number {
    return this.#group.actor.node.leader
  }

  /** A Raft message from another voter of the metadata group. */
  step(m: Message): void {
    this.#group.actor.step(m)
  }

  /** Resolves once the log replayed on start is applied and this node leads (single node: at once). */
  async ready(timeoutMs: number): Promise<boolean> {
    await this.#group.leadAlone(timeoutMs)
    const until = Date.now() + timeoutMs
    while (Date.now() < until) {
      if (this.isLeader()) {
        // an empty proposal commits only after everything before it is applied
        const r = await this.#group.actor.propose([new Uint8Array(0)])
        if (r.ok) return true
      }
      await new Promise((r) => setTimeout(r, 10))
    }
    return false
  }

  /** Commits a metadata command and returns its result. */
  async submit(cmd: MetadataCommand): Promise<Result<MetadataResult, ActorProposeError>> {
    const r = await this.#group.actor.propose([encodeMetadataCommand(cmd)])
    if (!r.ok) return r
    return { ok: true, value: r.value.results[0]! }
  }

  /** Closes the group, its store and the main thread's WAL; resolves with what was wrong with them (empty: nothing). */
  async close(): Promise<StorageTrouble[]> {
    await this.#group.close({ removed: false })
    const storage = await this.#runtime.close()
    this.#log.debug({ group: CONTROLLER_GROUP_ID }, 'controller closed')
    return storage
  }
}
