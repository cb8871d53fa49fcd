/**
 * A synchronous in-memory cluster for scenario tests and benchmarks: each node is a
 * RaftNode over a MemoryStorage, and `stabilize()` follows every Ready (persist, send,
 * apply, advance) and delivers every message until nothing moves. Messages can be
 * dropped with a filter (partitions, isolation); the simulator in test/sim is the
 * randomised, fault-injecting big brother of this.
 */
import { Prng } from '../../src/base/index.js'
import { EntryType, MemoryStorage, RaftNode, blankMessage } from '../../src/raft/index.js'
import type { Entry, HardState, Message, NodeId, RaftOptions, Ready } from '../../src/raft/index.js'

export interface ClusterOptions {
  readonly ids: readonly NodeId[]
  readonly seed?: number
  /** Overrides for every node's RaftOptions. */
  readonly raft?: Partial<Omit<RaftOptions, 'id' | 'storage' | 'prng'>>
  /** Voters of the initial configuration (default: all ids). */
  readonly voters?: readonly NodeId[]
  /** Storages prepared by the test (a log, a hard state) for some ids; the others start empty. */
  readonly storages?: ReadonlyMap<NodeId, MemoryStorage>
}

export type MessageFilter = (m: Message) => boolean

export class TestCluster {
  readonly nodes = new Map<NodeId, RaftNode>()
  readonly storages = new Map<NodeId, MemoryStorage>()
  /** Entries each node applied, in order. */
  readonly applied = new Map<NodeId, Entry[]>()
  /** Every message delivered, for assertions on traffic. */
  readonly delivered: Message[] = []
  /** Return false to drop a message. */
  filter: MessageFilter = () => true
  recordDelivered = false
  /** Applied to every message that passes the filter, before delivery (to strip or alter it). */
  rewrite: ((m: Message) => Message) | null = null
  /** Called with every Ready the cluster follows, before it is persisted. */
  onReady: ((id: NodeId, rd: Ready) => void) | null = null
  readonly #opts: ClusterOptions
  readonly #prng: Prng

  constructor(opts: ClusterOptions) {
    this.#opts = opts
    this.#prng = new Prng(opts.seed ?? 1)
    for (const id of opts.ids) this.start(id, opts.storages?.get(id) ?? new MemoryStorage(opts.voters ?? opts.ids))
  }

  start(id: NodeId, storage: MemoryStorage): RaftNode {
    const node = new RaftNode({ id, storage, prng: this.#prng.fork(), ...this.#opts.raft })
    this.nodes.set(id, node)
    this.storages.set(id, storage)
    if (!this.applied.has(id)) this.applied.set(id, [])
    return node
  }

  /** Crash: the node and anything not persisted are gone. */
  stop(id: NodeId): void {
    this.nodes.delete(id)
  }

  /** Restart from what the node persisted. */
  restart(id: NodeId): RaftNode {
    const storage = this.storages.get(id)!
    this.applied.set(id, [])
    return this.start(id, storage)
  }

  node(id: NodeId): RaftNode {
    const n = this.nodes.get(id)
    if (!n) throw new Error(`node ${id} is not running`)
    return n
  }

  leader(): RaftNode | undefined {
    for (const n of this.nodes.values()) if (n.isLeader()) return n
    return undefined
  }

  /** Every running leader (more than one only while a deposed leader has not heard of the new term). */
  leaders(): RaftNode[] {
    return [...this.nodes.values()].filter((n) => n.isLeader())
  }

  /** Isolates `id`: drops everything to and from it. */
  isolate(id: NodeId): void {
    this.filter = (m) => m.from !== id && m.to !== id
  }

  /** Splits the cluster: messages cross no group boundary (ids in no group are isolated). */
  partition(...groups: (readonly NodeId[])[]): void {
    const groupOf = new Map<NodeId, number>()
    groups.forEach((g, k) => g.forEach((id) => groupOf.set(id, k)))
    this.filter = (m) => groupOf.has(m.from) && groupOf.get(m.from) === groupOf.get(m.to)
  }

  heal(): void {
    this.filter = () => true
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) for (const node of this.nodes.values()) node.tick()
  }

  /**
   * Follows one Ready of node `id` as a host does: persist the snapshot, entries and hard
   * state, apply, advance. Returns the messages to send (`messages` first, then
   * `messagesAfterPersist`, which only now may leave).
   */
  handleReady(id: NodeId, rd: Ready): Message[] {
    const node = this.node(id)
    if (this.onReady) this.onReady(id, rd)
    const out: Message[] = [...rd.messages]
    const st = this.storages.get(id)!
    st.persist(rd)
    for (const m of rd.messagesAfterPersist) out.push(m)
    const applied = this.applied.get(id)!
    if (rd.snapshot) applied.length = 0
    for (const e of rd.committedEntries) applied.push(e)
    node.advance()
    return out
  }

  /** Follows Readies and delivers messages until the cluster is quiet. Returns the number of rounds. */
  stabilize(roundsMax = 10_000): number {
    for (let round = 0; round < roundsMax; round++) {
      const out: Message[] = []
      let moved = false
      for (const [id, node] of this.nodes) {
        if (!node.hasReady()) continue
        moved = true
        for (const m of this.handleReady(id, node.ready())) out.push(m)
      }
      for (const m of out) this.deliver(m)
      if (!moved && out.length === 0) return round
    }
    throw new Error(`cluster did not stabilize in ${roundsMax} rounds`)
  }

  /** Ticks every node and stabilizes, `n` times. */
  tickStabilize(n = 1): void {
    for (let i = 0; i < n; i++) {
      this.tickAll()
      this.stabilize()
    }
  }

  /** Ticks and stabilizes until `pred` holds; throws after `ticksMax` ticks. Returns the ticks taken. */
  tickUntil(pred: () => boolean, ticksMax = 1_000): number {
    for (let t = 0; t < ticksMax; t++) {
      if (pred()) return t
      this.tickAll()
      this.stabilize()
    }
    if (pred()) return ticksMax
    throw new Error(`condition not reached in ${ticksMax} ticks`)
  }

  deliver(m: Message): void {
    if (!this.filter(m)) return
    if (this.rewrite) m = this.rewrite(m)
    const to = this.nodes.get(m.to)
    if (!to) return
    if (this.recordDelivered) this.delivered.push(m)
    to.step(m)
  }

  /** Elects `id` by making it campaign, then stabilizes. */
  elect(id: NodeId): RaftNode {
    this.node(id).campaign()
    this.stabilize()
    return this.node(id)
  }

  /** The data of every applied non-empty entry on node `id`, decoded as UTF-8. */
  appliedData(id: NodeId): string[] {
    const dec = new TextDecoder()
    return this.applied.get(id)!.filter((e) => e.data.byteLength > 0 && e.type === 0).map((e) => dec.decode(e.data))
  }

  /** The entries node `id` has persisted (after its snapshot). After stabilize() this is its whole log. */
  log(id: NodeId): Entry[] {
    const st = this.storages.get(id)!
    const first = st.firstIndex()
    const last = st.lastIndex()
    return last < first ? [] : st.entries(first, last + 1, Number.MAX_SAFE_INTEGER)
  }

  /** The terms of node `id`'s persisted log, index firstIndex first. */
  terms(id: NodeId): number[] {
    return this.log(id).map((e) => e.term)
  }
}

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s)
}

/**
 * A storage whose log already holds entries 1..terms.length with the given terms (entry
 * i carries the data "i@term"), and the given hard state (term defaults to the last
 * entry's term). For building the paper's figures before a node starts.
 */
export function storageWithLog(voters: readonly NodeId[], terms: readonly number[], hs: Partial<HardState> = {}): MemoryStorage {
  const st = new MemoryStorage(voters)
  const ents: Entry[] = terms.map((term, k) => ({ term, index: k + 1, type: EntryType.Normal, data: bytes(`${k + 1}@${term}`) }))
  st.append(ents)
  const lastTerm = terms.length > 0 ? terms[terms.length - 1]! : 0
  st.setHardState({ term: hs.term ?? lastTerm, vote: hs.vote ?? 0, commit: hs.commit ?? 0 })
  return st
}

/** A message with every field zero or empty, with `fields` set: for stepping a node by hand. */
export function msg(fields: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message {
  return { ...blankMessage(fields.type, fields.from, fields.to, fields.term), ...fields }
}

/** Drives a lone node by hand (no TestCluster): persist its Ready, advance, return the Ready. */
export function follow(node: RaftNode, st: MemoryStorage): Ready {
  const rd = node.ready()
  st.persist(rd)
  node.advance()
  return rd
}
