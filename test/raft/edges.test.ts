/**
 * Rules of the core that the mutation run (test/sim/MUTATION-REPORT.md) found no test
 * holding: each test pins one rule whose mutant survived the unit tests and the
 * simulator's slice and could break a safety property (a vote, a snapshot, a membership
 * change, the durable log). A single node is driven by hand (follow, msg), so each rule is
 * seen alone.
 */
import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { ConfChangeOp, EntryType, MemoryStorage, MessageType, RaftNode, TERM_UNAVAILABLE, applyConfChange, encodeConfChange } from '../../src/raft/index.js'
import type { ConfState, Entry, Message, Ready, Snapshot } from '../../src/raft/index.js'
import { RaftLog } from '../../src/raft/log.js'
import { Unstable } from '../../src/raft/unstable.js'
import { bytes, follow, msg, storageWithLog } from '../support/cluster.js'

const node = (st: MemoryStorage, id = 1): RaftNode => new RaftNode({ id, storage: st, prng: new Prng(id), preVote: true, checkQuorum: false })
const entry = (index: number, term: number, data = `${index}@${term}`): Entry => ({ index, term, type: EntryType.Normal, data: bytes(data) })
const confEntry = (index: number, term: number, prev: ConfState, op: ConfChangeOp, nodeId: number): Entry => {
  const cc = { op, nodeId }
  return { index, term, type: EntryType.ConfChange, data: encodeConfChange(cc, applyConfChange(prev, cc)) }
}
/** The first message of `type` a Ready sends, before or after its write. */
const sent = (rd: Ready, type: MessageType): Message | undefined => rd.messages.concat(rd.messagesAfterPersist).find((m) => m.type === type)
const snapshot = (index: number, term: number, voters: number[]): Snapshot => ({ metadata: { index, term, conf: { voters } }, data: bytes(`state@${index}`) })

describe('votes', () => {
  it('granting a pre-vote does not cast a vote: a real vote of the same term to another candidate is refused', () => {
    // node 1 voted for 2 in term 5; 3 asks for a pre-vote of term 6, then (delayed) a vote of term 5
    const st = storageWithLog([1, 2, 3], [1, 1], { term: 5, vote: 2 })
    const n = node(st)
    n.step(msg({ type: MessageType.PreVote, from: 3, to: 1, term: 6, index: 2, logTerm: 1 }))
    const pre = follow(n, st)
    expect(sent(pre, MessageType.PreVoteResp)?.reject).toBe(false)
    n.step(msg({ type: MessageType.Vote, from: 3, to: 1, term: 5, index: 2, logTerm: 1 }))
    const rd = follow(n, st)
    const resp = sent(rd, MessageType.VoteResp)
    expect(resp?.reject).toBe(true)
    expect(st.hardState().vote).toBe(2)
  })

  it('a vote cast in the term the node already holds is synced before its answer leaves', () => {
    const st = storageWithLog([1, 2, 3], [1], { term: 4, vote: 0 })
    const n = node(st)
    n.step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 4, index: 1, logTerm: 1 }))
    const rd = n.ready()
    expect(rd.hardState).toMatchObject({ term: 4, vote: 2 })
    expect(rd.mustSync).toBe(true)
    expect(rd.messagesAfterPersist.some((m) => m.type === MessageType.VoteResp && !m.reject)).toBe(true)
  })
})

describe('snapshots on a follower', () => {
  it('a snapshot Ready is synced, and an installed snapshot is handed to the host', () => {
    const st = storageWithLog([1, 2, 3], [1, 1], { term: 2 })
    const n = node(st)
    n.step(msg({ type: MessageType.Snap, from: 2, to: 1, term: 2, snapshot: snapshot(20, 2, [1, 2, 3]) }))
    const rd = n.ready()
    expect(rd.snapshot?.metadata.index).toBe(20)
    expect(rd.mustSync).toBe(true)
    st.persist(rd)
    n.advance()
    expect(n.status()).toMatchObject({ commit: 20, lastIndex: 20 })
    expect(rd.messagesAfterPersist.find((m) => m.type === MessageType.AppResp)?.index).toBe(20)
  })

  it('a snapshot the log already matches is not installed: the entries after it stay, and the answer claims only the commit', () => {
    const st = storageWithLog([1, 2, 3], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], { term: 1, commit: 3 })
    const n = node(st)
    n.step(msg({ type: MessageType.Snap, from: 2, to: 1, term: 1, snapshot: snapshot(8, 1, [1, 2, 3]) }))
    const rd = follow(n, st)
    expect(rd.snapshot).toBeNull()
    expect(n.status()).toMatchObject({ commit: 8, lastIndex: 10 })
    expect(sent(rd, MessageType.AppResp)?.index).toBe(8)
  })

  it('a snapshot at or below the commit index is not installed, even where the log no longer holds its index', () => {
    const st = storageWithLog([1, 2, 3], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], { term: 1, commit: 9 })
    st.createSnapshot(7, { voters: [1, 2, 3] }, bytes('state@7'))
    st.compact(7)
    const n = node(st)
    n.step(msg({ type: MessageType.Snap, from: 2, to: 1, term: 1, snapshot: snapshot(5, 1, [1, 2, 3]) }))
    const rd = follow(n, st)
    expect(rd.snapshot).toBeNull()
    expect(n.status()).toMatchObject({ commit: 9, lastIndex: 10 })
    expect(sent(rd, MessageType.AppResp)?.index).toBe(9)
  })
})

describe('membership', () => {
  const base: ConfState = { voters: [1, 2, 3] }

  it('the configuration as of an index: before, at and after a ConfChange', () => {
    const st = storageWithLog([1, 2, 3], [1, 1])
    st.append([confEntry(3, 1, base, ConfChangeOp.AddVoter, 4), entry(4, 1)])
    const n = node(st)
    expect(n.confAt(2).voters).toEqual([1, 2, 3])
    expect(n.confAt(3).voters).toEqual([1, 2, 3, 4])
    expect(n.confAt(4).voters).toEqual([1, 2, 3, 4])
  })

  it('a restart takes a ConfChange that is the last entry of the log', () => {
    const st = storageWithLog([1, 2, 3], [1, 1])
    st.append([confEntry(3, 1, base, ConfChangeOp.RemoveVoter, 3)])
    expect(node(st).voters()).toEqual([1, 2])
  })

  it('a restart does not replay ConfChanges kept from before the snapshot over its configuration', () => {
    // entries 1..6 kept (compaction keeps some), a change at 3 (add 4) covered by the snapshot at 5 whose configuration removed 2 since
    const st = storageWithLog([1, 2, 3], [1, 1])
    st.append([confEntry(3, 1, base, ConfChangeOp.AddVoter, 4), entry(4, 1), confEntry(5, 1, { voters: [1, 2, 3, 4] }, ConfChangeOp.RemoveVoter, 2), entry(6, 1)])
    st.createSnapshot(5, { voters: [1, 3, 4] }, bytes('state@5'))
    const n = node(st)
    expect(n.voters()).toEqual([1, 3, 4])
    expect(n.confAt(5).voters).toEqual([1, 3, 4])
  })

  it('a restart over a snapshot whose index is a ConfChange does not apply the changes it covers again', () => {
    // 4 removes 3, 5 adds 4: the snapshot at 5 holds [1, 2, 4]; taking 4 again on top of it is a disagreement
    const st = storageWithLog([1, 2, 3], [1, 1, 1])
    st.append([confEntry(4, 1, base, ConfChangeOp.RemoveVoter, 3), confEntry(5, 1, { voters: [1, 2] }, ConfChangeOp.AddVoter, 4)])
    st.createSnapshot(5, { voters: [1, 2, 4] }, bytes('state@5'))
    const n = node(st)
    expect(n.voters()).toEqual([1, 2, 4])
  })

  it('a ConfChange a new leader truncates takes its configuration with it', () => {
    const st = storageWithLog([1, 2, 3], [1, 1])
    const n = node(st)
    n.step(msg({ type: MessageType.App, from: 2, to: 1, term: 1, index: 2, logTerm: 1, entries: [confEntry(3, 1, base, ConfChangeOp.RemoveVoter, 3)] }))
    follow(n, st)
    expect(n.voters()).toEqual([1, 2])
    n.step(msg({ type: MessageType.App, from: 3, to: 1, term: 2, index: 2, logTerm: 1, entries: [entry(3, 2)] }))
    follow(n, st)
    expect(n.logTerm(3)).toBe(2)
    expect(n.voters()).toEqual([1, 2, 3])
  })

  // "add 4" to [1, 2, 3], as a leader whose log diverged from this node's configuration would claim it
  it.each([
    { claim: [1, 2, 4], what: 'a configuration other than the change yields' },
    { claim: [1, 2, 3, 4, 5], what: 'more voters than the change yields' },
    { claim: [1, 2, 3, 5], what: 'as many voters as the change yields, but others' },
  ])('a ConfChange that claims $what stops the node', ({ claim }) => {
    const n = node(storageWithLog([1, 2, 3], [1, 1]))
    const bad: Entry = { index: 3, term: 1, type: EntryType.ConfChange, data: encodeConfChange({ op: ConfChangeOp.AddVoter, nodeId: 4 }, { voters: claim }) }
    expect(() => n.step(msg({ type: MessageType.App, from: 2, to: 1, term: 1, index: 2, logTerm: 1, entries: [bad] }))).toThrow(/ConfChange at 3/)
  })
})

describe('the log', () => {
  it('a restart refuses a snapshot beyond the end of the log (the store lost synced entries)', () => {
    const st = storageWithLog([1, 2, 3], [1, 1, 1])
    st.applySnapshot(snapshot(5, 1, [1, 2, 3]))
    // a log store that kept the snapshot's record but lost entries it vouched for
    Object.defineProperty(st, 'lastIndex', { value: () => 3 })
    expect(() => new RaftLog(st, 0)).toThrow(/snapshot at 5 beyond the last index 3/)
  })

  it('a slice that storage cuts short at the byte limit does not go on into the unstable tail', () => {
    const st = new MemoryStorage([1])
    st.append([entry(1, 1, 'x'.repeat(100)), entry(2, 1, 'x'.repeat(100))])
    const log = new RaftLog(st, 0)
    log.append([entry(3, 1), entry(4, 1)])
    const out = log.slice(1, 5, 150)
    expect(out.map((e) => e.index)).toEqual([1])
  })

  it('a term read past a truncation is unavailable, not the replaced entry from storage', () => {
    const st = storageWithLog([1], [1, 1, 1, 1, 1])
    const log = new RaftLog(st, 0)
    log.append([entry(3, 2)])
    expect(log.lastIndex()).toBe(3)
    expect(log.term(3)).toBe(2)
    expect(log.term(4)).toBe(TERM_UNAVAILABLE)
  })

  it('below an unpersisted snapshot the log starts after it, and terms before it are unavailable', () => {
    const st = storageWithLog([1], [1, 1, 1, 1, 1])
    const log = new RaftLog(st, 0)
    log.restore(snapshot(20, 3, [1]))
    expect(log.firstIndex()).toBe(21)
    expect(log.term(20)).toBe(3)
    expect(log.term(4)).toBe(TERM_UNAVAILABLE)
  })

  it('MemoryStorage appends after a compaction at the right positions', () => {
    const st = storageWithLog([1], [1, 1, 1, 1, 1, 1, 1, 1])
    st.compact(4)
    st.append([entry(6, 2), entry(7, 2)])
    expect(st.lastIndex()).toBe(7)
    expect([5, 6, 7].map((i) => st.term(i))).toEqual([1, 2, 2])
  })

  it('an installed snapshot is handed to the host even after an earlier one was in progress', () => {
    const u = new Unstable(1)
    u.restore(snapshot(5, 1, [1]))
    u.acceptInProgress()
    expect(u.nextSnapshot()).toBeNull()
    u.restore(snapshot(9, 2, [1]))
    expect(u.nextSnapshot()?.metadata.index).toBe(9)
  })
})
