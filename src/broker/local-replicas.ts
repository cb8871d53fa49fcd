/**
 * LocalReplicas: the partition replicas this node hosts, kept in line with the metadata.
 * A partition whose replicas or move target name this node is opened here (its group
 * joins its peers); one whose replicas and target no longer name it — its topic was
 * deleted, or it moved away, both by committed commands (a move's removal of this node
 * is recorded only once the group's configuration change committed) — is closed and its
 * data removed. Every node runs this after each applied metadata change (`reconcile`), so
 * a topic created through any node appears on all of its replicas; runs never overlap,
 * and a change during a run starts another. Each hosted replica is told where its
 * partition is moving (partition-move.ts), when that changes.
 *
 * A replica that joins by a move starts with no configuration (it learns it from its
 * leader's log), and so does any replica of a partition that has moved before: the
 * placement's replica list is the group's first configuration only.
 *
 * The first open of a group in this run checks its store against what WAL recovery
 * vouched for (`expect`); a group's preferred leader (the first replica) campaigns at
 * once when the group is new.
 *
 * Imports controller (types), replica (types) and ./ modules.
 */
import type { MetadataStateMachine, PartitionAssignment, Topic } from '../controller/index.js'
import type { ReplicaSpec } from '../replica/index.js'
import type { ActorLogger } from '../group/index.js'
import type { GroupHost } from './group-host.js'

export interface LocalReplicasOptions {
  readonly nodeId: number
  readonly electionTicks: number
  readonly groups: GroupHost
  /** A group's directory. */
  readonly groupDir: (gid: number) => string
  /** What WAL recovery says each group's store was synced at (used by a group's first open only). */
  readonly expect: Map<number, number>
  readonly log: ActorLogger
  /** A group was closed for good because its topic is gone (not when it moved away: its leader is still routed to). */
  readonly onRemoved?: (gid: number) => void
}

export class LocalReplicas {
  readonly #o: LocalReplicasOptions
  #running: Promise<void> | null = null
  #again = false
  /** The move target last told to each hosted group ('' for none). */
  readonly #told = new Map<number, string>()

  constructor(opts: LocalReplicasOptions) {
    this.#o = opts
  }

  #mine(p: PartitionAssignment): boolean {
    return p.replicas.includes(this.#o.nodeId) || (p.target?.includes(this.#o.nodeId) ?? false)
  }

  #spec(topic: Topic, p: PartitionAssignment): ReplicaSpec {
    const expect = this.#o.expect.get(p.groupId)
    this.#o.expect.delete(p.groupId)
    // the placement's list is the group's configuration only for a group that never moved
    const first = p.replicas.includes(this.#o.nodeId) && (p.confIndex ?? 0) === 0
    return {
      groupId: p.groupId,
      dir: this.#o.groupDir(p.groupId),
      nodeId: this.#o.nodeId,
      voters: first ? p.replicas : [],
      topic: topic.name,
      partition: p.partition,
      retentionMs: topic.config.retentionMs,
      retentionBytes: topic.config.retentionBytes,
      electionTicks: this.#o.electionTicks,
      campaign: first && p.replicas[0] === this.#o.nodeId,
      ...(expect === undefined ? {} : { expectApplied: expect }),
    }
  }

  /** Opens this node's replicas of `topic` (those already open stay); resolves with why one cannot serve, or null. */
  async openTopic(topic: Topic): Promise<string | null> {
    const mine = topic.partitions.filter((p) => this.#mine(p) && !this.#o.groups.hasGroup(p.groupId))
    const errors = await Promise.all(mine.map((p) => this.#o.groups.openGroup(this.#spec(topic, p))))
    return errors.find((e) => e !== null) ?? null
  }

  /** Closes this node's replicas of a deleted topic and removes their data. */
  async closeTopic(topic: Topic): Promise<void> {
    for (const p of topic.partitions) await this.#close(p.groupId, true)
  }

  /** `gone`: no topic holds the group any more (else it moved to other nodes). */
  async #close(gid: number, gone: boolean): Promise<void> {
    this.#told.delete(gid)
    if (!this.#o.groups.hasGroup(gid)) return
    await this.#o.groups.closeGroup(gid, true)
    if (gone) this.#o.onRemoved?.(gid)
  }

  #tell(topic: Topic, p: PartitionAssignment): void {
    if (!this.#o.groups.hasGroup(p.groupId)) return
    const assignment = { target: p.target ?? null, retentionMs: topic.config.retentionMs, retentionBytes: topic.config.retentionBytes }
    // every reconcile looks at every hosted partition, on the main thread: a cheap key
    const key = `${assignment.target?.join(',') ?? '-'}|${assignment.retentionMs}|${assignment.retentionBytes}`
    if (this.#told.get(p.groupId) === key) return
    this.#told.set(p.groupId, key)
    this.#o.groups.assign(p.groupId, assignment)
  }

  /** Brings the hosted replicas in line with `metadata` (soon; runs one at a time). */
  reconcile(metadata: () => MetadataStateMachine): Promise<void> {
    if (this.#running) {
      this.#again = true
      return this.#running
    }
    this.#running = (async () => {
      do {
        this.#again = false
        await this.#once(metadata())
      } while (this.#again)
    })().finally(() => (this.#running = null))
    return this.#running
  }

  async #once(md: MetadataStateMachine): Promise<void> {
    const wanted = new Set<number>()
    const known = new Set<number>()
    for (const topic of md.topics.values()) {
      for (const p of topic.partitions) {
        known.add(p.groupId)
        if (this.#mine(p)) wanted.add(p.groupId)
      }
      const err = await this.openTopic(topic)
      if (err !== null) this.#o.log.error({ topic: topic.name, err }, 'a partition replica of this node could not be opened; it is tried again at the next metadata change')
      for (const p of topic.partitions) if (this.#mine(p)) this.#tell(topic, p)
    }
    for (const gid of this.#o.groups.groupIds()) {
      if (wanted.has(gid)) continue
      const moved = known.has(gid)
      this.#o.log.info({ group: gid }, `this node holds no replica of the group any more (${moved ? 'the partition moved away' : 'its topic was deleted'}): closing the replica and removing its data`)
      await this.#close(gid, !moved)
    }
  }
}
