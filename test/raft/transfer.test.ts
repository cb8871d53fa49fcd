import { describe, expect, it } from 'vitest'
import { ConfChangeOp, MessageType, Role } from '../../src/raft/index.js'
import { TestCluster, bytes } from '../support/cluster.js'

describe('raft transfer - leadership transfer', () => {
  // thesis §3.10: the leader brings the target up to date, then sends TimeoutNow; the target wins at once
  it('makes a caught-up target leader at the next term', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 8 })
    c.elect(1)
    c.node(1).propose([bytes('a')])
    c.stabilize()
    const term = c.node(1).status().term
    c.recordDelivered = true
    expect(c.node(1).transferLeader(3).ok).toBe(true)
    c.stabilize()
    expect(c.delivered.filter((m) => m.type === MessageType.TimeoutNow).map((m) => [m.from, m.to])).toEqual([[1, 3]])
    expect(c.node(3).status()).toMatchObject({ role: Role.Leader, term: term + 1 })
    expect(c.node(1).status()).toMatchObject({ role: Role.Follower, term: term + 1, leader: 3 })
    // no pre-vote round was needed, and the leases of followers did not block it
    expect(c.delivered.some((m) => m.type === MessageType.PreVote)).toBe(false)
    c.node(3).propose([bytes('b')])
    c.stabilize()
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(['a', 'b'])
  })

  // thesis §3.10 step 1: a lagging target is first caught up; proposals are refused meanwhile so it can catch up
  it('catches a lagging target up first and refuses proposals during the transfer', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 8 })
    c.elect(1)
    c.filter = (m) => m.to !== 3
    for (let i = 0; i < 5; i++) {
      c.node(1).propose([bytes(`x${i}`)])
      c.stabilize()
    }
    expect(c.appliedData(3)).toEqual([])
    c.heal()
    c.recordDelivered = true
    expect(c.node(1).transferLeader(3).ok).toBe(true)
    const refused = c.node(1).propose([bytes('no')])
    expect(refused.ok).toBe(false)
    if (!refused.ok) expect(refused.error.code).toBe('TRANSFER_IN_PROGRESS')
    expect(c.node(1).proposeConfChange({ op: ConfChangeOp.AddVoter, nodeId: 9 }).ok).toBe(false)
    c.stabilize()
    // TimeoutNow went only after an append brought 3 up to date
    const firstTimeoutNow = c.delivered.findIndex((m) => m.type === MessageType.TimeoutNow)
    const catchUp = c.delivered.findIndex((m) => m.type === MessageType.App && m.to === 3 && m.entries.length > 0)
    expect(catchUp).toBeGreaterThanOrEqual(0)
    expect(firstTimeoutNow).toBeGreaterThan(catchUp)
    expect(c.node(3).isLeader()).toBe(true)
    expect(c.log(3).map((e) => e.term).slice(0, -1)).toEqual(c.log(1).map((e) => e.term).slice(0, -1))
    expect(c.appliedData(3)).toEqual(['x0', 'x1', 'x2', 'x3', 'x4'])
  })

  // thesis §3.10: "if the transfer does not complete within an election timeout, the leader aborts it"
  it('aborts a transfer to an unreachable target after an election timeout', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 8, raft: { electionTicks: 10 } })
    c.elect(1)
    const term = c.node(1).status().term
    c.isolate(3)
    expect(c.node(1).transferLeader(3).ok).toBe(true)
    c.stabilize()
    let ticks = 0
    while (!c.node(1).propose([bytes('p')]).ok) {
      expect(ticks).toBeLessThan(10)
      c.tickAll()
      c.stabilize()
      ticks++
    }
    expect(ticks).toBeGreaterThanOrEqual(9) // refused for (about) one election timeout
    c.stabilize()
    expect(c.node(1).status()).toMatchObject({ role: Role.Leader, term })
    expect(c.appliedData(2)).toEqual(['p'])
  })

  // thesis §3.10: only the leader transfers, only to a voter
  it('refuses to transfer to a non-voter and is a no-op for the leader itself', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 8 })
    c.elect(1)
    const r = c.node(1).transferLeader(7)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.code).toBe('NOT_A_VOTER')
    expect(c.node(1).transferLeader(1).ok).toBe(true)
    expect(c.node(1).propose([bytes('ok')]).ok).toBe(true)
    const f = c.node(2).transferLeader(3)
    expect(f.ok).toBe(false)
    if (!f.ok) expect(f.error.code).toBe('NOT_LEADER')
  })
})
