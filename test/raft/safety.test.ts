import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { Role } from '../../src/raft/index.js'
import type { NodeId } from '../../src/raft/index.js'
import { TestCluster, bytes } from '../support/cluster.js'

const key = (index: number, term: number): string => `${index}@${term}`

describe('raft safety - leader completeness', () => {
  // §5.4.1 / §5.4.3 Leader Completeness: a committed entry is in the log of every later leader
  it('a new leader holds every entry committed under the old one, and a lagging node cannot win', () => {
    const c = new TestCluster({ ids: [1, 2, 3, 4, 5], seed: 3 })
    c.elect(1)
    c.isolate(4) // 4 misses everything below
    for (const d of ['a', 'b', 'c']) c.node(1).propose([bytes(d)])
    c.stabilize()
    expect(c.appliedData(1)).toEqual(['a', 'b', 'c'])
    const committed = c.log(1).slice(0, c.node(1).status().commit)
    expect(c.appliedData(4)).toEqual([])

    c.stop(1)
    c.heal()
    // 4 campaigns first: its log lacks the committed entries, so 2, 3 and 5 refuse it (§5.4.1)
    c.node(4).campaign()
    c.stabilize()
    expect(c.node(4).isLeader()).toBe(false)

    c.tickUntil(() => c.leader() !== undefined, 300)
    const lead = c.leader()!
    expect(lead.id).not.toBe(4)
    expect(c.log(lead.id).slice(0, committed.length)).toEqual(committed)

    lead.propose([bytes('d')])
    c.stabilize()
    c.restart(1)
    c.tickStabilize(3)
    for (const id of [1, 2, 3, 4, 5]) expect(c.appliedData(id), `node ${id}`).toEqual(['a', 'b', 'c', 'd'])
  })

  // §5.4.3 (Leader Completeness) and §5.4 State Machine Safety, under random crashes, partitions and proposals
  it('never loses or changes a committed entry across many leader changes', () => {
    let leaderChanges = 0
    for (let seed = 1; seed <= 12; seed++) {
      const ids = [1, 2, 3, 4, 5]
      const c = new TestCluster({ ids, seed })
      const prng = new Prng(seed * 7919)
      /** index -> term of every entry any node ever applied. */
      const committed = new Map<number, number>()
      const down = new Set<NodeId>()
      const checkedLeaders = new Set<string>()
      const checkedApplied = new Map<readonly unknown[], number>()
      let proposals = 0
      const check = (): void => {
        for (const id of c.nodes.keys()) {
          const applied = c.applied.get(id)!
          for (let k = checkedApplied.get(applied) ?? 0; k < applied.length; k++) {
            const e = applied[k]!
            const t = committed.get(e.index)
            expect(t === undefined || t === e.term, `seed ${seed}: node ${id} applied ${key(e.index, e.term)}, others ${t}`).toBe(true)
            committed.set(e.index, e.term)
          }
          checkedApplied.set(applied, applied.length)
        }
        // each newly elected leader must hold every entry committed so far
        const maxTerm = Math.max(...[...c.nodes.values()].map((n) => n.status().term))
        for (const lead of c.leaders()) {
          const s = lead.status()
          if (s.term < maxTerm) continue // a deposed leader that has not heard yet
          if (checkedLeaders.has(`${lead.id}/${s.term}`)) continue
          checkedLeaders.add(`${lead.id}/${s.term}`)
          leaderChanges++
          const have = new Set(c.log(lead.id).map((e) => key(e.index, e.term)))
          for (const [index, term] of committed) {
            if (index < s.firstIndex) continue
            expect(have.has(key(index, term)), `seed ${seed}: leader ${lead.id} (term ${s.term}) lacks committed ${key(index, term)}`).toBe(true)
          }
        }
      }
      for (let step = 0; step < 250; step++) {
        const r = prng.int(20)
        const lead = c.leader()
        if (r < 6 && lead) {
          if (lead.propose([bytes(`s${seed}-${proposals++}`)]).ok) {
            // sometimes let the proposal reach only part of the cluster before anything else happens
            if (prng.chance(0.5)) {
              const keep = new Set(ids.filter(() => prng.chance(0.5)))
              keep.add(lead.id)
              c.filter = (m) => keep.has(m.from) && keep.has(m.to)
            }
          }
        } else if (r === 6 && down.size < 2) {
          const victim = prng.pick([...c.nodes.keys()])
          c.stop(victim)
          down.add(victim)
        } else if (r === 7 && down.size > 0) {
          const back = prng.pick([...down])
          down.delete(back)
          c.restart(back)
        } else if (r === 8) {
          c.heal()
        } else {
          c.tickAll()
        }
        c.stabilize()
        check()
      }
      c.heal()
      for (const id of down) c.restart(id)
      c.tickUntil(() => c.leader() !== undefined, 500)
      c.tickStabilize(5)
      check()
      // in the end every node applied the same sequence, containing everything committed on the way
      const lead = c.leader()!
      const all = c.log(lead.id).filter((e) => e.index <= lead.status().commit)
      for (const [index, term] of committed) expect(all.some((e) => e.index === index && e.term === term)).toBe(true)
    }
    expect(leaderChanges).toBeGreaterThan(30)
  })
})

describe('raft safety - stale leader', () => {
  // §5.1: a leader that learns of a higher term steps down; §5.3: its uncommitted entries are overwritten
  it('an isolated old leader steps down on healing and its uncommitted entries are replaced', () => {
    // check-quorum off, so the old leader keeps believing it leads until it hears the new term
    const c = new TestCluster({ ids: [1, 2, 3], seed: 5, raft: { checkQuorum: false } })
    c.elect(1)
    c.node(1).propose([bytes('a')])
    c.stabilize()
    const oldTerm = c.node(1).status().term

    c.isolate(1)
    expect(c.node(1).propose([bytes('x')]).ok).toBe(true)
    expect(c.node(1).propose([bytes('y')]).ok).toBe(true)
    c.stabilize()
    const stale = c.log(1).slice(-2)
    expect(stale.map((e) => e.term)).toEqual([oldTerm, oldTerm])

    c.tickUntil(() => c.node(2).isLeader() || c.node(3).isLeader(), 300)
    const lead = c.node(2).isLeader() ? c.node(2) : c.node(3)
    const newTerm = lead.status().term
    expect(newTerm).toBeGreaterThan(oldTerm)
    lead.propose([bytes('b')])
    c.stabilize()
    // the old leader still thinks it leads, at the old term
    expect(c.node(1).status()).toMatchObject({ role: Role.Leader, term: oldTerm })

    c.heal()
    c.tickStabilize(3)
    expect(c.node(1).status()).toMatchObject({ role: Role.Follower, term: newTerm, leader: lead.id })
    expect(c.log(1)).toEqual(c.log(lead.id))
    for (const e of stale) expect(c.log(1).some((x) => x.index === e.index && x.term === e.term)).toBe(false)
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(['a', 'b'])
  })
})
