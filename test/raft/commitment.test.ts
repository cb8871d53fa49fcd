import { describe, expect, it } from 'vitest'
import { MessageType, Role } from '../../src/raft/index.js'
import type { Message } from '../../src/raft/index.js'
import { TestCluster, storageWithLog } from '../support/cluster.js'

const IDS = [1, 2, 3, 4, 5]

/**
 * Raft paper, Figure 8 (c). Before it: (a) S1 led term 2 and replicated entry 2 to S2;
 * (b) S5 led term 3 and wrote its own entry 2 (term 3). Now S5 is down, S1 is elected at
 * term 4 (votes of S2, S3) and replicates entry 2 to S3 but its term-4 entry (index 3)
 * reaches nobody: entry 2 (term 2) is on S1, S2, S3, a majority. S4 is cut off.
 */
function figure8c(commitPriorTermByCounting: boolean): TestCluster {
  const storages = new Map([
    [1, storageWithLog(IDS, [1, 2], { term: 3, commit: 1 })],
    [2, storageWithLog(IDS, [1, 2], { term: 3, commit: 1 })],
    [3, storageWithLog(IDS, [1], { term: 3, commit: 1 })],
    [4, storageWithLog(IDS, [1], { term: 3, commit: 1 })],
    [5, storageWithLog(IDS, [1, 3], { term: 3, commit: 1 })],
  ])
  // the paper's algorithm: no pre-vote, no leader lease, so S5 can later win at term 5 as in (d)
  const c = new TestCluster({
    ids: IDS,
    storages,
    raft: { preVote: false, checkQuorum: false, unsafe: { commitPriorTermByCounting } },
  })
  c.stop(5)
  c.filter = (m) => m.from !== 4 && m.to !== 4
  // entries of term 4 never arrive (the rest of the append does, so acknowledgements flow)
  c.rewrite = (m: Message): Message => {
    if (m.type !== MessageType.App) return m
    const k = m.entries.findIndex((e) => e.term === 4)
    return k < 0 ? m : { ...m, entries: m.entries.slice(0, k) }
  }
  c.elect(1)
  expect(c.node(1).status()).toMatchObject({ role: Role.Leader, term: 4 })
  expect(c.terms(1)).toEqual([1, 2, 4])
  expect(c.terms(2)).toEqual([1, 2])
  expect(c.terms(3)).toEqual([1, 2])
  const progress = c.node(1).status().progress
  expect(progress.get(2)!.match).toBe(2)
  expect(progress.get(3)!.match).toBe(2)
  return c
}

/** Follows Readies and messages for at most `rounds` rounds (a broken core may never go quiet). */
function settle(c: TestCluster, rounds: number): void {
  try {
    c.stabilize(rounds)
  } catch (e) {
    if (!(e instanceof Error) || !e.message.includes('did not stabilize')) throw e
  }
}

/** Figure 8 (d): S1 crashes, S5 comes back and is elected at term 5 by S2, S3, S4 (its last term 3 beats their 2). */
function figure8d(c: TestCluster): void {
  c.stop(1)
  c.heal()
  c.rewrite = null
  c.restart(5)
  c.node(5).campaign() // term 4: S2 and S3 already voted for S1 in term 4
  c.stabilize()
  expect(c.node(5).isLeader()).toBe(false)
  c.node(5).campaign() // term 5
  settle(c, 100)
}

describe('raft commitment - figure 8', () => {
  // §5.4.2: a leader never commits an entry from a previous term by counting replicas
  it('does not commit the term-2 entry although a majority stores it', () => {
    const c = figure8c(false)
    for (const id of [1, 2, 3]) expect(c.node(id).status().commit).toBe(1)
    expect(c.applied.get(1)!.map((e) => e.index)).toEqual([1])
    // heartbeats do not change that
    c.tickStabilize(5)
    expect(c.node(1).status().commit).toBe(1)
  })

  // §5.4.2: once an entry of the current term is on a majority, it and everything before commit
  it('commits entry 2 together with the term-4 entry once that reaches a majority', () => {
    const c = figure8c(false)
    c.rewrite = null // the term-4 entry can now be delivered
    c.tickStabilize(2)
    for (const id of [1, 2, 3]) {
      expect(c.node(id).status().commit).toBe(3)
      expect(c.applied.get(id)!.map((e) => `${e.index}@${e.term}`)).toEqual(['1@1', '2@2', '3@4'])
    }
  })

  // Figure 8 (d): why the rule matters. S5 overwrites entry 2, which is harmless only because it was never committed
  it('lets S5 replace the uncommitted entry 2 in (d) without losing anything applied', () => {
    const c = figure8c(false)
    figure8d(c)
    expect(c.node(5).status()).toMatchObject({ role: Role.Leader, term: 5 })
    for (const id of [2, 3, 4, 5]) expect(c.terms(id)).toEqual([1, 3, 5])
    // no node ever applied the overwritten entry 2@2
    for (const id of [2, 3, 4, 5]) expect(c.applied.get(id)!.some((e) => e.index === 2 && e.term === 2)).toBe(false)
  })

  // negative control: with the unsafe switch the same (c) commits entry 2 by counting
  it('commits entry 2 by counting replicas with unsafe.commitPriorTermByCounting', () => {
    const c = figure8c(true)
    expect(c.node(1).status().commit).toBe(2)
    expect(c.applied.get(1)!.map((e) => `${e.index}@${e.term}`)).toEqual(['1@1', '2@2'])
    // and the followers learn it too
    for (const id of [2, 3]) expect(c.node(id).status().commit).toBe(2)
  })

  // Figure 8 (d) under the unsafe rule: two different entries are committed (and applied) at index 2
  it('then (d) commits a different entry at index 2: State Machine Safety is broken', () => {
    const c = figure8c(true)
    figure8d(c)
    expect(c.node(5).status()).toMatchObject({ role: Role.Leader, term: 5 })
    const at2 = (id: number): string[] => c.applied.get(id)!.filter((e) => e.index === 2).map((e) => `${e.index}@${e.term}`)
    // S2 and S3 applied 2@2 in (c) (the cluster's applied lists survive S1's crash) ...
    expect(at2(2)).toEqual(['2@2'])
    expect(at2(3)).toEqual(['2@2'])
    // ... and the new leader, counting S2 and S3 as holding "its" entry 2, applies 2@3
    expect(at2(5)).toEqual(['2@3'])
  })
})
