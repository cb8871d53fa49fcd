/**
 * Moving partitions between nodes: `raftmq partition move` (one partition to the replicas
 * given) and `raftmq node drain` (every partition with a replica on a node, that replica
 * replaced by the node holding the fewest replicas that does not hold one of the
 * partition yet). Both record the moves with the controller (movePartition), then, unless
 * told not to, wait for the partitions' leaders to finish them — the metadata shows a
 * partition's `target` until its group's configuration is the target — with a progress
 * line, and print a table of what moved.
 *
 * A drain is planned whole before anything is recorded: if some partition cannot leave
 * the node (every other node holds a replica of it already), nothing moves.
 *
 * Imports base, client, protocol (types) and cli modules.
 */
import { sameMembers } from '../base/index.js'
import type { Client } from '../client/index.js'
import type { MetadataResponse } from '../protocol/api.js'
import { Progress } from './progress.js'
import { plainTable, render } from './table.js'

export interface Move {
  readonly topic: string
  readonly partition: number
  readonly from: readonly number[]
  readonly to: readonly number[]
}

export interface MovesOutcome {
  readonly text: string
  /** Something did not finish, or could not start. */
  readonly failed: boolean
}

/** The moves that take every replica off `node`, or why some cannot go. */
export function drainPlan(md: MetadataResponse, node: number): { readonly moves: Move[]; readonly stuck: string[] } {
  const nodes = md.nodes.map((n) => n.id).filter((id) => id !== node)
  const load = new Map(nodes.map((id) => [id, 0]))
  for (const t of md.topics) for (const p of t.partitions) for (const r of p.target ?? p.replicas) if (load.has(r)) load.set(r, load.get(r)! + 1)
  const moves: Move[] = []
  const stuck: string[] = []
  for (const t of md.topics) {
    for (const p of t.partitions) {
      const now = p.target ?? p.replicas
      if (!now.includes(node)) continue
      const free = nodes.filter((id) => !now.includes(id)).sort((a, b) => load.get(a)! - load.get(b)! || a - b)
      if (free.length === 0) {
        stuck.push(`${t.name}/${p.partition} (replicas ${now.join(',')}: every other node holds one already)`)
        continue
      }
      const to = now.map((r) => (r === node ? free[0]! : r))
      load.set(free[0]!, load.get(free[0]!)! + 1)
      moves.push({ topic: t.name, partition: p.partition, from: p.replicas, to })
    }
  }
  return { moves, stuck }
}

/** Records `moves` and (unless `waitMs` is 0) waits for them to finish. */
export async function runMoves(client: Client, moves: readonly Move[], waitMs: number): Promise<MovesOutcome> {
  const admin = client.admin()
  const state = new Map<string, string>()
  const key = (m: { topic: string; partition: number }): string => `${m.topic}/${m.partition}`
  for (const m of moves) {
    try {
      await admin.movePartition(m.topic, m.partition, m.to)
      state.set(key(m), waitMs > 0 ? 'moving' : 'recorded')
    } catch (err) {
      state.set(key(m), `refused: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  const pending = (): Move[] => moves.filter((m) => state.get(key(m)) === 'moving')
  if (waitMs > 0 && pending().length > 0) {
    const progress = new Progress({ total: moves.length, unit: 'partitions', delayMs: 500 })
    const until = Date.now() + waitMs
    while (pending().length > 0 && Date.now() < until) {
      const md = await client.metadata([...new Set(pending().map((m) => m.topic))])
      for (const m of pending()) {
        const p = md.topics.find((t) => t.name === m.topic)?.partitions.find((x) => x.partition === m.partition)
        if (p === undefined) state.set(key(m), 'gone (its topic was deleted)')
        else if (p.target === undefined) state.set(key(m), sameMembers(p.replicas, m.to) ? 'done' : `ended elsewhere: ${p.replicas.join(',')}`)
      }
      progress.update(moves.length - pending().length, `${pending().length} moving`)
      if (pending().length > 0) await new Promise((r) => setTimeout(r, 200))
    }
    progress.stop()
    for (const m of pending()) state.set(key(m), `still moving after ${waitMs} ms (the leader goes on; see raftmq cluster status)`)
  }
  const table = plainTable(['TOPIC', 'PARTITION', 'FROM', 'TO', 'STATE'])
  for (const m of moves) table.push([m.topic, String(m.partition), m.from.join(','), m.to.join(','), state.get(key(m))!])
  const failed = moves.some((m) => !['done', 'recorded'].includes(state.get(key(m))!))
  return { text: `${render(table)}\n`, failed }
}
