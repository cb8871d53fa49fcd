import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { MemoryStorage, MessageType, RaftNode, Role } from '../../src/raft/index.js'
import type { Message, NodeId, Ready } from '../../src/raft/index.js'
import { TestCluster, follow, msg, storageWithLog } from '../support/cluster.js'

function voteResps(rd: Ready): Message[] {
  return rd.messagesAfterPersist.filter((m) => m.type === MessageType.VoteResp)
}

describe('raft election - leader election', () => {
  // §5.2: a follower that hears from no leader times out, campaigns and wins with a majority
  it('elects exactly one leader by timeouts, and every node follows it', () => {
    const c = new TestCluster({ ids: [1, 2, 3, 4, 5], seed: 7 })
    c.tickUntil(() => c.leader() !== undefined, 200)
    c.tickStabilize(3)
    const leaders = c.leaders()
    expect(leaders).toHaveLength(1)
    const lead = leaders[0]!.status()
    expect(lead.term).toBeGreaterThan(0)
    for (const n of c.nodes.values()) {
      const s = n.status()
      expect(s.leader).toBe(lead.id)
      expect(s.term).toBe(lead.term)
      expect(s.role).toBe(n.id === lead.id ? Role.Leader : Role.Follower)
    }
  })

  // §5.2 Election Safety: at most one leader can be elected in a given term
  it('never has two leaders in one term, over many seeds with random partitions', () => {
    let elections = 0
    for (let seed = 1; seed <= 20; seed++) {
      const ids = [1, 2, 3, 4, 5]
      const c = new TestCluster({ ids, seed, raft: { preVote: seed % 2 === 0, checkQuorum: seed % 3 !== 0 } })
      const leaderOfTerm = new Map<number, NodeId>()
      const record = (id: NodeId): void => {
        const s = c.node(id).status()
        if (s.role !== Role.Leader) return
        const prev = leaderOfTerm.get(s.term)
        if (prev === undefined) {
          leaderOfTerm.set(s.term, id)
          elections++
        } else {
          expect(prev, `seed ${seed}: two leaders in term ${s.term}`).toBe(id)
        }
      }
      c.onReady = (id) => record(id)
      const prng = new Prng(seed * 1000)
      for (let step = 0; step < 200; step++) {
        const r = prng.int(10)
        if (r < 2) {
          const shuffled = [...ids].sort(() => prng.float() - 0.5)
          const cut = prng.range(1, 4)
          c.partition(shuffled.slice(0, cut), shuffled.slice(cut))
        } else if (r === 2) {
          c.heal()
        } else {
          c.tickAll()
          c.stabilize()
        }
        for (const id of ids) record(id)
      }
    }
    // the check is only meaningful if there were many elections
    expect(elections).toBeGreaterThan(25)
  })
})

describe('raft election - election restriction', () => {
  // §5.4.1: a voter denies its vote if its own log is more up-to-date (higher last term)
  it('denies votes to a candidate whose last term is lower', () => {
    const voters = [1, 2, 3]
    const storages = new Map([
      [1, storageWithLog(voters, [1], { term: 2 })],
      [2, storageWithLog(voters, [1, 2], { term: 2 })],
      [3, storageWithLog(voters, [1, 2], { term: 2 })],
    ])
    const c = new TestCluster({ ids: voters, storages, raft: { preVote: false } })
    c.recordDelivered = true
    c.node(1).campaign()
    c.stabilize()
    expect(c.node(1).status().role).not.toBe(Role.Leader)
    const resps = c.delivered.filter((m) => m.type === MessageType.VoteResp && m.to === 1)
    expect(resps.map((m) => [m.from, m.reject])).toEqual(
      expect.arrayContaining([
        [2, true],
        [3, true],
      ]),
    )
    expect(resps.filter((m) => !m.reject)).toHaveLength(0)
    // a candidate with the up-to-date log wins, and the stale log is completed
    c.node(2).campaign()
    c.stabilize()
    expect(c.node(2).isLeader()).toBe(true)
    expect(c.terms(1).slice(0, 2)).toEqual([1, 2])
  })

  // §5.4.1: same last term, the longer log is more up-to-date
  it('denies votes to a candidate with the same last term but a shorter log', () => {
    const voters = [1, 2, 3]
    const storages = new Map([
      [1, storageWithLog(voters, [1, 1], { term: 1 })],
      [2, storageWithLog(voters, [1, 1, 1], { term: 1 })],
      [3, storageWithLog(voters, [1, 1, 1], { term: 1 })],
    ])
    const c = new TestCluster({ ids: voters, storages, raft: { preVote: false } })
    c.node(1).campaign()
    c.stabilize()
    expect(c.node(1).isLeader()).toBe(false)
    expect(c.leader()).toBeUndefined()
  })

  // §5.4.1: a later last term wins over a longer log
  it('grants votes to a candidate with a later last term even if its log is shorter', () => {
    const voters = [1, 2, 3]
    const storages = new Map([
      [1, storageWithLog(voters, [1, 2], { term: 2 })],
      [2, storageWithLog(voters, [1, 1, 1, 1], { term: 2 })],
      [3, storageWithLog(voters, [1, 1, 1, 1], { term: 2 })],
    ])
    const c = new TestCluster({ ids: voters, storages })
    c.elect(1)
    expect(c.node(1).isLeader()).toBe(true)
    // the followers' uncommitted entries 3..4 of term 1 are replaced by the leader's log
    for (const id of [2, 3]) expect(c.terms(id)).toEqual([1, 2, 3])
  })

  // §5.4.1, negative control: the same scenario with the check disabled elects the stale node
  it('elects the stale candidate when unsafe.voteWithoutLogCheck is set (the check is what prevents it)', () => {
    const voters = [1, 2, 3]
    const storages = new Map([
      [1, storageWithLog(voters, [1], { term: 2 })],
      [2, storageWithLog(voters, [1, 2], { term: 2 })],
      [3, storageWithLog(voters, [1, 2], { term: 2 })],
    ])
    const c = new TestCluster({ ids: voters, storages, raft: { preVote: false, unsafe: { voteWithoutLogCheck: true } } })
    c.node(1).campaign()
    c.stabilize()
    expect(c.node(1).isLeader()).toBe(true)
  })

  // §5.4.1 with pre-vote (thesis §9.6): the pre-vote already fails, and the term does not move
  it('a stale candidate fails its pre-vote without raising any term', () => {
    const voters = [1, 2, 3]
    const storages = new Map([
      [1, storageWithLog(voters, [1], { term: 2 })],
      [2, storageWithLog(voters, [1, 2], { term: 2 })],
      [3, storageWithLog(voters, [1, 2], { term: 2 })],
    ])
    const c = new TestCluster({ ids: voters, storages })
    c.node(1).campaign()
    c.stabilize()
    for (const id of voters) expect(c.node(id).status().term).toBe(2)
    expect(c.node(1).status().role).toBe(Role.Follower)
  })
})

describe('raft election - one vote per term', () => {
  // §5.2 / Figure 2 RequestVote: vote for at most one candidate per term, and persist the vote before answering
  it('grants one candidate per term, repeats the grant to it, and remembers the vote across a restart', () => {
    const st = new MemoryStorage([1, 2, 3])
    const opts = { id: 1, storage: st, prng: new Prng(1) }
    let n = new RaftNode(opts)
    const vote = (from: NodeId, term: number): Message[] => {
      n.step(msg({ type: MessageType.Vote, from, to: 1, term }))
      return voteResps(follow(n, st))
    }

    let rs = vote(2, 1)
    expect(rs).toHaveLength(1)
    expect(rs[0]!.reject).toBe(false)
    expect(st.hardState()).toMatchObject({ term: 1, vote: 2 })

    rs = vote(3, 1)
    expect(rs[0]!.reject).toBe(true)
    rs = vote(2, 1) // a retransmitted request from the same candidate
    expect(rs[0]!.reject).toBe(false)

    // restart from storage: the vote survives
    n = new RaftNode({ ...opts, prng: new Prng(2) })
    rs = vote(3, 1)
    expect(rs[0]!.reject).toBe(true)
    expect(st.hardState()).toMatchObject({ term: 1, vote: 2 })

    // a new term allows a new vote
    rs = vote(3, 2)
    expect(rs[0]!.reject).toBe(false)
    expect(st.hardState()).toMatchObject({ term: 2, vote: 3 })
  })

  // §5.2: a candidate votes for itself, so it refuses a rival of the same term
  it('a candidate refuses another candidate of its own term', () => {
    const c = new TestCluster({ ids: [1, 2, 3], raft: { preVote: false } })
    c.filter = () => false // nobody hears anybody
    c.node(1).campaign()
    c.node(2).campaign()
    c.stabilize()
    expect(c.node(1).status()).toMatchObject({ term: 1, vote: 1, role: Role.Candidate })
    expect(c.node(2).status()).toMatchObject({ term: 1, vote: 2, role: Role.Candidate })
    c.heal()
    c.recordDelivered = true
    // 2's request reaches 1 again (a retransmission); 1 has voted for itself
    c.node(1).step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 1 }))
    c.stabilize()
    const resp = c.delivered.find((m) => m.type === MessageType.VoteResp && m.from === 1 && m.to === 2)
    expect(resp?.reject).toBe(true)
    expect(c.node(1).status().vote).toBe(1)
  })
})
