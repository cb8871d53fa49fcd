import { describe, expect, it } from 'vitest'
import { MetadataStateMachine, encodeMetadataCommand } from '../../src/controller/index.js'
import type { MetadataCommand } from '../../src/controller/index.js'

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
