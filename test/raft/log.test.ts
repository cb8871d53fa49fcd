import { describe, expect, it } from 'vitest'
import { AssertionError } from '../../src/base/index.js'
import { EntryType, TERM_UNAVAILABLE } from '../../src/raft/index.js'
import type { Entry } from '../../src/raft/index.js'
import { RaftLog } from '../../src/raft/log.js'
import { storageWithLog } from '../support/cluster.js'

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array(0) })
const ents = (from: number, terms: number[]): Entry[] => terms.map((t, k) => ent(from + k, t))
// Figure 7's leader log
const FIG7 = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
const logOf = (terms: number[], commit = 0): RaftLog => new RaftLog(storageWithLog([1], terms, { commit }), 0)

describe('raft log - findConflict', () => {
  // §5.3: "if an existing entry conflicts with a new one (same index but different terms)"
  it('returns the first entry whose term differs or that is missing, 0 if all are present', () => {
    const log = logOf([1, 2, 3])
    expect(log.findConflict([])).toBe(0)
    expect(log.findConflict(ents(1, [1, 2, 3]))).toBe(0)
    expect(log.findConflict(ents(2, [2, 3]))).toBe(0)
    expect(log.findConflict(ents(2, [2, 3, 4, 4]))).toBe(4) // new entries
    expect(log.findConflict(ents(4, [4]))).toBe(4)
    expect(log.findConflict(ents(2, [2, 4, 4]))).toBe(3) // conflict at 3
    expect(log.findConflict(ents(1, [4]))).toBe(1)
  })
})

describe('raft log - findConflictByTerm', () => {
  // §5.3 (fast backtracking): skip all entries of a term the other log cannot share
  it('returns the last index <= index whose term is <= term', () => {
    const log = logOf(FIG7)
    expect(log.findConflictByTerm(10, 6)).toBe(10)
    expect(log.findConflictByTerm(10, 5)).toBe(7)
    expect(log.findConflictByTerm(10, 4)).toBe(5)
    expect(log.findConflictByTerm(10, 3)).toBe(3)
    expect(log.findConflictByTerm(10, 0)).toBe(0)
    expect(log.findConflictByTerm(7, 4)).toBe(5)
    expect(log.findConflictByTerm(3, 9)).toBe(3)
  })

  // §5.3 fast backtracking over a compacted log (§7)
  it('stops where the log can no longer be read (compacted, or beyond the end)', () => {
    const st = storageWithLog([1], FIG7, { commit: 10 })
    st.compact(6)
    const log = new RaftLog(st, 0)
    expect(log.findConflictByTerm(10, 3)).toBe(5) // term(5) is compacted: stop there
    expect(log.findConflictByTerm(15, 1)).toBe(15) // beyond the end: unknown term
  })
})

describe('raft log - isUpToDate', () => {
  // §5.4.1: compare last terms, then lengths
  it('compares by last term first, then by last index', () => {
    const log = logOf([1, 1, 2, 2]) // last (4, 2)
    expect(log.isUpToDate(4, 2)).toBe(true)
    expect(log.isUpToDate(5, 2)).toBe(true)
    expect(log.isUpToDate(3, 2)).toBe(false)
    expect(log.isUpToDate(1, 3)).toBe(true) // later term, shorter log
    expect(log.isUpToDate(9, 1)).toBe(false) // earlier term, longer log
    expect(logOf([]).isUpToDate(0, 0)).toBe(true)
  })
})

describe('raft log - reading and appending', () => {
  // §5.3: the log is what is durable plus what is accepted but not yet durable
  it('joins storage and the unstable tail', () => {
    const log = logOf([1, 1])
    log.append(ents(3, [2, 2]))
    expect(log.firstIndex()).toBe(1)
    expect(log.lastIndex()).toBe(4)
    expect([0, 1, 2, 3, 4, 5].map((i) => log.term(i))).toEqual([0, 1, 1, 2, 2, TERM_UNAVAILABLE])
    expect(log.slice(1, 5, 1 << 20).map((e) => `${e.index}@${e.term}`)).toEqual(['1@1', '2@1', '3@2', '4@2'])
    expect(log.slice(2, 4, 1)).toHaveLength(1) // bytesMax: at least one entry
    expect(log.entriesFrom(5, 1 << 20)).toEqual([])
    expect(log.matchTerm(3, 2)).toBe(true)
    expect(log.matchTerm(3, 1)).toBe(false)
    expect(log.matchTerm(9, 2)).toBe(false)
  })

  // §5.3: a conflicting suffix that is still only in storage is hidden once the unstable tail replaces it
  it('a truncation below the stored entries hides them', () => {
    const log = logOf([1, 1, 1, 1])
    expect(log.maybeAppend(2, 1, 0, ents(3, [2]))).toBe(3)
    expect(log.lastIndex()).toBe(3)
    expect(log.term(3)).toBe(2)
    expect(log.term(4)).toBe(TERM_UNAVAILABLE)
  })

  // §5.3 AppendEntries receiver rules 2-5
  it('maybeAppend checks the previous entry, appends, and commits up to the last new entry', () => {
    const log = logOf([1, 1, 1])
    expect(log.maybeAppend(3, 2, 3, ents(4, [2]))).toBe(-1) // previous term differs
    expect(log.maybeAppend(4, 1, 3, [])).toBe(-1) // previous entry missing
    expect(log.maybeAppend(3, 1, 9, ents(4, [2, 2]))).toBe(5)
    expect(log.committed).toBe(5) // min(leader commit, last new)
    expect(log.maybeAppend(2, 1, 9, [])).toBe(2) // a heartbeat-like append
    expect(log.committed).toBe(5) // commit never goes back
    expect(log.lastIndex()).toBe(5) // and nothing was truncated
  })

  // Leader Completeness: committed entries are never truncated (the core asserts)
  it('refuses to overwrite a committed entry', () => {
    const log = logOf([1, 1, 1], 3)
    expect(() => log.maybeAppend(1, 1, 3, ents(2, [2]))).toThrow(AssertionError)
    expect(() => log.append(ents(3, [2]))).toThrow(AssertionError)
    expect(() => log.commitTo(4)).toThrow(AssertionError)
  })

  // §5.4.2: by counting replicas the leader only commits entries of its own term
  it('maybeCommit commits only an entry of the given term, unless told to count prior terms', () => {
    const log = logOf([1, 2, 2, 3])
    expect(log.maybeCommit(3, 3, false)).toBe(false)
    expect(log.committed).toBe(0)
    expect(log.maybeCommit(4, 3, false)).toBe(true)
    expect(log.committed).toBe(4)
    expect(log.maybeCommit(4, 3, false)).toBe(false) // not a new commit
    const unsafe = logOf([1, 2, 2, 3])
    expect(unsafe.maybeCommit(3, 3, true)).toBe(true)
    expect(unsafe.committed).toBe(3)
  })

  // §5.3 / Figure 2: "if commitIndex > lastApplied: increment lastApplied, apply"
  it('hands out committed entries once, in order, up to the byte limit', () => {
    const log = logOf([1, 1, 1, 1], 4)
    expect(log.nextCommittedEnts(1).map((e) => e.index)).toEqual([1])
    expect(log.nextCommittedEnts(1 << 20).map((e) => e.index)).toEqual([1, 2, 3, 4])
    log.acceptApplying(2)
    expect(log.nextCommittedEnts(1 << 20).map((e) => e.index)).toEqual([3, 4])
    log.appliedTo(4)
    expect(log.hasNextCommittedEnts()).toBe(false)
    expect(() => log.appliedTo(5)).toThrow(AssertionError)
  })

  // Figure 2 (lastApplied is volatile: the host tells it on restart)
  it('restarts with the applied index given by the host', () => {
    const st = storageWithLog([1], [1, 1, 1, 1], { commit: 3 })
    const log = new RaftLog(st, 2)
    expect(log.committed).toBe(3)
    expect(log.applied).toBe(2)
    expect(log.nextCommittedEnts(1 << 20).map((e) => e.index)).toEqual([3])
    // an applied index is a committed one (issue 13): it raises the commit index
    const ahead = new RaftLog(st, 4)
    expect([ahead.committed, ahead.applied, ahead.nextCommittedEnts(1 << 20).length]).toEqual([4, 4, 0])
    // but a state machine ahead of the whole log has lost entries
    expect(() => new RaftLog(st, 5)).toThrow(AssertionError)
  })

  // issue 13: a snapshot covers committed entries, compacted or not
  it('restarts with the commit index at least the snapshot index', () => {
    const st = storageWithLog([1], [1, 1, 1, 1], { commit: 1 })
    st.createSnapshot(3, { voters: [1] }, new Uint8Array(0))
    const log = new RaftLog(st, 3)
    expect([log.committed, log.applied, log.firstIndex()]).toEqual([3, 3, 1])
    st.compact(2)
    expect(new RaftLog(st, 0).committed).toBe(3)
    // a host below the first entry can only have loaded the snapshot
    expect(new RaftLog(st, 0).applied).toBe(3)
    expect(new RaftLog(st, 2).applied).toBe(2)
  })
})
