/**
 * A synchronous in-memory cluster for scenario tests and benchmarks: each node is a
 * RaftNode over a MemoryStorage, and `stabilize()` follows every Ready (persist, send,
 * apply, advance) and delivers every message until nothing moves. Messages can be
 * dropped with a filter (partitions, isolation); the simulator in test/sim is the
 * randomised, fault-injecting big brother of this.
 */
import { Prng } from '../../src/base/index.js'
import { MemoryStorage, RaftNode } from '../../src/raft/index.js'
import type { Entry, Message, NodeId, RaftOptions } from '../../src/raft/index.js'

export interface ClusterOptions {
  readonly ids: readonly NodeId[]
  readonly seed?: number
  /** Overrides for every node's RaftOptions. */
  readonly raft?: Partial<Omit<RaftOptions, 'id' | 'storage' | 'prng'>>
  /** Voters of the initial configuration (default: all ids). */
  readonly voters?: readonly NodeId[]
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
  readonly #opts: ClusterOptions
  readonly #prng: Prng

  constructor(opts: ClusterOptions) {
    this.#opts = opts
    this.#prng = new Prng(opts.seed ?? 1)
    for (const id of opts.ids) this.start(id, new MemoryStorage(opts.voters ?? opts.ids))
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

  /** Isolates `id`: drops everything to and from it. */
  isolate(id: NodeId): void {
    this.filter = (m) => m.from !== id && m.to !== id
  }

  heal(): void {
    this.filter = () => true
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) for (const node of this.nodes.values()) node.tick()
  }

  /** Follows Readies and delivers messages until the cluster is quiet. Returns the number of rounds. */
  stabilize(roundsMax = 10_000): number {
    for (let round = 0; round < roundsMax; round++) {
      const out: Message[] = []
      let moved = false
      for (const [id, node] of this.nodes) {
        if (!node.hasReady()) continue
        moved = true
        const rd = node.ready()
        for (const m of rd.messages) out.push(m)
        const st = this.storages.get(id)!
        if (rd.snapshot) st.applySnapshot(rd.snapshot)
        st.append(rd.entries)
        if (rd.hardState) st.setHardState(rd.hardState)
        for (const m of rd.messagesAfterPersist) out.push(m)
        const applied = this.applied.get(id)!
        if (rd.snapshot) applied.length = 0
        for (const e of rd.committedEntries) applied.push(e)
        node.advance()
      }
      for (const m of out) this.deliver(m)
      if (!moved && out.length === 0) return round
    }
    throw new Error(`cluster did not stabilize in ${roundsMax} rounds`)
  }

  deliver(m: Message): void {
    if (!this.filter(m)) return
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
}

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s)
}
