import { describe, expect, it } from 'vitest'
import { ConfChangeOp, EntryType, MemoryStorage, MessageType, Role } from '../../src/raft/index.js'
import type { NodeId, ProposeError } from '../../src/raft/index.js'
import type { Result } from '../../src/base/index.js'
import { TestCluster, bytes } from '../support/cluster.js'

const add = (nodeId: NodeId) => ({ op: ConfChangeOp.AddVoter, nodeId })
const remove = (nodeId: NodeId) => ({ op: ConfChangeOp.RemoveVoter, nodeId })

function errorCode<T>(r: Result<T, ProposeError>): string | null {
  return r.ok ? null : r.error.code
}

/** 1 leads [1, 2, 3] with 'a' committed; node 4 is started with an empty storage and added as a voter. */
function withFourth(): TestCluster {
  const c = new TestCluster({ ids: [1, 2, 3], seed: 12 })
  c.elect(1)
  c.node(1).propose([bytes('a')])
  c.stabilize()
  c.start(4, new MemoryStorage([]))
  expect(c.node(4).status().voters).toEqual([])
  expect(c.node(1).proposeConfChange(add(4)).ok).toBe(true)
  c.stabilize()
  return c
}

describe('raft membership - adding a voter', () => {
  // thesis §4.1: the new server learns the configuration from the log and catches up
  it('a node started with no configuration learns [1,2,3,4] from the log and catches up', () => {
    const c = withFourth()
    for (const id of [1, 2, 3, 4]) expect(c.node(id).status().voters, `node ${id}`).toEqual([1, 2, 3, 4])
    expect(c.appliedData(4)).toEqual(['a'])
    expect(c.log(4)).toEqual(c.log(1))
    expect(c.applied.get(4)!.some((e) => e.type === EntryType.ConfChange)).toBe(true)
    const lead = c.node(1).status()
    expect(lead.progress.get(4)!.match).toBe(lead.lastIndex)
    // and it still knows after a restart
    c.stop(4)
    expect(c.restart(4).status().voters).toEqual([1, 2, 3, 4])
  })

  // thesis §4.1: once added, the new voter's acknowledgements count towards the (now 3 of 4) majority
  it('the new voter counts in commits', () => {
    const c = withFourth()
    const lead = c.node(1)
    c.isolate(3) // 1, 2, 4 are 3 of 4
    lead.propose([bytes('b')])
    c.stabilize()
    expect(c.appliedData(1)).toEqual(['a', 'b'])
    expect(c.appliedData(4)).toEqual(['a', 'b'])
    // without 4 (and 3), 1 and 2 are only 2 of 4: nothing commits
    c.filter = (m) => m.to !== 3 && m.to !== 4 && m.from !== 3 && m.from !== 4
    const commit = lead.status().commit
    lead.propose([bytes('c')])
    c.stabilize()
    expect(lead.status().commit).toBe(commit)
    expect(c.appliedData(1)).toEqual(['a', 'b'])
    c.filter = (m) => m.to !== 3 && m.from !== 3
    c.tickStabilize(2)
    expect(c.appliedData(1)).toEqual(['a', 'b', 'c'])
  })

  // thesis §4.1: the added voter is a full member: it can lead the four-node cluster
  it('the new voter can become leader and replicates to all the others', () => {
    const c = withFourth()
    expect(c.node(1).transferLeader(4).ok).toBe(true)
    c.stabilize()
    const n4 = c.node(4)
    expect(n4.isLeader()).toBe(true)
    expect([...n4.status().progress.keys()].sort()).toEqual([1, 2, 3, 4])
    n4.propose([bytes('from4')])
    c.stabilize()
    for (const id of [1, 2, 3, 4]) expect(c.appliedData(id)).toEqual(['a', 'from4'])
  })

  // §7 with thesis §4.1: when the leader has compacted past the change, the new voter learns the configuration from the snapshot
  it('a voter that starts after the leader compacted learns the configuration from the snapshot', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 12 })
    c.elect(1)
    const lead = c.node(1)
    expect(lead.proposeConfChange(add(4)).ok).toBe(true) // 4 is not running yet
    c.stabilize()
    lead.propose([bytes('a'), bytes('b')])
    c.stabilize() // commits with 1, 2, 3: 3 of 4
    const applied = lead.status().applied
    expect(lead.confAt(applied).voters).toEqual([1, 2, 3, 4])
    const st = c.storages.get(1)!
    st.createSnapshot(applied, lead.confAt(applied), bytes('state'))
    st.compact(applied)
    const snaps: number[] = []
    c.onReady = (id, rd) => {
      if (id === 4 && rd.snapshot) snaps.push(rd.snapshot.metadata.index)
    }
    c.start(4, new MemoryStorage([]))
    c.tickStabilize(3)
    expect(snaps).toEqual([applied])
    expect(c.node(4).status().voters).toEqual([1, 2, 3, 4])
    expect(c.node(4).status().commit).toBe(lead.status().commit)
    c.stop(4)
    expect(c.restart(4).status().voters).toEqual([1, 2, 3, 4])
  })

  // §5.2 Election Safety with a joined node: alone it is 1 of 4, so it can never elect itself
  it('the new voter, cut off, cannot elect itself (it needs 3 of 4 votes)', () => {
    const c = withFourth()
    c.isolate(4)
    c.tickStabilize(100)
    expect(c.node(4).isLeader()).toBe(false)
    expect(c.node(1).isLeader()).toBe(true)
  })

  // thesis §4.1 (one change at a time): a second change before the first commits is refused
  it('refuses a second change while the first is uncommitted', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 12 })
    c.elect(1)
    c.start(4, new MemoryStorage([]))
    expect(c.node(1).proposeConfChange(add(4)).ok).toBe(true)
    expect(errorCode(c.node(1).proposeConfChange(remove(3)))).toBe('CONF_CHANGE_PENDING')
    // ordinary proposals are not blocked
    expect(c.node(1).propose([bytes('x')]).ok).toBe(true)
    c.stabilize()
    expect(c.node(1).proposeConfChange(remove(3)).ok).toBe(true)
    c.stabilize()
    for (const id of [1, 2, 4]) expect(c.node(id).status().voters).toEqual([1, 2, 4])
  })

  // thesis §4.1: a change adds or removes exactly one server, and only the leader proposes it
  it('refuses invalid changes', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 12 })
    c.elect(1)
    expect(errorCode(c.node(1).proposeConfChange(add(2)))).toBe('CONF_CHANGE_INVALID')
    expect(errorCode(c.node(1).proposeConfChange(remove(9)))).toBe('CONF_CHANGE_INVALID')
    expect(errorCode(c.node(2).proposeConfChange(add(9)))).toBe('NOT_LEADER')
  })

  // Ongaro's 2015 correction to §4.1 (config.ts (b)): a new leader must first commit an entry of its own term
  it('a new leader refuses a change before it has committed an entry of its own term', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 12 })
    c.elect(1)
    c.node(1).propose([bytes('a')])
    c.stabilize()
    // 2 becomes leader, but its appends (the empty entry of its term) are lost
    c.filter = (m) => !(m.from === 2 && m.type === MessageType.App)
    expect(c.node(1).transferLeader(2).ok).toBe(true)
    c.stabilize()
    const n2 = c.node(2)
    expect(n2.isLeader()).toBe(true)
    expect(n2.status().commit).toBeLessThan(n2.status().lastIndex)
    const r = n2.proposeConfChange(add(4))
    expect(errorCode(r)).toBe('CONF_CHANGE_PENDING')
    if (!r.ok) expect(r.error.message).toMatch(/term/)
    c.heal()
    c.tickStabilize(2)
    expect(n2.status().commit).toBe(n2.status().lastIndex)
    c.start(4, new MemoryStorage([]))
    expect(n2.proposeConfChange(add(4)).ok).toBe(true)
  })
})

describe('raft membership - removing a voter', () => {
  // thesis §4.1: after removing 3, [1, 2] commit on their own and 3 hears nothing more
  it('a removed voter stops counting and stops receiving appends', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 12 })
    c.elect(1)
    const term = c.node(1).status().term
    expect(c.node(1).proposeConfChange(remove(3)).ok).toBe(true)
    c.stabilize()
    for (const id of [1, 2]) expect(c.node(id).status().voters).toEqual([1, 2])
    expect(c.node(1).status().progress.has(3)).toBe(false)
    // §4.2.3: the removed server (which may never learn of its removal) times out, but does not disrupt [1, 2]
    c.recordDelivered = true
    c.node(1).propose([bytes('x')])
    c.tickStabilize(60)
    expect(c.appliedData(2)).toEqual(['x'])
    expect(c.delivered.filter((m) => m.to === 3)).toEqual([])
    expect(c.node(1).status()).toMatchObject({ role: Role.Leader, term })
    expect(c.node(2).status().term).toBe(term)
    // with two voters, one alone is no majority
    c.isolate(2)
    const commit = c.node(1).status().commit
    c.node(1).propose([bytes('y')])
    c.stabilize()
    expect(c.node(1).status().commit).toBe(commit)
  })

  // §4.2.3 with neither pre-vote nor check-quorum to shield the group: the removed voter never
  // hears of its removal, campaigns at ever higher terms, and the members drop its campaigns
  // whole (their logs are ahead of its), so the leader keeps its term
  it("without pre-vote and check-quorum, a removed voter that never learned of it campaigns without moving the members' term", () => {
      const c = new TestCluster({ ids: [1, 2, 3], seed: 7, raft: { preVote: false, checkQuorum: false } })
      c.elect(1)
      const term = c.node(1).status().term
      c.isolate(3)
      expect(c.node(1).proposeConfChange(remove(3)).ok).toBe(true)
      c.stabilize()
      expect(c.node(1).status().voters).toEqual([1, 2])
      expect(c.node(3).status().voters).toEqual([1, 2, 3]) // it never heard
      c.heal()
      c.recordDelivered = true
      c.node(1).propose([bytes('x')])
      c.tickStabilize(300)
      const campaigns = c.delivered.filter((m) => m.from === 3 && m.type === MessageType.Vote)
      expect(campaigns.length).toBeGreaterThan(0)
      expect(c.node(3).status().term).toBeGreaterThan(term + 2) // it kept trying
      expect(c.node(1).status()).toMatchObject({ role: Role.Leader, term })
      expect(c.node(2).status()).toMatchObject({ leader: 1, term })
      expect(c.appliedData(2)).toEqual(['x'])
  })

  // a campaign from outside the configuration whose log is ahead is still heard: that node may
  // hold a configuration that adds it back, which the receiver has not seen yet
  it('a campaign from a node outside the configuration but with a longer log still wins a vote', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 7, raft: { preVote: false, checkQuorum: false } })
    c.elect(1)
    expect(c.node(1).proposeConfChange(remove(3)).ok).toBe(true)
    c.stabilize()
    expect(c.node(2).status().voters).toEqual([1, 2])
    // 1 adds 3 back; only 3 hears it, then 1 is gone
    c.filter = (m) => m.to !== 2 && m.from !== 2
    expect(c.node(1).proposeConfChange(add(3)).ok).toBe(true)
    c.tickStabilize(5)
    expect(c.node(3).status().voters).toEqual([1, 2, 3])
    expect(c.node(3).status().lastIndex).toBeGreaterThan(c.node(2).status().lastIndex)
    expect(c.node(2).status().voters).toEqual([1, 2])
    c.filter = () => true
    c.stop(1)
    // [1,2,3] needs two of three: 3 can only win with 2's vote, and 2 sees 3 as an outsider
    c.tickStabilize(200)
    expect(c.leader()?.id).toBe(3)
    expect(c.node(2).status().voters).toEqual([1, 2, 3])
  })

  // thesis §4.2.2: a leader removed from the configuration leads (without counting itself) until the change commits, then steps down
  it('a removed leader steps down once the change commits, and the others elect a new leader', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 12 })
    c.elect(1)
    c.node(1).propose([bytes('a')])
    c.stabilize()
    const term = c.node(1).status().term
    // only 3 hears the change at first: the new configuration [2, 3] needs both
    c.filter = (m) => m.to !== 2 && m.from !== 2
    expect(c.node(1).proposeConfChange(remove(1)).ok).toBe(true)
    c.stabilize()
    expect(c.node(1).status()).toMatchObject({ role: Role.Leader, voters: [2, 3] })
    const ccIndex = c.node(1).status().lastIndex
    expect(c.node(1).status().commit).toBeLessThan(ccIndex) // 1 and 3 would be a majority of [1,2,3], but 1 no longer counts

    c.heal()
    c.tickStabilize(2)
    expect(c.node(1).status().commit).toBeGreaterThanOrEqual(ccIndex)
    expect(c.node(1).status().role).toBe(Role.Follower)
    c.tickUntil(() => c.node(2).isLeader() || c.node(3).isLeader(), 300)
    const lead = c.node(2).isLeader() ? c.node(2) : c.node(3)
    expect(lead.status().term).toBeGreaterThan(term)
    lead.propose([bytes('b')])
    c.stabilize()
    expect(c.appliedData(2)).toEqual(['a', 'b'])
    expect(c.appliedData(3)).toEqual(['a', 'b'])
    // the removed node never campaigns again
    const t1 = c.node(1).status().term
    c.isolate(1)
    c.tickStabilize(100)
    expect(c.node(1).status()).toMatchObject({ role: Role.Follower, term: t1 })
  })
})
