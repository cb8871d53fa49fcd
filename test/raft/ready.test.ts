import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { MemoryStorage, MessageType, RaftNode } from '../../src/raft/index.js'
import type { Message, NodeId, Ready } from '../../src/raft/index.js'
import { TestCluster, bytes, follow } from '../support/cluster.js'

const AFTER_PERSIST: readonly MessageType[] = [MessageType.Vote, MessageType.VoteResp, MessageType.AppResp]

const dec = new TextDecoder()
const texts = (ents: readonly { data: Uint8Array }[]): string[] => ents.filter((e) => e.data.byteLength > 0).map((e) => dec.decode(e.data))

describe('raft ready - persistence ordering', () => {
  // Figure 2 ("Persistent state ... updated on stable storage before responding to RPCs"), §5.2, §5.3:
  // requests and answers that promise durable state leave only after the Ready is persisted
  it('vote requests, votes and append acknowledgements are only in messagesAfterPersist', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 4, raft: { preVote: false } })
    const early: Message[] = []
    const late: Message[] = []
    const readies: { id: NodeId; rd: Ready }[] = []
    c.onReady = (id, rd) => {
      early.push(...rd.messages)
      late.push(...rd.messagesAfterPersist)
      readies.push({ id, rd })
    }
    c.elect(1)
    c.node(1).propose([bytes('a'), bytes('b')])
    c.stabilize()
    c.tickStabilize(3)
    c.stop(1)
    c.tickUntil(() => c.leader() !== undefined, 300)
    c.leader()!.propose([bytes('c')])
    c.stabilize()

    expect(early.filter((m) => AFTER_PERSIST.includes(m.type))).toEqual([])
    const lateTypes = new Set(late.map((m) => m.type))
    for (const t of AFTER_PERSIST) expect(lateTypes.has(t)).toBe(true)
    // while App and Heartbeat may go at once
    expect(early.some((m) => m.type === MessageType.App)).toBe(true)
    expect(early.some((m) => m.type === MessageType.Heartbeat)).toBe(true)
    // and the vote being promised is in the same Ready's hard state
    for (const { id, rd } of readies) {
      for (const m of rd.messagesAfterPersist) {
        if (m.type === MessageType.Vote) expect(rd.hardState).toMatchObject({ term: m.term, vote: id })
        if (m.type === MessageType.VoteResp && !m.reject) expect(rd.hardState).toMatchObject({ term: m.term, vote: m.to })
      }
    }
  })

  // an acknowledgement sent before its entries are durable would let a leader commit an entry a crash can lose (§5.3/Figure 2)
  it("a follower's acknowledgement travels with the Ready that persists the entries it acknowledges", () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 4 })
    c.elect(1)
    let checked = 0
    c.onReady = (id, rd) => {
      if (id === 1) return
      const last = rd.entries.length > 0 ? rd.entries[rd.entries.length - 1]!.index : 0
      for (const m of rd.messagesAfterPersist) {
        if (m.type !== MessageType.AppResp || m.reject || last === 0) continue
        expect(m.index).toBe(last)
        checked++
      }
    }
    c.node(1).propose([bytes('x')])
    c.stabilize()
    expect(checked).toBe(2)
  })

  // Figure 2 / §5.3 with the leader's own log counted: an entry commits only once it is durable on a majority,
  // and a single node's own write is not durable before advance()
  it("a single node's proposal is committed only in a Ready after the one that persists it", () => {
    const st = new MemoryStorage([1])
    const n = new RaftNode({ id: 1, storage: st, prng: new Prng(1) })
    n.campaign()
    for (let i = 0; i < 5 && !n.isLeader(); i++) follow(n, st)
    expect(n.isLeader()).toBe(true)
    while (n.hasReady()) follow(n, st) // commit the leader's empty entry
    const r = n.propose([bytes('x')])
    expect(r.ok).toBe(true)
    const rd1 = follow(n, st)
    expect(texts(rd1.entries)).toEqual(['x'])
    expect(texts(rd1.committedEntries)).toEqual([])
    expect(n.status().commit).toBe(r.ok ? r.value.lastIndex : -1)
    const rd2 = follow(n, st)
    expect(rd2.entries).toEqual([])
    expect(texts(rd2.committedEntries)).toEqual(['x'])
    expect(rd2.hardState?.commit).toBe(r.ok ? r.value.lastIndex : -1)
  })

  // §5.3: a leader of a larger cluster likewise counts its own copy only after advance()
  it("the leader's own entry does not count before its Ready is advanced", () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 4 })
    c.elect(1)
    const lead = c.node(1)
    const before = lead.status().commit
    lead.propose([bytes('x')])
    const rd = lead.ready()
    expect(texts(rd.entries)).toEqual(['x'])
    // deliver the appends and let one follower persist and acknowledge before the leader's write is done
    for (const m of rd.messages) if (m.to === 2) c.deliver(m)
    const f = c.node(2)
    const acks = c.handleReady(2, f.ready())
    for (const m of acks) c.deliver(m)
    // only one durable copy (node 2) of 3: nothing new commits
    expect(lead.status().commit).toBe(before)
    c.handleReady(1, rd) // persist and advance
    expect(lead.status().commit).toBe(before + 1)
  })
})

describe('raft ready - crash in the middle of a Ready', () => {
  // thesis §10.2.1: the leader may send appends before its own write is durable; if it crashes
  // before the write, the entry can still commit on a majority of followers and is not lost
  it('a leader that crashes before persisting its own entry does not lose it once followers have it', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 4 })
    c.elect(1)
    c.node(1).propose([bytes('x')])
    const rd = c.node(1).ready()
    expect(texts(rd.entries)).toEqual(['x'])
    for (const m of rd.messages) c.deliver(m) // sent at once ...
    c.stop(1) // ... then the crash, before anything was written
    c.stabilize()
    expect(texts(c.log(1))).toEqual([])
    c.tickUntil(() => c.leader() !== undefined, 300)
    c.restart(1)
    c.tickStabilize(3)
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(['x'])
  })

  // Figure 2 ("respond after persisting"): a follower that crashes before its write has not acknowledged,
  // so the leader does not count it
  it('a follower that crashes before persisting was never counted', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 4 })
    c.elect(1)
    c.isolate(3)
    const commit = c.node(1).status().commit
    c.node(1).propose([bytes('x')])
    for (const m of c.handleReady(1, c.node(1).ready())) c.deliver(m)
    const frd = c.node(2).ready()
    expect(texts(frd.entries)).toEqual(['x'])
    c.stop(2) // crash before the write: frd.messagesAfterPersist are never sent
    c.stabilize()
    expect(c.node(1).status().commit).toBe(commit)
    expect(c.appliedData(1)).toEqual([])
    c.restart(2)
    c.tickStabilize(3)
    expect(c.appliedData(1)).toEqual(['x'])
    expect(c.appliedData(2)).toEqual(['x'])
  })

  // negative control for the test above: acknowledging before persisting lets the leader commit an entry
  // that exists durably only on the leader
  it('with unsafe.ackBeforePersist the leader commits on an acknowledgement the crash then loses', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 4, raft: { unsafe: { ackBeforePersist: true } } })
    c.elect(1)
    c.isolate(3)
    const commit = c.node(1).status().commit
    c.node(1).propose([bytes('x')])
    for (const m of c.handleReady(1, c.node(1).ready())) c.deliver(m)
    const frd = c.node(2).ready()
    const early = frd.messages.filter((m) => m.type === MessageType.AppResp)
    expect(early).toHaveLength(1)
    for (const m of frd.messages) c.deliver(m) // the host sends `messages` at once ...
    c.stop(2) // ... and crashes before the write
    c.stabilize()
    expect(c.node(1).status().commit).toBe(commit + 1)
    expect(c.appliedData(1)).toEqual(['x'])
    expect(texts(c.log(2))).toEqual([]) // committed, yet durable on one node of three
  })
})

describe('raft ready - group commit', () => {
  // §10.2.1 of the thesis (batching): proposals made while the host persists go into the next Ready together
  it('proposals during an outstanding Ready all go into the next Ready', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 4 })
    c.elect(1)
    const lead = c.node(1)
    expect(lead.propose([bytes('a')]).ok).toBe(true)
    const rd1 = lead.ready()
    expect(texts(rd1.entries)).toEqual(['a'])
    // while rd1 is being persisted: more proposals succeed, no second Ready is handed out
    for (const d of ['b', 'c', 'd']) expect(lead.propose([bytes(d)]).ok).toBe(true)
    expect(lead.hasReady()).toBe(false)
    expect(() => lead.ready()).toThrow()
    const out = c.handleReady(1, rd1)
    expect(lead.hasReady()).toBe(true)
    const rd2 = lead.ready()
    expect(texts(rd2.entries)).toEqual(['b', 'c', 'd'])
    expect(rd2.mustSync).toBe(true)
    // and they are sent together: one append per follower carrying all three
    const apps = rd2.messages.filter((m) => m.type === MessageType.App && m.entries.length > 0)
    expect(apps.map((m) => m.to).sort()).toEqual([2, 3])
    for (const m of apps) expect(texts(m.entries)).toEqual(['b', 'c', 'd'])
    for (const m of [...out, ...c.handleReady(1, rd2)]) c.deliver(m)
    c.stabilize()
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(['a', 'b', 'c', 'd'])
  })

  // the same batching on a follower: appends stepped during an outstanding Ready are persisted with one write
  it('a follower persists appends that arrived during an outstanding Ready in one next Ready', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 4 })
    c.elect(1)
    const lead = c.node(1)
    const f = c.node(2)
    lead.propose([bytes('a')])
    const apps1 = c.handleReady(1, lead.ready()).filter((m) => m.to === 2 && m.type === MessageType.App)
    for (const m of apps1) c.deliver(m)
    const frd1 = f.ready() // outstanding
    expect(texts(frd1.entries)).toEqual(['a'])
    lead.propose([bytes('b')])
    const apps2 = c.handleReady(1, lead.ready()).filter((m) => m.to === 2 && m.type === MessageType.App)
    lead.propose([bytes('c')])
    const apps3 = c.handleReady(1, lead.ready()).filter((m) => m.to === 2 && m.type === MessageType.App)
    for (const m of [...apps2, ...apps3]) c.deliver(m)
    c.handleReady(2, frd1)
    const frd2 = f.ready()
    expect(texts(frd2.entries)).toEqual(['b', 'c'])
    const acks = frd2.messagesAfterPersist.filter((m) => m.type === MessageType.AppResp)
    expect(Math.max(...acks.map((m) => m.index))).toBe(frd2.entries[frd2.entries.length - 1]!.index)
    c.handleReady(2, frd2)
  })
})
