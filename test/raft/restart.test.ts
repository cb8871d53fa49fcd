/**
 * The restart contract (issue 13): a state machine applies only committed entries
 * (Raft paper §5.3, Figure 2), so whatever the host applied, or its snapshot covers, was
 * committed, even when the commit-only hard state that preceded it was never synced.
 * The core starts `committed` at the largest of the durable commit index, the snapshot
 * index and the host's applied index; it refuses only an applied index beyond its log.
 */
import { describe, expect, it } from 'vitest'
import { AssertionError, Prng } from '../../src/base/index.js'
import { EntryType, MemoryStorage, MessageType, RaftNode } from '../../src/raft/index.js'
import type { Entry, Message, MessageType as MT, Ready } from '../../src/raft/index.js'
import { msg } from '../support/cluster.js'

const enc = new TextEncoder()
const dec = new TextDecoder()
const bytes = (s: string): Uint8Array => enc.encode(s)
const texts = (ents: readonly Entry[]): string[] => ents.filter((e) => e.data.byteLength > 0).map((e) => dec.decode(e.data))
const entry = (index: number, term: number, s: string): Entry => ({ index, term, type: EntryType.Normal, data: bytes(s) })

/** A message from leader 1 (term 1) to node 2; every other field zero or empty unless given. */
function fromLeader(type: MT, fields: Partial<Message>): Message {
  return msg({ type, from: 1, to: 2, term: 1, ...fields })
}

/**
 * A host whose log store syncs only when the Ready says so: a Ready with `mustSync`
 * false (a commit-only hard state) is written but not synced, and `crash()` loses it.
 */
class Host {
  readonly storage: MemoryStorage
  node: RaftNode
  /** The state machine: what it applied, in order, and its applied index (kept in a separate store). */
  readonly applied: string[] = []
  appliedIndex = 0
  #durableCommit = 0

  constructor(id: number, voters: readonly number[]) {
    this.storage = new MemoryStorage(voters)
    this.node = new RaftNode({ id, storage: this.storage, prng: new Prng(7) })
  }

  /** Follows one Ready (Ready contract steps 2-4); returns it. */
  follow(): Ready {
    const rd = this.node.ready()
    this.storage.persist(rd)
    if (rd.mustSync) this.#durableCommit = this.storage.hardState().commit
    for (const e of rd.committedEntries) {
      this.applied.push(...texts([e]))
      this.appliedIndex = e.index
    }
    this.node.advance()
    return rd
  }

  stabilize(): Ready[] {
    const out: Ready[] = []
    while (this.node.hasReady()) out.push(this.follow())
    return out
  }

  /** The process dies: the unsynced commit index is lost; the log, the snapshot and the applied state survive. */
  crash(): void {
    this.storage.setHardState({ ...this.storage.hardState(), commit: this.#durableCommit })
  }

  restart(id: number): RaftNode {
    this.node = new RaftNode({ id, storage: this.storage, prng: new Prng(8), applied: this.appliedIndex })
    return this.node
  }
}

describe('raft restart - applied state ahead of the durable commit index', () => {
  it('a follower that applied and snapshotted past an unsynced commit restarts, writes the commit as hard state and applies nothing twice', () => {
    const h = new Host(2, [1, 2, 3])
    // leader 1 sends entry 1; the follower persists it with a sync
    h.node.step(fromLeader(MessageType.App, { entries: [entry(1, 1, 'x')] }))
    const rd1 = h.follow()
    expect(rd1.mustSync).toBe(true)
    expect(rd1.entries.map((e) => e.index)).toEqual([1])
    expect(h.storage.hardState().commit).toBe(0)
    // a heartbeat commits entry 1: a commit-only hard state, not synced, and entry 1 is applied
    h.node.step(fromLeader(MessageType.Heartbeat, { commit: 1 }))
    const rd2 = h.follow()
    expect(rd2.mustSync).toBe(false)
    expect(rd2.hardState).toMatchObject({ commit: 1 })
    expect(texts(rd2.committedEntries)).toEqual(['x'])
    // the host snapshots at its applied index, without compacting
    h.storage.createSnapshot(1, h.node.confAt(1), bytes('x'))
    h.crash()
    // on disk: commit 0, a snapshot at 1, entry 1
    expect(h.storage.hardState().commit).toBe(0)
    expect(h.storage.snapshot().metadata.index).toBe(1)
    expect([h.storage.firstIndex(), h.storage.lastIndex()]).toEqual([1, 1])

    const n = h.restart(2)
    expect(n.status()).toMatchObject({ commit: 1, applied: 1, lastIndex: 1 })
    const [first, ...rest] = h.stabilize()
    // the first Ready makes the raised commit index the durable one again, and re-applies nothing
    expect(first!.hardState).toEqual({ term: 1, vote: 0, commit: 1 })
    expect(first!.committedEntries).toEqual([])
    expect(rest).toEqual([])
    expect(h.storage.hardState().commit).toBe(1)

    // replication carries on from there: entry 2 is applied once, entry 1 not again
    n.step(fromLeader(MessageType.App, { index: 1, logTerm: 1, entries: [entry(2, 1, 'y')], commit: 2 }))
    const after = h.stabilize()
    const acks = after.flatMap((rd) => rd.messagesAfterPersist).filter((m) => m.type === MessageType.AppResp)
    expect(acks.map((m) => [m.reject, m.index])).toEqual([[false, 2]])
    expect(h.applied).toEqual(['x', 'y'])
  })

  it('a lone voter that applied past its durable commit restarts, is elected again and applies only new entries', () => {
    const h = new Host(1, [1])
    h.node.campaign()
    h.stabilize() // elected; its empty entry 1 is committed and applied
    expect(h.node.isLeader()).toBe(true)
    expect(h.node.propose([bytes('a'), bytes('b')]).ok).toBe(true)
    h.stabilize()
    expect(h.applied).toEqual(['a', 'b'])
    expect(h.appliedIndex).toBe(3)
    h.crash()
    expect(h.storage.hardState().commit).toBeLessThan(3)
    expect(h.storage.snapshot().metadata.index).toBe(0)

    const n = h.restart(1)
    expect(n.status()).toMatchObject({ commit: 3, applied: 3, term: 1, vote: 1 })
    const first = h.follow()
    expect(first.hardState).toEqual({ term: 1, vote: 1, commit: 3 })
    expect(first.committedEntries).toEqual([])
    n.campaign()
    h.stabilize()
    expect(n.isLeader()).toBe(true)
    expect(n.propose([bytes('c')]).ok).toBe(true)
    h.stabilize()
    expect(h.applied).toEqual(['a', 'b', 'c'])
    expect(n.status()).toMatchObject({ term: 2, commit: 5, applied: 5 })
  })

  it('a host that applied less than the durable commit gets the rest handed out again', () => {
    const h = new Host(1, [1])
    h.node.campaign()
    h.stabilize()
    h.node.propose([bytes('a'), bytes('b')])
    h.stabilize()
    h.storage.setHardState({ ...h.storage.hardState(), commit: 3 }) // all synced
    h.appliedIndex = 2 // its state machine lost 'b'
    const n = h.restart(1)
    expect(n.status()).toMatchObject({ commit: 3, applied: 2 })
    expect(texts(h.follow().committedEntries)).toEqual(['b'])
  })

  it('refuses a state machine ahead of the last index of its log, saying acknowledged entries were lost', () => {
    const h = new Host(1, [1])
    h.node.campaign()
    h.stabilize()
    h.node.propose([bytes('a')])
    h.stabilize()
    expect(h.storage.lastIndex()).toBe(2)
    h.appliedIndex = 3
    expect(() => h.restart(1)).toThrow(AssertionError)
    expect(() => h.restart(1)).toThrow(/restart: applied 3 beyond the last index 2 of the log/)
    expect(() => h.restart(1)).toThrow(/lost/)
  })
})
