/**
 * Where a new topic's replicas go: each partition gets `replicationFactor` distinct live
 * nodes, the ones hosting the fewest replicas so far (this topic's included), and its
 * preferred leader — the first replica, which campaigns first — is the chosen node that
 * is preferred leader of the fewest partitions. Replica counts and leader counts both stay
 * within one of each other across the live nodes when a cluster starts empty, so load and
 * leadership spread evenly (Kafka's rack-unaware assignment has the same aim).
 *
 * Pure and deterministic (ties break by node id), so it is tested alone; the controller
 * leader runs it and writes its answer into the createTopic command.
 *
 * Imports base only.
 */
import { fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'

export interface PlacementInput {
  /** Live node ids. */
  readonly live: readonly number[]
  /** Replica lists of the partitions that exist already (their first entry leads by preference). */
  readonly existing: Iterable<readonly number[]>
  readonly partitions: number
  readonly replicationFactor: number
}

export function placeReplicas(input: PlacementInput): Result<number[][], 'INVALID_REPLICATION_FACTOR'> {
  const live = [...new Set(input.live)].sort((a, b) => a - b)
  if (input.replicationFactor < 1 || input.replicationFactor > live.length) {
    return fail('INVALID_REPLICATION_FACTOR', `replication factor ${input.replicationFactor} needs as many live nodes, and ${live.length} are live (${live.join(', ') || 'none'})`)
  }
  const replicas = new Map(live.map((n) => [n, 0]))
  const leads = new Map(live.map((n) => [n, 0]))
  for (const r of input.existing) {
    r.forEach((n, i) => {
      if (!replicas.has(n)) return
      replicas.set(n, replicas.get(n)! + 1)
      if (i === 0) leads.set(n, leads.get(n)! + 1)
    })
  }
  const out: number[][] = []
  for (let p = 0; p < input.partitions; p++) {
    const chosen = [...live].sort((a, b) => replicas.get(a)! - replicas.get(b)! || leads.get(a)! - leads.get(b)! || a - b).slice(0, input.replicationFactor)
    const leader = [...chosen].sort((a, b) => leads.get(a)! - leads.get(b)! || a - b)[0]!
    const ordered = [leader, ...chosen.filter((n) => n !== leader).sort((a, b) => a - b)]
    for (const n of ordered) replicas.set(n, replicas.get(n)! + 1)
    leads.set(leader, leads.get(leader)! + 1)
    out.push(ordered)
  }
  return ok(out)
}
