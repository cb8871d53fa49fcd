/**
 * `raftmq cluster status` over stub answers (src/cli/cluster-status.ts): what it makes of
 * a replica catching up by snapshot.
 */
import { describe, expect, it } from 'vitest'
import type { Client } from '../../src/client/index.js'
import { clusterStatus } from '../../src/cli/cluster-status.js'
import type { DescribeClusterResponse, GroupReport } from '../../src/protocol/api.js'

function stubClient(groups: Record<number, GroupReport[]>): Client {
  const ids = [1, 2, 3]
  const md = {
    nodes: ids.map((id) => ({ id, host: '127.0.0.1', port: 7000 + id })),
    topics: [{ name: 't', partitions: [{ partition: 0, leader: 1, replicas: [1, 2, 3] }] }],
  }
  return {
    metadata: async () => md,
    requestNode: async (id: number): Promise<DescribeClusterResponse> => ({
      nodeId: id,
      nodes: ids.map((o) => ({ id: o, host: '127.0.0.1', port: 7000 + o, up: true })),
      controller: { leader: 1, voters: ids },
      groups: groups[id] ?? [],
    }),
  } as unknown as Client
}

const group = (over: Partial<GroupReport>): GroupReport => ({
  topic: 't',
  partition: 0,
  groupId: 1,
  role: 'follower',
  quiet: false,
  leader: 1,
  term: 4,
  commit: 5_000,
  applied: 5_000,
  lastIndex: 5_000,
  behind: false,
  snapshotBytes: 0,
  snapshotBytesTotal: 0,
  followers: [],
  ...over,
})

describe('cluster status - catch-up by snapshot', () => {
  it('shows a replica receiving a snapshot, with its bytes so far and in all, and calls the cluster degraded until it is done', async () => {
    const leader = group({ role: 'leader', followers: [{ id: 2, match: 5_000, active: true }, { id: 3, match: 12, active: true }] })
    const catching = await clusterStatus(stubClient({ 1: [leader], 2: [group({})], 3: [group({ commit: 12, applied: 12, lastIndex: 12, behind: true, snapshotBytes: 4_096, snapshotBytesTotal: 65_536 })] }))
    expect(catching.text).toMatch(/^t +0 +1 +1,2,3 .*catching up by snapshot on 3: 4096 of 65536 bytes/m)
    expect(catching.degraded).toBe(true)
    const done = await clusterStatus(stubClient({ 1: [{ ...leader, followers: [{ id: 2, match: 5_000, active: true }, { id: 3, match: 5_000, active: true }] }], 2: [group({})], 3: [group({})] }))
    expect(done.text).not.toMatch(/snapshot/)
    expect(done.text).toMatch(/^t +0 +1 +1,2,3 .* ok$/m)
    expect(done.degraded).toBe(false)
  })
})
