import { describe, expect, it } from 'vitest'
import { MessageType, Role } from '../../src/raft/index.js'
import type { RaftOptions } from '../../src/raft/index.js'
import { TestCluster, bytes } from '../support/cluster.js'

type Opts = Partial<Omit<RaftOptions, 'id' | 'storage' | 'prng'>>

/** Elects 1 in a 3-node cluster, isolates 3 and ticks for `ticks` ticks. */
function partitioned(raft: Opts, ticks: number): { c: TestCluster; term: number } {
  const c = new TestCluster({ ids: [1, 2, 3], seed: 11, raft })
  c.elect(1)
  c.node(1).propose([bytes('a')])
  c.stabilize()
  const term = c.node(1).status().term
  c.isolate(3)
  c.tickStabilize(ticks)
  return { c, term }
}

describe('raft election - pre-vote', () => {
  // thesis §9.6: a partitioned node's pre-vote fails, so it never raises its term
  it('a partitioned node keeps ticking without its term growing', () => {
    const { c, term } = partitioned({}, 200)
    const s3 = c.node(3).status()
    expect(s3.term).toBe(term)
    expect(s3.role).toBe(Role.PreCandidate) // it did try
    expect(c.node(1).status()).toMatchObject({ role: Role.Leader, term })
  })

  // thesis §9.6: after healing, the returning node does not disrupt the leader
  it('after healing, the leader and the term are unchanged and the node catches up', () => {
    const { c, term } = partitioned({}, 200)
    c.node(1).propose([bytes('b')])
    c.stabilize()
    c.heal()
    c.tickStabilize(30)
    for (const id of [1, 2, 3]) {
      expect(c.node(id).status()).toMatchObject({ term, leader: 1 })
      expect(c.appliedData(id)).toEqual(['a', 'b'])
    }
    expect(c.node(1).isLeader()).toBe(true)
  })

  // negative control: without pre-vote the isolated node's term runs away, and on healing it deposes the leader
  it('without pre-vote the same partition raises the term and disrupts the leader', () => {
    const { c, term } = partitioned({ preVote: false }, 200)
    expect(c.node(3).status().term).toBeGreaterThan(term + 3)
    c.heal()
    c.tickStabilize(30)
    const lead = c.leader()!
    expect(lead.status().term).toBeGreaterThan(term)
  })

  // thesis §9.6 with §6 leases: a node that hears from its leader ignores (pre-)vote requests
  it('followers ignore pre-votes while they hear from a leader', () => {
    const { c } = partitioned({}, 0)
    c.heal()
    c.recordDelivered = true
    c.node(3).campaign() // a forced pre-vote
    c.stabilize()
    const resps = c.delivered.filter((m) => m.type === MessageType.PreVoteResp && m.to === 3)
    expect(resps).toHaveLength(0)
    expect(c.node(1).isLeader()).toBe(true)
  })
})

describe('raft election - check-quorum', () => {
  // §6.2 / thesis §6.2: a leader that has not heard from a majority within an election timeout steps down
  it('an isolated leader steps down after an election timeout', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 2, raft: { electionTicks: 10 } })
    c.elect(1)
    c.isolate(1)
    c.tickAll(5)
    c.stabilize()
    expect(c.node(1).isLeader()).toBe(true)
    let ticks = 0
    while (c.node(1).isLeader() && ticks < 25) {
      c.node(1).tick()
      c.stabilize()
      ticks++
    }
    expect(c.node(1).status().role).toBe(Role.Follower)
    // it was 5 ticks in; it notices at its next check-quorum round (at most 2 election timeouts in all)
    expect(5 + ticks).toBeLessThanOrEqual(20)
  })

  // negative control: without check-quorum the isolated leader leads forever
  it('without check-quorum the isolated leader keeps leading', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 2, raft: { checkQuorum: false } })
    c.elect(1)
    c.isolate(1)
    for (let i = 0; i < 100; i++) c.node(1).tick()
    c.stabilize()
    expect(c.node(1).isLeader()).toBe(true)
  })

  // §6.2: a leader that hears from a majority keeps leading, even with one follower gone
  it('a leader with a live majority keeps leading', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 2 })
    c.elect(1)
    const term = c.node(1).status().term
    c.isolate(3)
    for (let i = 0; i < 100; i++) {
      c.node(1).tick()
      c.node(2).tick()
      c.stabilize()
    }
    expect(c.node(1).status()).toMatchObject({ role: Role.Leader, term })
  })
})
