/**
 * LocalReplicas: the partition replicas this node hosts, kept in line with the metadata.
 * A partition whose replica list names this node is opened here (its group joins its
 * peers); one no topic holds any more — its topic was deleted by a committed command —
 * is closed and its data removed. Every node runs this after each applied metadata
 * change (`reconcile`), so a topic created through any node appears on all of its
 * replicas; runs never overlap, and a change during a run starts another.
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
  /** A group was closed for good (its topic is gone). */
  readonly onRemoved?: (gid: number) => void
}

export class LocalReplicas {
  readonly #o: LocalReplicasOptions
  #running: Promise<void> | null = null
  #again = false

  constructor(opts: LocalReplicasOptions) {
    this.#o = opts
  }

  #mine(p: PartitionAssignment): boolean {
    return p.replicas.includes(this.#o.nodeId)
  }

  #spec(topic: Topic, p: PartitionAssignment): ReplicaSpec {
    const expect = this.#o.expect.get(p.groupId)
    this.#o.expect.delete(p.groupId)
    return {
      groupId: p.groupId,
      dir: this.#o.groupDir(p.groupId),
      nodeId: this.#o.nodeId,
      voters: p.replicas,
      topic: topic.name,
      partition: p.partition,
      retentionMs: topic.config.retentionMs,
      retentionBytes: topic.config.retentionBytes,
      electionTicks: this.#o.electionTicks,
      campaign: p.replicas[0] === this.#o.nodeId,
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
    for (const p of topic.partitions) await this.#close(p.groupId)
  }

  async #close(gid: number): Promise<void> {
    if (!this.#o.groups.hasGroup(gid)) return
    await this.#o.groups.closeGroup(gid, true)
    this.#o.onRemoved?.(gid)
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
    for (const topic of md.topics.values()) {
      for (const p of topic.partitions) if (this.#mine(p)) wanted.add(p.groupId)
      const err = await this.openTopic(topic)
      if (err !== null) this.#o.log.error({ topic: topic.name, err }, 'a partition replica of this node could not be opened; it is tried again at the next metadata change')
    }
    for (const gid of this.#o.groups.groupIds()) {
      if (wanted.has(gid)) continue
      this.#o.log.info({ group: gid }, 'its topic was deleted: closing the replica and removing its data')
      await this.#close(gid)
    }
  }
}
