/**
 * The metadata state machine of the controller group (group 0): topics, their
 * partitions and the Raft group that holds each partition, and producer id allocation.
 * Deterministic: commands carry everything (names, counts, the node ids of replicas),
 * so every replica of the controller group reaches the same state; nothing here reads
 * a clock or a random source.
 *
 * Commands are msgpackr-encoded objects `{ op, ... }` carried by Raft entries. A
 * command that does not apply (the topic exists, an unknown topic) is refused with a
 * coded error as its result, and changes nothing.
 *
 * Imports base and msgpackr only.
 */
import { Packr } from 'msgpackr'
import { assert, fail, ok, sameMembers } from '../base/index.js'
import type { Result } from '../base/index.js'

export interface TopicConfig {
  /** Records older than this are dropped (null: forever). */
  readonly retentionMs: number | null
  /** Per partition, the oldest records are dropped past this many bytes (null: no limit). */
  readonly retentionBytes: number | null
}

export interface PartitionAssignment {
  readonly partition: number
  /** The Raft group that holds this partition. */
  readonly groupId: number
  /** The group's voters as its last reported configuration change left them (at creation: the placement), preferred leader first. */
  readonly replicas: readonly number[]
  /** A move in progress (movePartition): the replicas the partition is going to, preferred leader first. */
  readonly target?: readonly number[]
  /** Raft index of the configuration `replicas` was reported at (0: the group's first). */
  readonly confIndex?: number
}

export interface Topic {
  readonly name: string
  readonly config: TopicConfig
  readonly partitions: readonly PartitionAssignment[]
  /** Raft index of the createTopic command: identifies this incarnation of the name. */
  readonly createdAt: number
}

/** A node of the cluster, as it registered itself: where its clients connect. */
export interface NodeRecord {
  readonly id: number
  readonly host: string
  readonly port: number
}

/**
 * A node added to the running cluster (addNode), beyond those every node was started
 * with (`--peers`): where the other nodes' peer transports reach it.
 */
export interface PeerRecord {
  readonly id: number
  readonly host: string
  readonly port: number
}

export type MetadataCommand =
  /**
   * `assignments`: each partition's replicas, preferred leader first (the controller's
   * placement); a command without them (written before clusters) gives every partition
   * `replicas`.
   */
  | {
      readonly op: 'createTopic'
      readonly name: string
      readonly partitions: number
      readonly replicas: readonly number[]
      readonly assignments?: readonly (readonly number[])[]
      readonly config: TopicConfig
    }
  /** A node says where its clients connect (at every start, when that changed). */
  | ({ readonly op: 'registerNode' } & NodeRecord)
  /** A node joins the running cluster at this peer address (again: the address changes). */
  | ({ readonly op: 'addNode' } & PeerRecord)
  /** An added node leaves the cluster: refused while a partition's replicas or move target name it. */
  | { readonly op: 'removeNode'; readonly id: number }
  | { readonly op: 'deleteTopic'; readonly name: string }
  /**
   * A topic's retention changes (`config`), and/or partitions are added: one per entry of
   * `assignments` (its replicas, preferred leader first: the leader's placement), each a
   * new group.
   */
  | { readonly op: 'alterTopic'; readonly name: string; readonly config?: TopicConfig; readonly assignments?: readonly (readonly number[])[] }
  | { readonly op: 'allocateProducerId' }
  /**
   * A partition is to move to `replicas` (preferred leader first): its leader adds the new
   * replicas and removes the old ones, one configuration change at a time. The same list
   * as now cancels a move in progress.
   */
  | { readonly op: 'movePartition'; readonly name: string; readonly partition: number; readonly replicas: readonly number[] }
  /**
   * A partition's group applied a configuration change at `confIndex` that left `voters`
   * (any of its replicas says so; older reports than the one recorded change nothing).
   */
  | { readonly op: 'partitionConf'; readonly groupId: number; readonly confIndex: number; readonly voters: readonly number[] }

export type MetadataError = 'TOPIC_EXISTS' | 'UNKNOWN_TOPIC' | 'UNKNOWN_PARTITION' | 'INVALID_NODE' | 'INVALID_REQUEST'

export type MetadataResult =
  | Result<{ readonly topic: Topic }, MetadataError>
  | Result<{ readonly deleted: Topic }, MetadataError>
  | Result<{ readonly producerId: number; readonly producerEpoch: number }, MetadataError>
  | Result<null, MetadataError>

const packr = new Packr({ useRecords: false, moreTypes: false })

export function encodeMetadataCommand(cmd: MetadataCommand): Uint8Array {
  return new Uint8Array(packr.pack(cmd))
}

export class MetadataStateMachine {
  readonly topics = new Map<string, Topic>()
  readonly nodes = new Map<number, NodeRecord>()
  /** Nodes added to the running cluster, by id (the nodes started with `--peers` are not here). */
  readonly added = new Map<number, PeerRecord>()
  #nextGroupId = 1
  #nextProducerId = 1
  /** Incremented on every change, so caches can tell they are stale. */
  version = 0
  /** Raft index of the last entry applied. */
  appliedIndex = 0

  /** Applies one command (entry data); empty entries (a new leader's) change nothing. */
  apply(index: number, data: Uint8Array): MetadataResult {
    assert(index > this.appliedIndex, () => `metadata: applying ${index} after ${this.appliedIndex}`)
    this.appliedIndex = index
    if (data.byteLength === 0) return ok(null)
    let cmd: MetadataCommand
    try {
      cmd = packr.unpack(data) as MetadataCommand
    } catch {
      // only the leader writes commands: a bad one is a bug, but it must not wedge the group
      return fail('INVALID_REQUEST', `entry ${index} is not a metadata command`)
    }
    switch (cmd.op) {
      case 'createTopic':
        return this.#createTopic(index, cmd)
      case 'deleteTopic':
        return this.#deleteTopic(cmd.name)
      case 'alterTopic':
        return this.#alterTopic(cmd)
      case 'allocateProducerId':
        this.version++
        return ok({ producerId: this.#nextProducerId++, producerEpoch: 0 })
      case 'registerNode':
        this.nodes.set(cmd.id, { id: cmd.id, host: cmd.host, port: cmd.port })
        this.version++
        return ok(null)
      case 'addNode':
        this.added.set(cmd.id, { id: cmd.id, host: cmd.host, port: cmd.port })
        this.version++
        return ok(null)
      case 'removeNode':
        return this.#removeNode(cmd.id)
      case 'movePartition':
        return this.#movePartition(cmd)
      case 'partitionConf':
        return this.#partitionConf(cmd)
      default:
        return fail('INVALID_REQUEST', `entry ${index} has unknown metadata op`)
    }
  }

  #createTopic(index: number, cmd: Extract<MetadataCommand, { op: 'createTopic' }>): MetadataResult {
    if (this.topics.has(cmd.name)) return fail('TOPIC_EXISTS', `topic ${cmd.name} already exists`)
    assert(cmd.partitions >= 1 && cmd.replicas.length >= 1, 'createTopic validated by the leader')
    assert(cmd.assignments === undefined || cmd.assignments.length === cmd.partitions, 'createTopic: one assignment per partition')
    const partitions: PartitionAssignment[] = []
    for (let p = 0; p < cmd.partitions; p++) partitions.push({ partition: p, groupId: this.#nextGroupId++, replicas: cmd.assignments?.[p] ?? cmd.replicas })
    const topic: Topic = { name: cmd.name, config: cmd.config, partitions, createdAt: index }
    this.topics.set(cmd.name, topic)
    this.version++
    return ok({ topic })
  }

  #alterTopic(cmd: Extract<MetadataCommand, { op: 'alterTopic' }>): MetadataResult {
    const topic = this.topics.get(cmd.name)
    if (!topic) return fail('UNKNOWN_TOPIC', `topic ${cmd.name} does not exist`)
    const added = cmd.assignments ?? []
    if (!added.every((r) => r.length >= 1 && new Set(r).size === r.length)) return fail('INVALID_REQUEST', 'each added partition needs distinct replicas')
    const partitions = [...topic.partitions]
    for (const replicas of added) partitions.push({ partition: partitions.length, groupId: this.#nextGroupId++, replicas: [...replicas] })
    this.topics.set(cmd.name, { ...topic, config: cmd.config ?? topic.config, partitions })
    this.version++
    return ok({ topic: this.topics.get(cmd.name)! })
  }

  #movePartition(cmd: Extract<MetadataCommand, { op: 'movePartition' }>): MetadataResult {
    const topic = this.topics.get(cmd.name)
    if (!topic) return fail('UNKNOWN_TOPIC', `topic ${cmd.name} does not exist`)
    const at = topic.partitions.findIndex((p) => p.partition === cmd.partition)
    if (at < 0) return fail('UNKNOWN_PARTITION', `topic ${cmd.name} has no partition ${cmd.partition}`)
    const replicas = cmd.replicas
    if (replicas.length === 0 || new Set(replicas).size !== replicas.length || !replicas.every((n) => Number.isSafeInteger(n) && n > 0)) {
      return fail('INVALID_REQUEST', `replicas must be distinct node ids, got [${replicas.join(',')}]`)
    }
    const p = topic.partitions[at]!
    const { target: _gone, ...rest } = p
    const moved: PartitionAssignment = sameMembers(replicas, p.replicas) ? { ...rest, replicas: [...replicas] } : { ...rest, target: [...replicas] }
    this.#replacePartition(topic, at, moved)
    return ok({ topic: this.topics.get(cmd.name)! })
  }

  #partitionConf(cmd: Extract<MetadataCommand, { op: 'partitionConf' }>): MetadataResult {
    for (const topic of this.topics.values()) {
      const at = topic.partitions.findIndex((p) => p.groupId === cmd.groupId)
      if (at < 0) continue
      const p = topic.partitions[at]!
      if (cmd.confIndex <= (p.confIndex ?? 0)) return ok(null)
      // keep the order the operator or placement chose: the first replica is the preferred leader
      const order = p.target ?? p.replicas
      const voters = [...order.filter((n) => cmd.voters.includes(n)), ...[...cmd.voters].filter((n) => !order.includes(n)).sort((a, b) => a - b)]
      const { target, ...rest } = p
      const done = target !== undefined && sameMembers(target, voters)
      this.#replacePartition(topic, at, { ...rest, replicas: voters, confIndex: cmd.confIndex, ...(target !== undefined && !done ? { target } : {}) })
      return ok(null)
    }
    // the topic was deleted meanwhile: nothing to record
    return ok(null)
  }

  #replacePartition(topic: Topic, at: number, p: PartitionAssignment): void {
    const partitions = [...topic.partitions]
    partitions[at] = p
    this.topics.set(topic.name, { ...topic, partitions })
    this.version++
  }

  #removeNode(id: number): MetadataResult {
    if (!this.added.has(id)) return fail('INVALID_NODE', `node ${id} was not added to the running cluster (nodes started with --peers leave it by a restart without them)`)
    const hosted = this.groups().filter(({ assignment: a }) => a.replicas.includes(id) || (a.target?.includes(id) ?? false))
    if (hosted.length > 0) {
      const names = hosted.slice(0, 3).map(({ topic, assignment }) => `${topic.name}/${assignment.partition}`)
      return fail('INVALID_NODE', `node ${id} still holds ${hosted.length} partition replica${hosted.length === 1 ? '' : 's'} (${names.join(', ')}${hosted.length > 3 ? ', …' : ''}): drain it first (raftmq node drain ${id})`)
    }
    this.added.delete(id)
    this.nodes.delete(id)
    this.version++
    return ok(null)
  }

  #deleteTopic(name: string): MetadataResult {
    const topic = this.topics.get(name)
    if (!topic) return fail('UNKNOWN_TOPIC', `topic ${name} does not exist`)
    this.topics.delete(name)
    this.version++
    return ok({ deleted: topic })
  }

  /** The whole state as bytes (the controller's saved state); `restore` gives it back. */
  snapshot(): Uint8Array {
    return new Uint8Array(
      packr.pack({
        v: 3,
        appliedIndex: this.appliedIndex,
        topics: [...this.topics.values()],
        nodes: [...this.nodes.values()],
        added: [...this.added.values()],
        nextGroupId: this.#nextGroupId,
        nextProducerId: this.#nextProducerId,
      }),
    )
  }

  /** The state `snapshot()` described; bytes of another shape are refused. */
  static restore(bytes: Uint8Array): Result<MetadataStateMachine, 'MALFORMED_SNAPSHOT'> {
    let s: { v?: unknown; appliedIndex?: unknown; topics?: unknown; nodes?: unknown; added?: unknown; nextGroupId?: unknown; nextProducerId?: unknown }
    try {
      s = packr.unpack(bytes) as typeof s
    } catch {
      return fail('MALFORMED_SNAPSHOT', 'metadata snapshot: not msgpack')
    }
    // version 1 was written before clusters: it has no nodes; version 2 before nodes could be added
    if (s === null || typeof s !== 'object' || (s.v !== 1 && s.v !== 2 && s.v !== 3) || (s.v !== 1 && !Array.isArray(s.nodes)) || (s.v === 3 && !Array.isArray(s.added)) || !Number.isSafeInteger(s.appliedIndex) || !Array.isArray(s.topics) || !Number.isSafeInteger(s.nextGroupId) || !Number.isSafeInteger(s.nextProducerId)) {
      return fail('MALFORMED_SNAPSHOT', 'metadata snapshot: unknown version or missing fields')
    }
    const m = new MetadataStateMachine()
    for (const t of s.topics as Topic[]) {
      if (typeof t?.name !== 'string' || !Array.isArray(t.partitions)) return fail('MALFORMED_SNAPSHOT', 'metadata snapshot: a topic without name or partitions')
      m.topics.set(t.name, t)
    }
    for (const n of (s.nodes ?? []) as NodeRecord[]) {
      if (!Number.isSafeInteger(n?.id) || typeof n.host !== 'string' || !Number.isSafeInteger(n.port)) return fail('MALFORMED_SNAPSHOT', 'metadata snapshot: a node without id, host or port')
      m.nodes.set(n.id, n)
    }
    for (const n of (s.added ?? []) as PeerRecord[]) {
      if (!Number.isSafeInteger(n?.id) || typeof n.host !== 'string' || !Number.isSafeInteger(n.port)) return fail('MALFORMED_SNAPSHOT', 'metadata snapshot: an added node without id, host or port')
      m.added.set(n.id, n)
    }
    m.appliedIndex = s.appliedIndex as number
    m.#nextGroupId = s.nextGroupId as number
    m.#nextProducerId = s.nextProducerId as number
    return ok(m)
  }

  /** Every group id in use, for the node to open at start. */
  groups(): { topic: Topic; assignment: PartitionAssignment }[] {
    const out: { topic: Topic; assignment: PartitionAssignment }[] = []
    for (const topic of this.topics.values()) for (const a of topic.partitions) out.push({ topic, assignment: a })
    return out
  }
}
