import { describe, expect, it } from 'vitest'
import { MessageType } from '../../src/raft/index.js'
import type { NodeId } from '../../src/raft/index.js'
import { TestCluster, storageWithLog } from '../support/cluster.js'

// Raft paper, Figure 7: the leader's log (terms of entries 1..10) and the followers (a)-(f).
const LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
const FOLLOWERS: Record<string, number[]> = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}
const NAMES = Object.keys(FOLLOWERS)
const idOf = (name: string): NodeId => 2 + NAMES.indexOf(name)

/** Node 1 holds the leader's log, nodes 2..7 the logs (a)..(f); everyone has reached term 7. */
function figure7(): TestCluster {
  const ids = [1, ...NAMES.map(idOf)]
  const storages = new Map([[1, storageWithLog(ids, LEADER, { term: 7 })]])
  for (const name of NAMES) storages.set(idOf(name), storageWithLog(ids, FOLLOWERS[name]!, { term: 7 }))
  return new TestCluster({ ids, storages })
}

describe('raft replication - figure 7', () => {
  // §5.3, Figure 7: the leader (elected at term 8) forces every follower's log to match its own
  it('elects node 1 at term 8 with votes from (a), (b), (e), (f) only', () => {
    const c = figure7()
    c.recordDelivered = true
    c.elect(1)
    expect(c.node(1).isLeader()).toBe(true)
    expect(c.node(1).status().term).toBe(8)
    // (c) and (d) have more up-to-date logs (§5.4.1) and refuse
    const refused = c.delivered
      .filter((m) => m.type === MessageType.VoteResp && m.reject)
      .map((m) => m.from)
      .sort()
    expect(refused).toEqual([idOf('c'), idOf('d')])
  })

  // §5.3: missing entries are filled in, extraneous ones removed; all logs end equal to the leader's
  it("makes every follower's log identical to the leader's (plus its term-8 entry)", () => {
    const c = figure7()
    c.elect(1)
    c.stabilize()
    const want = [...LEADER, 8]
    expect(c.terms(1)).toEqual(want)
    for (const name of NAMES) expect(c.terms(idOf(name)), `follower (${name})`).toEqual(want)
    // same entries, not only same terms: (f)'s entries 4..10 and (d)'s 11..12 are gone
    const dec = new TextDecoder()
    for (const name of NAMES) {
      const data = c.log(idOf(name)).map((e) => dec.decode(e.data))
      expect(data, `follower (${name})`).toEqual(c.log(1).map((e) => dec.decode(e.data)))
    }
    // and everything commits once the term-8 entry is on a majority
    for (const id of c.nodes.keys()) expect(c.node(id).status().commit).toBe(11)
  })

  // §5.3 (the optimisation at the end of the section): backtracking by term, not by one entry per round trip
  it('needs at most one rejected AppendEntries per follower', () => {
    const c = figure7()
    c.recordDelivered = true
    c.elect(1)
    expect(c.terms(idOf('f'))).toEqual([...LEADER, 8])
    const rejects = c.delivered.filter((m) => m.type === MessageType.AppResp && m.reject)
    const perFollower = new Map<NodeId, number>()
    for (const m of rejects) perFollower.set(m.from, (perFollower.get(m.from) ?? 0) + 1)
    for (const [, n] of perFollower) expect(n).toBeLessThanOrEqual(1)
    // (c) and (d) match at index 10 at once; (a), (b), (e), (f) each need exactly one probe back
    expect([...perFollower.keys()].sort()).toEqual(['a', 'b', 'e', 'f'].map(idOf))
    // one entry at a time, (f) alone would have cost 7 rejections, (e) 5
    expect(rejects.length).toBe(4)
  })
})
