import { describe, expect, it } from 'vitest'
import { AssertionError } from '../../src/base/index.js'
import { EntryType, MemoryStorage, TERM_UNAVAILABLE, entryBytes } from '../../src/raft/index.js'
import type { Entry } from '../../src/raft/index.js'
import { bytes, storageWithLog } from '../support/cluster.js'

const ent = (index: number, term: number, data = ''): Entry => ({ index, term, type: EntryType.Normal, data: bytes(data) })
const ents = (from: number, terms: number[]): Entry[] => terms.map((t, k) => ent(from + k, t))
const all = (st: MemoryStorage): string[] =>
  st.lastIndex() < st.firstIndex() ? [] : st.entries(st.firstIndex(), st.lastIndex() + 1, 1 << 30).map((e) => `${e.index}@${e.term}`)

describe('raft storage - MemoryStorage', () => {
  // Figure 2: persistent state (currentTerm, votedFor, log[]) starts empty
  it('starts empty with its configuration and hard state', () => {
    const st = new MemoryStorage([3, 1, 2])
    expect(st.firstIndex()).toBe(1)
    expect(st.lastIndex()).toBe(0)
    expect(st.term(0)).toBe(0)
    expect(st.initialState()).toEqual({ hardState: { term: 0, vote: 0, commit: 0 }, conf: { voters: [1, 2, 3] } })
    st.setHardState({ term: 4, vote: 2, commit: 0 })
    expect(st.initialState().hardState).toEqual({ term: 4, vote: 2, commit: 0 })
  })

  // §5.3: the host's write replaces any stored suffix from the first new index on
  it('append extends, and truncates a conflicting suffix', () => {
    const st = new MemoryStorage([1])
    st.append(ents(1, [1, 1, 1]))
    st.append(ents(4, [2]))
    expect(all(st)).toEqual(['1@1', '2@1', '3@1', '4@2'])
    st.append(ents(2, [3]))
    expect(all(st)).toEqual(['1@1', '2@3'])
    expect(st.term(3)).toBe(TERM_UNAVAILABLE)
    st.append([])
    expect(st.lastIndex()).toBe(2)
    expect(() => st.append(ents(5, [3]))).toThrow(AssertionError)
  })

  // §7: compaction drops the prefix; the last compacted entry's term stays known (for the append consistency check)
  it('compact drops entries before the index and keeps its term', () => {
    const st = storageWithLog([1], [1, 1, 2, 2, 3])
    st.compact(3)
    expect(st.firstIndex()).toBe(4)
    expect(st.lastIndex()).toBe(5)
    expect(st.term(3)).toBe(2)
    expect(st.term(2)).toBe(TERM_UNAVAILABLE)
    expect(all(st)).toEqual(['4@2', '5@3'])
    expect(() => st.entries(3, 5, 1 << 20)).toThrow(AssertionError)
    st.compact(2) // older: nothing happens
    expect(st.firstIndex()).toBe(4)
    expect(() => st.compact(6)).toThrow(AssertionError)
    // an append partly below the compaction point keeps only the new part
    st.append(ents(2, [1, 2, 2, 4]))
    expect(all(st)).toEqual(['4@2', '5@4'])
    st.append(ents(1, [1, 1])) // entirely compacted: ignored
    expect(all(st)).toEqual(['4@2', '5@4'])
  })

  // §5.3 / §7: the consistency check must tell "unknown" from a real term
  it('term is unavailable out of range on both sides', () => {
    const st = storageWithLog([1], [1, 2, 3])
    expect(st.term(-1)).toBe(TERM_UNAVAILABLE)
    expect(st.term(4)).toBe(TERM_UNAVAILABLE)
    expect([0, 1, 2, 3].map((i) => st.term(i))).toEqual([0, 1, 2, 3])
  })

  // §5.3: AppendEntries carries "log entries to store (... may send more than one for efficiency)", bounded
  it('entries stops at the byte limit but returns at least one entry', () => {
    const st = new MemoryStorage([1])
    st.append([ent(1, 1, 'aaaa'), ent(2, 1, 'bbbb'), ent(3, 1, 'cccc')])
    const one = entryBytes(ent(1, 1, 'aaaa'))
    expect(st.entries(1, 4, 1)).toHaveLength(1)
    expect(st.entries(1, 4, one)).toHaveLength(1)
    expect(st.entries(1, 4, 2 * one)).toHaveLength(2)
    expect(st.entries(1, 4, 1 << 20)).toHaveLength(3)
    expect(() => st.entries(2, 2, 1 << 20)).toThrow(AssertionError)
    expect(() => st.entries(1, 5, 1 << 20)).toThrow(AssertionError)
  })

  // §7: the host snapshots its state machine at an applied index, with the configuration as of that index
  it('createSnapshot records index, term, configuration and data', () => {
    const st = storageWithLog([1, 2], [1, 1, 2, 2])
    const s = st.createSnapshot(3, { voters: [1, 2, 3] }, bytes('sm'))
    expect(s.metadata).toEqual({ index: 3, term: 2, conf: { voters: [1, 2, 3] } })
    expect(st.snapshot()).toBe(s)
    expect(st.initialState().conf).toEqual({ voters: [1, 2, 3] })
    expect(st.firstIndex()).toBe(1) // creating a snapshot does not compact
    expect(() => st.createSnapshot(3, { voters: [1] }, bytes(''))).toThrow(AssertionError) // not newer
    expect(() => st.createSnapshot(5, { voters: [1] }, bytes(''))).toThrow(AssertionError) // beyond the log
  })

  // §7: a follower installing the leader's snapshot discards its whole log
  it('applySnapshot replaces everything, and refuses an older snapshot', () => {
    const st = storageWithLog([1], [1, 1, 1])
    const snap = { metadata: { index: 10, term: 4, conf: { voters: [1, 2] } }, data: bytes('x') }
    st.applySnapshot(snap)
    expect(st.firstIndex()).toBe(11)
    expect(st.lastIndex()).toBe(10)
    expect(st.term(10)).toBe(4)
    expect(st.snapshot()).toBe(snap)
    st.append(ents(11, [4]))
    expect(all(st)).toEqual(['11@4'])
    expect(() => st.applySnapshot({ ...snap, metadata: { ...snap.metadata, index: 5 } })).toThrow(AssertionError)
  })
})
