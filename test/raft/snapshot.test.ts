import { describe, expect, it } from 'vitest'
import { MessageType, ProgressState } from '../../src/raft/index.js'
import type { Ready, Snapshot } from '../../src/raft/index.js'
import { TestCluster, bytes } from '../support/cluster.js'

/** Stops 3, commits 30 entries on 1 and 2, and has node 1's host snapshot and compact at its applied index. */
function behind(): { c: TestCluster; snapIndex: number } {
  const c = new TestCluster({ ids: [1, 2, 3], seed: 6 })
  c.elect(1)
  c.node(1).propose([bytes('early')])
  c.stabilize()
  c.stop(3)
  for (let i = 0; i < 30; i++) {
    c.node(1).propose([bytes(`e${i}`)])
    c.stabilize()
  }
  const lead = c.node(1)
  const applied = lead.status().applied
  expect(applied).toBe(lead.status().commit)
  const st = c.storages.get(1)!
  st.createSnapshot(applied, lead.confAt(applied), bytes(`state@${applied}`))
  st.compact(applied)
  expect(st.firstIndex()).toBe(applied + 1)
  return { c, snapIndex: applied }
}

describe('raft snapshot - install and catch up', () => {
  // §7: a follower too far behind gets the leader's snapshot (InstallSnapshot), then the rest of the log
  it('a restarted follower behind the compaction point receives a Snap, installs it and catches up', () => {
    const { c, snapIndex } = behind()
    c.recordDelivered = true
    const snaps: Snapshot[] = []
    c.onReady = (id: number, rd: Ready) => {
      if (id === 3 && rd.snapshot) snaps.push(rd.snapshot)
    }
    c.restart(3)
    c.tickStabilize(3)
    const snapMsgs = c.delivered.filter((m) => m.type === MessageType.Snap)
    expect(snapMsgs).toHaveLength(1)
    expect(snapMsgs[0]!.to).toBe(3)
    expect(snapMsgs[0]!.snapshot!.metadata.index).toBe(snapIndex)
    // Ready.snapshot carried it to node 3's host, with the leader's state machine data and configuration
    expect(snaps).toHaveLength(1)
    expect(new TextDecoder().decode(snaps[0]!.data)).toBe(`state@${snapIndex}`)
    expect(snaps[0]!.metadata.conf.voters).toEqual([1, 2, 3])
    const st3 = c.storages.get(3)!
    expect(st3.snapshot().metadata.index).toBe(snapIndex)

    // caught up: same log after the snapshot, same commit, replicating again
    c.node(1).propose([bytes('after')])
    c.stabilize()
    expect(c.log(3)).toEqual(c.log(1))
    expect(c.node(3).status().commit).toBe(c.node(1).status().commit)
    expect(c.node(1).status().progress.get(3)).toMatchObject({ state: ProgressState.Replicate, match: c.node(1).status().lastIndex })
    // node 3 applied nothing twice: the entries after the snapshot, then the new one
    expect(c.applied.get(3)!.every((e) => e.index > snapIndex)).toBe(true)
    expect(c.appliedData(3).at(-1)).toBe('after')
  })

  // §7: the snapshot replaces the follower's log up to its index; restarting from storage keeps it
  it('the installed snapshot survives a restart of the follower', () => {
    const { c, snapIndex } = behind()
    c.restart(3)
    c.tickStabilize(3)
    const last = c.node(1).status().lastIndex
    c.stop(3)
    const n3 = c.restart(3)
    expect(n3.status()).toMatchObject({ firstIndex: snapIndex + 1, lastIndex: last })
    expect(n3.status().commit).toBeGreaterThanOrEqual(snapIndex)
    c.tickStabilize(3)
    expect(c.node(3).status().commit).toBe(c.node(1).status().commit)
  })

  // §7: a follower that is merely behind, not past the compaction point, gets entries, not a snapshot
  it('a follower behind but within the log gets appends, not a snapshot', () => {
    const c = new TestCluster({ ids: [1, 2, 3], seed: 6 })
    c.elect(1)
    c.node(1).propose([bytes('a'), bytes('b'), bytes('c'), bytes('d')])
    c.stabilize()
    c.stop(3) // node 3 has entries 1..5
    for (let i = 0; i < 10; i++) {
      c.node(1).propose([bytes(`e${i}`)])
      c.stabilize()
    }
    const st = c.storages.get(1)!
    st.createSnapshot(4, c.node(1).confAt(4), bytes('s'))
    st.compact(4)
    c.recordDelivered = true
    c.restart(3)
    c.tickStabilize(3)
    expect(c.delivered.filter((m) => m.type === MessageType.Snap)).toHaveLength(0)
    expect(c.log(3).slice(-10)).toEqual(c.log(1).slice(-10))
  })

  // §7 / Figure 13: InstallSnapshot is retried like any RPC: a lost snapshot is sent again
  it('resends a lost snapshot after a timeout', () => {
    const { c, snapIndex } = behind()
    let dropped = 0
    c.filter = (m) => {
      if (m.type === MessageType.Snap && dropped === 0) {
        dropped++
        return false
      }
      return true
    }
    c.recordDelivered = true
    c.restart(3)
    c.tickStabilize(3)
    expect(dropped).toBe(1)
    expect(c.storages.get(3)!.snapshot().metadata.index).toBe(0)
    c.tickStabilize(40)
    expect(c.delivered.filter((m) => m.type === MessageType.Snap)).toHaveLength(1)
    expect(c.storages.get(3)!.snapshot().metadata.index).toBe(snapIndex)
    expect(c.log(3)).toEqual(c.log(1))
  })
})
