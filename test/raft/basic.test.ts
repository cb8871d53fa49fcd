import { describe, expect, it } from 'vitest'
import { TestCluster, bytes } from '../support/cluster.js'

describe('raft - basic replication', () => {
  it('elects a leader and replicates a batch proposal to every node', () => {
    const c = new TestCluster({ ids: [1, 2, 3] })
    const leader = c.elect(1)
    expect(leader.isLeader()).toBe(true)
    const r = leader.propose([bytes('a'), bytes('b'), bytes('c')])
    expect(r.ok).toBe(true)
    c.stabilize()
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(['a', 'b', 'c'])
  })

  it('a single node elects itself and commits', () => {
    const c = new TestCluster({ ids: [1] })
    c.tickAll(30)
    c.stabilize()
    const n = c.node(1)
    expect(n.isLeader()).toBe(true)
    n.propose([bytes('x')])
    c.stabilize()
    expect(c.appliedData(1)).toEqual(['x'])
  })
})
