import { describe, expect, it } from 'vitest'
import { MetadataStateMachine, encodeMetadataCommand } from '../../src/controller/index.js'
import type { MetadataCommand } from '../../src/controller/index.js'
import { Packr } from 'msgpackr'

const config = { retentionMs: null, retentionBytes: null }
const create = (name: string, partitions: number): MetadataCommand => ({ op: 'createTopic', name, partitions, replicas: [1], config })

describe('controller metadata - topics', () => {
  it('creates topics with one Raft group per partition, never reusing a group id', () => {
    const sm = new MetadataStateMachine()
    const a = sm.apply(1, encodeMetadataCommand(create('orders', 3)))
    expect(a.ok).toBe(true)
    expect(sm.topics.get('orders')!.partitions.map((p) => p.groupId)).toEqual([1, 2, 3])
    sm.apply(2, encodeMetadataCommand({ op: 'deleteTopic', name: 'orders' }))
    sm.apply(3, encodeMetadataCommand(create('orders', 1)))
    expect(sm.topics.get('orders')!.partitions.map((p) => p.groupId)).toEqual([4])
    expect(sm.topics.get('orders')!.createdAt).toBe(3)
  })

  it('refuses a duplicate name and an unknown delete, changing nothing', () => {
    const sm = new MetadataStateMachine()
    sm.apply(1, encodeMetadataCommand(create('t', 1)))
    const v = sm.version
    const dup = sm.apply(2, encodeMetadataCommand(create('t', 5)))
    expect(dup.ok ? null : dup.error.code).toBe('TOPIC_EXISTS')
    const del = sm.apply(3, encodeMetadataCommand({ op: 'deleteTopic', name: 'nope' }))
    expect(del.ok ? null : del.error.code).toBe('UNKNOWN_TOPIC')
    expect(sm.version).toBe(v)
    expect(sm.topics.get('t')!.partitions.length).toBe(1)
  })

  it('allocates increasing producer ids, and a garbage entry is refused without wedging', () => {
    const sm = new MetadataStateMachine()
    const ids = [1, 2, 3].map((i) => sm.apply(i, encodeMetadataCommand({ op: 'allocateProducerId' })))
    expect(ids.map((r) => (r.ok ? (r.value as { producerId: number }).producerId : -1))).toEqual([1, 2, 3])
    const bad = sm.apply(4, new Uint8Array([0xc1, 0xff]))
    expect(bad.ok ? null : bad.error.code).toBe('INVALID_REQUEST')
    expect(sm.apply(5, new Uint8Array(0)).ok).toBe(true)
  })

  it('replicas applying the same commands reach the same state', () => {
    const cmds: MetadataCommand[] = [create('a', 2), { op: 'allocateProducerId' }, create('b', 4), { op: 'deleteTopic', name: 'a' }, create('c', 1)]
    const [x, y] = [new MetadataStateMachine(), new MetadataStateMachine()]
    cmds.forEach((c, i) => {
      x.apply(i + 1, encodeMetadataCommand(c))
      y.apply(i + 1, encodeMetadataCommand(c))
    })
    expect([...y.topics.entries()]).toEqual([...x.topics.entries()])
    expect(y.groups()).toEqual(x.groups())
  })
})

describe('controller metadata - partition moves', () => {
  const start = (): MetadataStateMachine => {
    const sm = new MetadataStateMachine()
    sm.apply(1, encodeMetadataCommand({ op: 'createTopic', name: 't', partitions: 2, replicas: [1, 2], assignments: [[1, 2], [2, 3]], config }))
    return sm
  }
  const at = (sm: MetadataStateMachine, p: number) => sm.topics.get('t')!.partitions[p]!

  it('records a target, keeps the replicas the group really has until its leader reports each change, and drops the target when it is reached', () => {
    const sm = start()
    expect(sm.apply(2, encodeMetadataCommand({ op: 'movePartition', name: 't', partition: 0, replicas: [3, 2] })).ok).toBe(true)
    expect(at(sm, 0)).toMatchObject({ replicas: [1, 2], target: [3, 2] })
    // node 3 added (voters 1,2,3): the target's order first, then the rest
    sm.apply(3, encodeMetadataCommand({ op: 'partitionConf', groupId: at(sm, 0).groupId, confIndex: 40, voters: [1, 2, 3] }))
    expect(at(sm, 0)).toMatchObject({ replicas: [3, 2, 1], target: [3, 2], confIndex: 40 })
    // a stale report (another replica, or a retry) changes nothing
    sm.apply(4, encodeMetadataCommand({ op: 'partitionConf', groupId: at(sm, 0).groupId, confIndex: 12, voters: [1, 2] }))
    expect(at(sm, 0)).toMatchObject({ replicas: [3, 2, 1], confIndex: 40 })
    // node 1 removed: the target is reached
    sm.apply(5, encodeMetadataCommand({ op: 'partitionConf', groupId: at(sm, 0).groupId, confIndex: 41, voters: [2, 3] }))
    expect(at(sm, 0)).toEqual({ partition: 0, groupId: at(sm, 0).groupId, replicas: [3, 2], confIndex: 41 })
    // the other partition never moved
    expect(at(sm, 1)).toEqual({ partition: 1, groupId: at(sm, 1).groupId, replicas: [2, 3] })
  })

  it('the same replicas as now cancel a move; unknown topics and partitions and bad lists are refused, changing nothing', () => {
    const sm = start()
    sm.apply(2, encodeMetadataCommand({ op: 'movePartition', name: 't', partition: 1, replicas: [1, 3] }))
    expect(at(sm, 1).target).toEqual([1, 3])
    sm.apply(3, encodeMetadataCommand({ op: 'movePartition', name: 't', partition: 1, replicas: [3, 2] }))
    expect(at(sm, 1)).toEqual({ partition: 1, groupId: at(sm, 1).groupId, replicas: [3, 2] })
    const v = sm.version
    const codes = [
      { op: 'movePartition', name: 'nope', partition: 0, replicas: [1] },
      { op: 'movePartition', name: 't', partition: 7, replicas: [1] },
      { op: 'movePartition', name: 't', partition: 0, replicas: [1, 1] },
      { op: 'movePartition', name: 't', partition: 0, replicas: [] },
    ].map((c, i) => {
      const r = sm.apply(4 + i, encodeMetadataCommand(c as MetadataCommand))
      return r.ok ? 'ok' : r.error.code
    })
    expect(codes).toEqual(['UNKNOWN_TOPIC', 'UNKNOWN_PARTITION', 'INVALID_REQUEST', 'INVALID_REQUEST'])
    expect(sm.version).toBe(v)
  })

  it('a target survives the snapshot', () => {
    const sm = start()
    sm.apply(2, encodeMetadataCommand({ op: 'movePartition', name: 't', partition: 0, replicas: [2, 3] }))
    const back = MetadataStateMachine.restore(sm.snapshot())
    expect(back.ok && back.value.topics.get('t')!.partitions[0]).toEqual(at(sm, 0))
  })
})

describe('controller metadata - nodes added to the running cluster', () => {
  it('records an added node and its peer address (again: a new address), keeps it in the snapshot, and removes it only once no partition names it', () => {
    const sm = new MetadataStateMachine()
    sm.apply(1, encodeMetadataCommand({ op: 'addNode', id: 4, host: '10.0.0.4', port: 7170 }))
    sm.apply(2, encodeMetadataCommand({ op: 'addNode', id: 4, host: '10.0.0.9', port: 7170 }))
    sm.apply(3, encodeMetadataCommand({ op: 'registerNode', id: 4, host: '10.0.0.9', port: 7070 }))
    expect([...sm.added.values()]).toEqual([{ id: 4, host: '10.0.0.9', port: 7170 }])
    const back = MetadataStateMachine.restore(sm.snapshot())
    expect(back.ok && [...back.value.added.values()]).toEqual([{ id: 4, host: '10.0.0.9', port: 7170 }])

    sm.apply(4, encodeMetadataCommand({ op: 'createTopic', name: 't', partitions: 2, replicas: [1, 2], assignments: [[1, 2], [2, 3]], config }))
    sm.apply(5, encodeMetadataCommand({ op: 'movePartition', name: 't', partition: 1, replicas: [4, 3] }))
    const v = sm.version
    const refused = (index: number, id: number): string => {
      const r = sm.apply(index, encodeMetadataCommand({ op: 'removeNode', id }))
      return r.ok ? 'ok' : `${r.error.code}: ${r.error.message}`
    }
    // a move target names it: refused, changing nothing
    expect(refused(6, 4)).toMatch(/^INVALID_NODE: node 4 still holds 1 partition replica \(t\/1\): drain it first/)
    // a node never added (one started with --peers) is not removed by the metadata
    expect(refused(7, 2)).toMatch(/^INVALID_NODE: node 2 was not added/)
    expect(sm.version).toBe(v)
    // the move is cancelled: nothing names it any more, and it goes (its client address too)
    sm.apply(8, encodeMetadataCommand({ op: 'movePartition', name: 't', partition: 1, replicas: [2, 3] }))
    expect(refused(9, 4)).toBe('ok')
    expect(sm.added.size).toBe(0)
    expect(sm.nodes.has(4)).toBe(false)
  })

  it('restores snapshots written before nodes could be added (version 2) with none added', () => {
    const sm = new MetadataStateMachine()
    sm.apply(1, encodeMetadataCommand({ op: 'registerNode', id: 1, host: 'a', port: 1 }))
    // a version 2 snapshot is a version 3 one without `added`
    const packr = new Packr({ useRecords: false, moreTypes: false })
    const v3 = packr.unpack(sm.snapshot()) as Record<string, unknown>
    expect(v3.v).toBe(3)
    const v2: Record<string, unknown> = { ...v3, v: 2 }
    delete v2.added
    const back = MetadataStateMachine.restore(new Uint8Array(packr.pack(v2)))
    expect(back.ok && back.value.added.size).toBe(0)
    expect(back.ok && back.value.nodes.get(1)).toEqual({ id: 1, host: 'a', port: 1 })
    // and a version 3 one without its list is refused
    expect(MetadataStateMachine.restore(new Uint8Array(packr.pack({ ...v2, v: 3 }))).ok).toBe(false)
  })
})

describe('controller metadata - alterTopic', () => {
  it('replaces the retention and appends partitions as new groups; an unknown topic is refused', () => {
    const sm = new MetadataStateMachine()
    sm.apply(1, encodeMetadataCommand(create('t', 2)))
    sm.apply(2, encodeMetadataCommand(create('u', 1)))
    const r = sm.apply(3, encodeMetadataCommand({ op: 'alterTopic', name: 't', config: { retentionMs: 1000, retentionBytes: null }, assignments: [[2, 1], [3, 1]] }))
    expect(r.ok).toBe(true)
    const t = sm.topics.get('t')!
    expect(t.config).toEqual({ retentionMs: 1000, retentionBytes: null })
    // group ids continue after every group in use (u's is 3), never reused
    expect(t.partitions.map((p) => [p.partition, p.groupId, p.replicas])).toEqual([
      [0, 1, [1]],
      [1, 2, [1]],
      [2, 4, [2, 1]],
      [3, 5, [3, 1]],
    ])
    const back = MetadataStateMachine.restore(sm.snapshot())
    expect(back.ok && back.value.topics.get('t')).toEqual(t)
    const v = sm.version
    const bad = sm.apply(4, encodeMetadataCommand({ op: 'alterTopic', name: 'nope', config: { retentionMs: 1, retentionBytes: null } }))
    expect(!bad.ok && bad.error.code).toBe('UNKNOWN_TOPIC')
    expect(sm.version).toBe(v)
  })
})
