import { describe, expect, it } from 'vitest'
import { AssertionError } from '../../src/base/index.js'
import { Inflights, Progress, ProgressState } from '../../src/raft/progress.js'

describe('raft progress - inflights', () => {
  // the bounded window of pipelined appends (thesis §10.2.2)
  it('fills up to its capacity and refuses more', () => {
    const inf = new Inflights(4)
    for (const i of [10, 20, 30]) inf.add(i)
    expect(inf.full()).toBe(false)
    inf.add(40)
    expect(inf.full()).toBe(true)
    expect(inf.count).toBe(4)
    expect(() => inf.add(50)).toThrow(AssertionError)
  })

  // §5.3: an acknowledgement of index i covers every append up to i
  it('freeLE frees every append up to an index, in order, and ignores lower indexes', () => {
    const inf = new Inflights(4)
    for (const i of [10, 20, 30, 40]) inf.add(i)
    inf.freeLE(5)
    expect(inf.count).toBe(4)
    inf.freeLE(25) // frees 10 and 20, not an exact match
    expect(inf.count).toBe(2)
    expect(inf.full()).toBe(false)
    inf.freeLE(25) // again: nothing more
    expect(inf.count).toBe(2)
    inf.freeLE(100)
    expect(inf.count).toBe(0)
  })

  // thesis §10.2.2 (pipelining): the window is a ring buffer reused forever
  it('wraps around the ring and keeps the order of the entries', () => {
    const inf = new Inflights(4)
    for (const i of [1, 2, 3, 4]) inf.add(i)
    inf.freeLE(3) // start moves to slot 3
    for (const i of [5, 6, 7]) inf.add(i) // slots 0, 1, 2
    expect(inf.full()).toBe(true)
    inf.freeLE(5) // frees 4 (slot 3) and 5 (slot 0, after the wrap)
    expect(inf.count).toBe(2)
    inf.freeLE(6)
    expect(inf.count).toBe(1)
    inf.add(8)
    inf.add(9)
    inf.add(10)
    expect(inf.full()).toBe(true)
    inf.freeLE(9)
    expect(inf.count).toBe(1)
    inf.freeLE(10)
    expect(inf.count).toBe(0)
  })

  // a state change drops the window (thesis §10.2.2)
  it('reset empties it', () => {
    const inf = new Inflights(2)
    inf.add(1)
    inf.add(2)
    inf.reset()
    expect(inf.count).toBe(0)
    inf.add(3)
    inf.add(4)
    expect(inf.full()).toBe(true)
  })

  // a window of zero could never send anything
  it('rejects a zero capacity', () => {
    expect(() => new Inflights(0)).toThrow(AssertionError)
  })
})

describe('raft progress - states', () => {
  // etcd's raft design (Probe / Replicate / Snapshot), the leader's nextIndex/matchIndex of Figure 2
  it('starts in Probe: one append at a time until answered', () => {
    const pr = new Progress(5, 4)
    expect(pr).toMatchObject({ state: ProgressState.Probe, match: 0, next: 5 })
    expect(pr.isPaused()).toBe(false)
    pr.sentEntries(3, 7)
    expect(pr.isPaused()).toBe(true)
    expect(pr.next).toBe(5) // probing does not move next optimistically
    expect(pr.maybeUpdate(7)).toBe(true)
    expect(pr).toMatchObject({ match: 7, next: 8, probeSent: false })
    expect(pr.isPaused()).toBe(false)
    expect(pr.maybeUpdate(6)).toBe(false) // an old acknowledgement
    expect(pr.match).toBe(7)
  })

  // thesis §10.2.2: optimistic nextIndex update while pipelining
  it('Replicate streams optimistically until the window is full', () => {
    const pr = new Progress(5, 2)
    pr.maybeUpdate(4)
    pr.becomeReplicate()
    expect(pr).toMatchObject({ state: ProgressState.Replicate, next: 5 })
    pr.sentEntries(2, 6)
    expect(pr.next).toBe(7)
    expect(pr.isPaused()).toBe(false)
    pr.sentEntries(0, 6) // an empty append takes no slot
    expect(pr.inflights.count).toBe(1)
    pr.sentEntries(3, 9)
    expect(pr.isPaused()).toBe(true)
    pr.maybeUpdate(6)
    pr.inflights.freeLE(6)
    expect(pr.isPaused()).toBe(false)
    expect(pr).toMatchObject({ match: 6, next: 10 })
  })

  // §5.3: on rejection nextIndex is decremented; a rejection of an older append is stale and ignored
  it('maybeDecrTo in Replicate falls back to match+1 and ignores stale rejections', () => {
    const pr = new Progress(1, 8)
    pr.maybeUpdate(5)
    pr.becomeReplicate()
    pr.sentEntries(5, 10)
    expect(pr.next).toBe(11)
    expect(pr.maybeDecrTo(4, 0)).toBe(false) // rejected index <= match: stale
    expect(pr.next).toBe(11)
    expect(pr.maybeDecrTo(5, 0)).toBe(false)
    expect(pr.maybeDecrTo(8, 3)).toBe(true)
    expect(pr.next).toBe(6)
  })

  // §5.3: decrement nextIndex on rejection, with the follower's hint (fast backtracking)
  it('maybeDecrTo in Probe uses the hint, never goes below match+1, and ignores a rejection of another probe', () => {
    const pr = new Progress(11, 8)
    pr.maybeUpdate(2)
    pr.becomeProbe()
    expect(pr.next).toBe(3)
    // the outstanding probe is the append after index 9; a rejection of index 7 is from an older probe
    pr.next = 10
    pr.sentEntries(1, 10)
    expect(pr.maybeDecrTo(7, 5)).toBe(false)
    expect(pr.next).toBe(10)
    expect(pr.probeSent).toBe(true)
    // a rejection of the probe after index 9 with hint 5: next = min(9, 6) = 6
    expect(pr.maybeDecrTo(9, 5)).toBe(true)
    expect(pr).toMatchObject({ next: 6, probeSent: false })
    // a hint below match is clamped to match+1
    pr.sentEntries(1, 6)
    expect(pr.maybeDecrTo(5, 0)).toBe(true)
    expect(pr.next).toBe(3)
  })

  // §7: while a snapshot is pending nothing else is sent; afterwards probing resumes past it
  it('Snapshot pauses everything and resumes probing after the snapshot index', () => {
    const pr = new Progress(3, 4)
    pr.maybeUpdate(2)
    pr.becomeSnapshot(50)
    expect(pr).toMatchObject({ state: ProgressState.Snapshot, pendingSnapshot: 50 })
    expect(pr.isPaused()).toBe(true)
    expect(() => pr.sentEntries(1, 3)).toThrow(AssertionError)
    pr.becomeProbe()
    expect(pr).toMatchObject({ state: ProgressState.Probe, next: 51, pendingSnapshot: 0 })
    // a failed snapshot (pending 0) probes from match+1
    pr.becomeSnapshot(0)
    pr.becomeProbe()
    expect(pr.next).toBe(3)
  })

  // thesis §10.2.2: after a rejection the leader falls back to probing
  it('changing state clears the window', () => {
    const pr = new Progress(1, 2)
    pr.becomeReplicate()
    pr.sentEntries(1, 1)
    pr.sentEntries(1, 2)
    expect(pr.isPaused()).toBe(true)
    pr.becomeProbe()
    expect(pr.inflights.count).toBe(0)
    expect(pr.next).toBe(1)
  })
})
