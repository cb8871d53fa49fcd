import { describe, expect, it } from 'vitest'
import { ConfChangeOp, MessageType, Role } from '../../src/raft/index.js'
import { TestCluster, bytes } from '../support/cluster.js'

const ids = [1, 2, 3] as const

/** A 3-node group led by 1 that committed 'a' everywhere and went quiet. */
function quietGroup(quiesce = true): TestCluster {
  const c = new TestCluster({ ids, seed: 5, raft: { quiesce, electionTicks: 10, heartbeatTicks: 1 } })
  c.elect(1)
  c.node(1).propose([bytes('a')])
  c.stabilize()
  c.tickStabilize(3)
  return c
}

/** Messages delivered while the cluster ticks `n` times. */
function trafficOver(c: TestCluster, n: number): number {
  c.recordDelivered = true
  c.delivered.length = 0
  c.tickStabilize(n)
  c.recordDelivered = false
  return c.delivered.length
}

describe('raft quiescence', () => {
  it('an idle group whose followers hold the whole log goes quiet: no messages at all while it ticks', () => {
    const c = quietGroup()
    for (const id of ids) expect(c.node(id).quiet, `node ${id}`).toBe(true)
    expect(trafficOver(c, 500)).toBe(0)
    expect(c.node(1).status()).toMatchObject({ role: Role.Leader, leader: 1 })
    for (const id of ids) expect(c.appliedData(id)).toEqual(['a'])
  })

  it('without the option, heartbeats never stop', () => {
    const c = quietGroup(false)
    for (const id of ids) expect(c.node(id).quiet).toBe(false)
    expect(trafficOver(c, 20)).toBeGreaterThanOrEqual(2 * 2 * 20)
  })

  it('a proposal wakes it: the entry commits and applies everywhere, and the group goes quiet again', () => {
    const c = quietGroup()
    c.node(1).propose([bytes('b')])
    expect(c.node(1).quiet).toBe(false)
    c.stabilize()
    for (const id of ids) expect(c.appliedData(id)).toEqual(['a', 'b'])
    c.tickStabilize(3)
    for (const id of ids) expect(c.node(id).quiet, `node ${id}`).toBe(true)
    expect(c.node(1).status().term).toBe(c.node(2).status().term)
  })

  it('does not go quiet while a follower is behind, and heartbeats keep probing it', () => {
    const c = quietGroup()
    c.isolate(3)
    c.node(1).propose([bytes('b')])
    c.stabilize()
    expect(trafficOver(c, 30)).toBeGreaterThan(0)
    expect(c.node(1).quiet).toBe(false)
    c.heal()
    c.tickStabilize(5)
    expect(c.appliedData(3)).toEqual(['a', 'b'])
    for (const id of ids) expect(c.node(id).quiet, `node ${id}`).toBe(true)
  })

  it('a quiet follower never notices a dead leader by itself; peerDown makes it elect a new one within an election timeout or two', () => {
    const c = quietGroup()
    const term = c.node(2).status().term
    c.stop(1)
    c.tickStabilize(200)
    expect(c.node(2).status()).toMatchObject({ role: Role.Follower, leader: 1, term })
    expect(c.node(3).status()).toMatchObject({ role: Role.Follower, leader: 1, term })
    c.node(2).peerDown(1)
    c.node(3).peerDown(1)
    const ticks = c.tickUntil(() => c.leader() !== undefined && c.leader()!.id !== 1, 100)
    expect(ticks).toBeLessThanOrEqual(2 * 10 + 2)
    const leader = c.leader()!
    expect(leader.status().term).toBe(term + 1)
    leader.propose([bytes('b')])
    c.stabilize()
    for (const id of [2, 3]) expect(c.appliedData(id)).toEqual(['a', 'b'])
  })

  it('a follower that missed the request to go quiet campaigns, which wakes the leader; it keeps its leadership and term and all go quiet', () => {
    const c = new TestCluster({ ids, seed: 5, raft: { quiesce: true, electionTicks: 10, heartbeatTicks: 1 } })
    c.elect(1)
    c.node(1).propose([bytes('a')])
    c.stabilize()
    const term = c.node(1).status().term
    c.filter = (m) => !(m.type === MessageType.Heartbeat && m.quiesce && m.to === 3)
    c.tickStabilize(3)
    expect(c.node(1).quiet).toBe(true)
    expect(c.node(3).quiet).toBe(false)
    c.filter = () => true
    c.tickStabilize(40)
    for (const id of ids) expect(c.node(id).status(), `node ${id}`).toMatchObject({ leader: 1, term })
    for (const id of ids) expect(c.node(id).quiet, `node ${id}`).toBe(true)
  })

  it('a quiet leader cut off from the others steps down within an election timeout of hearing they are gone, and they elect another', () => {
    const c = quietGroup()
    c.isolate(1)
    for (const id of [2, 3]) c.node(id).peerDown(1)
    c.node(1).peerDown(2)
    c.node(1).peerDown(3)
    c.tickStabilize(25)
    expect(c.node(1).status().role).not.toBe(Role.Leader) // and campaigns in vain, cut off
    const leader = c.leader()
    expect(leader).toBeDefined()
    expect([2, 3]).toContain(leader!.id)
  })

  it('a follower whose leader is alive stays quiet when another member goes down; the leader wakes and stays awake while it is gone', () => {
    const c = quietGroup()
    c.stop(3)
    c.node(2).peerDown(3)
    expect(c.node(2).quiet).toBe(true)
    c.node(1).peerDown(3)
    expect(c.node(1).quiet).toBe(false)
    c.tickStabilize(30)
    expect(c.node(1).quiet).toBe(false)
    expect(c.node(1).status().role).toBe(Role.Leader) // 2 still answers: the quorum holds
  })

  it('a leadership transfer wakes the group and completes', () => {
    const c = quietGroup()
    c.node(1).transferLeader(2)
    c.stabilize()
    c.tickStabilize(3)
    expect(c.leader()?.id).toBe(2)
  })

  it('a removed voter that never learned of its removal campaigns in vain: the group stays quiet, its leader and term unchanged', () => {
    const c = quietGroup()
    c.isolate(3)
    c.node(3).peerDown(1) // its failure detector lost the leader: it wakes and campaigns
    expect(c.node(1).proposeConfChange({ op: ConfChangeOp.RemoveVoter, nodeId: 3 }).ok).toBe(true)
    c.stabilize()
    c.tickStabilize(5)
    expect(c.node(1).status().voters).toEqual([1, 2])
    for (const id of [1, 2]) expect(c.node(id).quiet, `node ${id}`).toBe(true)
    const term = c.node(1).status().term
    c.heal()
    c.recordDelivered = true
    c.tickStabilize(300)
    expect(c.delivered.filter((m) => m.from === 3).length).toBeGreaterThan(0) // it did campaign
    expect(c.delivered.filter((m) => m.from !== 3).every((m) => m.to === 3)).toBe(true) // only answers to it
    for (const id of [1, 2]) expect(c.node(id).quiet, `node ${id}`).toBe(true)
    expect(c.node(1).status()).toMatchObject({ role: Role.Leader, term })
    expect(c.node(2).status()).toMatchObject({ leader: 1, term })
  })
})
