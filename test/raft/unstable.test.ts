import { describe, expect, it } from 'vitest'
import { AssertionError } from '../../src/base/index.js'
import { EntryType } from '../../src/raft/index.js'
import type { Entry, Snapshot } from '../../src/raft/index.js'
import { Unstable } from '../../src/raft/unstable.js'

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array(0) })
const ents = (from: number, terms: number[]): Entry[] => terms.map((t, k) => ent(from + k, t))
const snap = (index: number, term: number): Snapshot => ({ metadata: { index, term, conf: { voters: [1] } }, data: new Uint8Array(0) })
const shape = (u: Unstable): string[] => u.entries.map((e) => `${e.index}@${e.term}`)

describe('raft unstable - truncateAndAppend', () => {
  // §5.3: a follower appends new entries, deleting a conflicting suffix first
  it('appends right after the end', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1, 1]))
    u.truncateAndAppend(ents(7, [2]))
    expect(shape(u)).toEqual(['5@1', '6@1', '7@2'])
    expect(u.offset).toBe(5)
    expect(u.maybeLastIndex()).toBe(7)
  })

  // §5.3: a conflict below the unstable part truncates what storage holds too
  it('replaces everything when the new entries start at or before the offset', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1, 1, 1]))
    u.acceptInProgress()
    u.truncateAndAppend(ents(3, [2, 2]))
    expect(shape(u)).toEqual(['3@2', '4@2'])
    expect(u.offset).toBe(3)
    expect(u.inProgress).toBe(3) // the host must write them again
    expect(u.nextEntries().map((e) => e.index)).toEqual([3, 4])
  })

  // §5.3: the conflicting suffix is deleted, and the host must write the replacements
  it('truncates inside the unstable part and pulls back what is in progress', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1, 1, 1, 1]))
    u.acceptInProgress()
    expect(u.inProgress).toBe(9)
    u.truncateAndAppend(ents(7, [3]))
    expect(shape(u)).toEqual(['5@1', '6@1', '7@3'])
    expect(u.inProgress).toBe(7)
    expect(u.nextEntries().map((e) => `${e.index}@${e.term}`)).toEqual(['7@3'])
  })

  // §5.3: only entries after the conflict are replaced
  it('a truncation after the in-progress point leaves it alone', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1]))
    u.acceptInProgress()
    u.truncateAndAppend(ents(6, [1, 1, 1]))
    u.truncateAndAppend(ents(7, [2]))
    expect(u.inProgress).toBe(6)
    expect(u.nextEntries().map((e) => `${e.index}@${e.term}`)).toEqual(['6@1', '7@2'])
  })

  // §5.3 Log Matching: a log has no holes
  it('refuses a gap', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1]))
    expect(() => u.truncateAndAppend(ents(8, [1]))).toThrow(AssertionError)
  })
})

describe('raft unstable - stableTo', () => {
  // Figure 2: entries become durable state once the host has written them
  it('drops entries the host made durable', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1, 1, 2]))
    u.acceptInProgress()
    u.stableTo(6, 1)
    expect(shape(u)).toEqual(['7@2'])
    expect(u.offset).toBe(7)
    expect(u.inProgress).toBe(8)
    u.stableTo(7, 2)
    expect(u.entries).toEqual([])
    expect(u.offset).toBe(8)
    expect(u.maybeLastIndex()).toBe(-1)
  })

  // the write the host confirms may be of entries a later append replaced: those stay unstable
  it('ignores a confirmation for an entry that was replaced meanwhile', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1, 1, 1]))
    u.acceptInProgress() // the host is writing 5..7 at term 1
    u.truncateAndAppend(ents(6, [2])) // a new leader replaces 6.. with 6@2
    u.stableTo(7, 1) // index 7 no longer exists
    expect(shape(u)).toEqual(['5@1', '6@2'])
    u.stableTo(6, 1) // 6 exists, but with another term
    expect(shape(u)).toEqual(['5@1', '6@2'])
    expect(u.offset).toBe(5)
    // the replaced entry goes out in the next Ready
    expect(u.nextEntries().map((e) => `${e.index}@${e.term}`)).toEqual(['6@2'])
  })

  // a late or duplicate confirmation changes nothing
  it('ignores indexes below the offset or beyond the end', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1]))
    u.stableTo(4, 1)
    u.stableTo(9, 1)
    expect(shape(u)).toEqual(['5@1'])
  })
})

describe('raft unstable - snapshot', () => {
  // §7: an incoming snapshot replaces the unstable part until the host persists it
  it('restore installs a snapshot, and stableSnapTo clears it', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1, 1]))
    u.restore(snap(20, 3))
    expect(u.entries).toEqual([])
    expect(u.offset).toBe(21)
    expect(u.maybeFirstIndex()).toBe(21)
    expect(u.maybeLastIndex()).toBe(20)
    expect(u.maybeTerm(20)).toBe(3)
    expect(u.maybeTerm(19)).toBe(-1)
    expect(u.nextSnapshot()?.metadata.index).toBe(20)
    u.acceptInProgress()
    expect(u.nextSnapshot()).toBeNull()
    u.stableSnapTo(19) // not this snapshot
    expect(u.snapshot).not.toBeNull()
    u.stableSnapTo(20)
    expect(u.snapshot).toBeNull()
    expect(u.maybeFirstIndex()).toBe(-1)
  })

  // §5.3: the consistency check reads terms from the unstable part first
  it('maybeTerm covers exactly the unstable entries', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1, 2]))
    expect([4, 5, 6, 7].map((i) => u.maybeTerm(i))).toEqual([-1, 1, 2, -1])
  })

  // reads outside the unstable part are a programming error
  it('slice reads inside the unstable part only', () => {
    const u = new Unstable(5)
    u.truncateAndAppend(ents(5, [1, 2, 3]))
    expect(u.slice(6, 8).map((e) => e.index)).toEqual([6, 7])
    expect(() => u.slice(4, 6)).toThrow(AssertionError)
    expect(() => u.slice(6, 9)).toThrow(AssertionError)
  })
})
