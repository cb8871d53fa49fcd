import { describe, expect, it } from 'vitest'
import { MessageType, ProgressState } from '../../src/raft/index.js'
import type { Message } from '../../src/raft/index.js'
import { TestCluster, bytes } from '../support/cluster.js'

/** Elects 1 (all followers replicating), then makes `n` proposals, one Ready each, while node 3's answers are lost. */
function silentFollower(n: number): { c: TestCluster; to3: Message[] } {
  const c = new TestCluster({ ids: [1, 2, 3], seed: 9, raft: { inflightMsgsMax: 4 } })
  c.elect(1)
  expect(c.node(1).status().progress.get(3)!.state).toBe(ProgressState.Replicate)
  const to3: Message[] = []
  c.filter = (m) => {
    if (m.to === 3 && m.type === MessageType.App && m.entries.length > 0) to3.push(m)
    return m.from !== 3
  }
  for (let i = 0; i < n; i++) {
    expect(c.node(1).propose([bytes(`p${i}`)]).ok).toBe(true)
    c.stabilize()
  }
  return { c, to3 }
}

describe('raft replication - pipelining', () => {
  // §10.2.2 of the thesis (pipelining): appends stream without waiting, within a bounded window
  it('keeps at most inflightMsgsMax appends outstanding to a follower that does not answer', () => {
    const { c, to3 } = silentFollower(20)
    expect(to3).toHaveLength(4)
    // the window was used: four distinct appends, each starting where the previous ended
    for (let k = 1; k < to3.length; k++) expect(to3[k]!.index).toBe(to3[k - 1]!.index + to3[k - 1]!.entries.length)
    // the answering follower got all 20 and the cluster committed them
    expect(c.appliedData(2)).toHaveLength(20)
    expect(c.appliedData(1)).toHaveLength(20)
  })

  // §10.2.2: the window does not cost a round trip per append when the follower answers
  it('streams several appends before any answer arrives', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 9, raft: { inflightMsgsMax: 4 } })
    c.elect(1)
    const lead = c.node(1)
    const sent: Message[] = []
    for (let i = 0; i < 6; i++) {
      lead.propose([bytes(`q${i}`)])
      // the leader's host follows its own Ready, but nothing is delivered yet
      sent.push(...c.handleReady(1, lead.ready()))
    }
    const apps = sent.filter((m) => m.to === 2 && m.type === MessageType.App && m.entries.length > 0)
    expect(apps).toHaveLength(4)
    for (const m of sent) c.deliver(m)
    c.stabilize()
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toHaveLength(6)
  })

  // §5.3 ("the leader retries AppendEntries indefinitely"): once the follower answers again, a full window must not stall it
  it('catches the silent follower up once it answers again', () => {
    const { c } = silentFollower(20)
    c.heal()
    c.tickStabilize(10)
    expect(c.appliedData(3)).toEqual(c.appliedData(1))
    expect(c.node(1).status().progress.get(3)!.match).toBe(c.node(1).status().lastIndex)
  })
})

describe('raft replication - flow control', () => {
  // thesis §10.2 (bounded resources): a leader refuses proposals once too much is uncommitted, and accepts again after commit
  it('refuses proposals past uncommittedBytesMax until entries commit', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 9, raft: { uncommittedBytesMax: 200 } })
    c.elect(1)
    const lead = c.node(1)
    c.isolate(1) // nothing can commit
    const data = new Uint8Array(50) // 74 bytes with the fixed overhead
    expect(lead.propose([data]).ok).toBe(true)
    expect(lead.propose([data]).ok).toBe(true)
    const r = lead.propose([data])
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.code).toBe('UNCOMMITTED_LIMIT')
    c.stabilize()
    c.heal()
    c.tickStabilize(2)
    expect(lead.status().commit).toBe(lead.status().lastIndex)
    expect(lead.propose([data]).ok).toBe(true)
  })

  // §5.3: a proposal appends at least one entry (nothing else is a client command)
  it('refuses an empty proposal', () => {
    const c = new TestCluster({ ids: [1], seed: 9 })
    c.elect(1)
    const r = c.node(1).propose([])
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.code).toBe('PROPOSAL_TOO_LARGE')
  })
})
