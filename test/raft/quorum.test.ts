import { describe, expect, it } from 'vitest'
import { VoteResult, committedIndex, majority, voteResult } from '../../src/raft/quorum.js'

const matches = (m: Record<number, number>) => (id: number): number => m[id] ?? 0

describe('raft quorum - majorities', () => {
  // §5.2 / §5.3: decisions need a majority of the voters
  it('majority(n) is more than half', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(majority)).toEqual([1, 2, 2, 3, 3, 4, 4])
  })

  // Figure 2, leader rule: the largest N with matchIndex >= N on a majority
  it('committedIndex is the highest index a majority has acknowledged', () => {
    expect(committedIndex([1, 2, 3], matches({ 1: 5, 2: 3, 3: 1 }))).toBe(3)
    expect(committedIndex([1, 2, 3], matches({ 1: 5, 2: 5, 3: 1 }))).toBe(5)
    expect(committedIndex([1, 2, 3, 4], matches({ 1: 5, 2: 4, 3: 3, 4: 2 }))).toBe(3)
    expect(committedIndex([1, 2, 3, 4, 5], matches({ 1: 9, 2: 9, 3: 1, 4: 1, 5: 2 }))).toBe(2)
    expect(committedIndex([7], matches({ 7: 4 }))).toBe(4)
    expect(committedIndex([], matches({}))).toBe(0)
    // only voters count, whatever others acknowledged
    expect(committedIndex([1, 2, 3], matches({ 1: 9, 4: 9, 5: 9 }))).toBe(0)
  })

  // §5.2: a candidate wins with votes from a majority; it has lost once a majority is out of reach
  it('voteResult says won, lost or pending', () => {
    const v = (entries: [number, boolean][]) => new Map(entries)
    expect(voteResult([1, 2, 3], v([[1, true]]))).toBe(VoteResult.Pending)
    expect(voteResult([1, 2, 3], v([[1, true], [2, true]]))).toBe(VoteResult.Won)
    expect(voteResult([1, 2, 3], v([[1, true], [2, false]]))).toBe(VoteResult.Pending)
    expect(voteResult([1, 2, 3], v([[1, true], [2, false], [3, false]]))).toBe(VoteResult.Lost)
    expect(voteResult([1, 2, 3, 4], v([[1, true], [2, true]]))).toBe(VoteResult.Pending)
    expect(voteResult([1, 2, 3, 4], v([[1, true], [2, false], [3, false]]))).toBe(VoteResult.Lost)
    expect(voteResult([1], v([[1, true]]))).toBe(VoteResult.Won)
    // votes of non-voters are ignored
    expect(voteResult([1, 2, 3], v([[1, true], [8, true], [9, true]]))).toBe(VoteResult.Pending)
  })
})
