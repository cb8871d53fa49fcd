import { describe, expect, it } from 'vitest'
import { drainPlan } from '../../src/cli/moves.js'
import type { MetadataResponse } from '../../src/protocol/api.js'

const nodes = [1, 2, 3, 4].map((id) => ({ id, host: '127.0.0.1', port: 7069 + id }))
const md = (partitions: { replicas: number[]; target?: number[] }[]): MetadataResponse => ({
  nodes,
  topics: [{ name: 't', partitions: partitions.map((p, i) => ({ partition: i, leader: p.replicas[0]!, ...p })) }],
})

describe('node drain planning', () => {
  it('replaces the node in place (a preferred leader by its replacement) with the node holding the fewest replicas', () => {
    const plan = drainPlan(md([{ replicas: [1, 2] }, { replicas: [2, 1] }, { replicas: [3, 4] }, { replicas: [1, 3] }]), 1)
    expect(plan.stuck).toEqual([])
    // loads without node 1: 2 -> 2, 3 -> 2, 4 -> 1; each choice counts toward the next (ties: the lower id)
    expect(plan.moves.map((m) => [m.partition, m.to])).toEqual([
      [0, [4, 2]],
      [1, [2, 3]],
      [3, [2, 3]],
    ])
  })

  it('plans from a move in progress, and names what cannot go anywhere', () => {
    const plan = drainPlan(md([{ replicas: [1, 2], target: [3, 4] }, { replicas: [2, 3, 4], target: [1, 2, 3, 4] }]), 4)
    expect(plan.moves.map((m) => [m.partition, m.to])).toEqual([[0, [3, 1]]])
    expect(plan.stuck).toEqual(['t/1 (replicas 1,2,3,4: every other node holds one already)'])
  })
})
