/**
 * `raftmq cluster info` (kcat -L): what the metadata says, from any one node: the nodes
 * and where clients reach them, then every topic's partitions with leader, replicas and
 * a move target when one is under way. One metadata request; no node is asked about its
 * health (that is `raftmq cluster status`).
 *
 * Imports protocol (types) and ./table.
 */
import type { MetadataResponse } from '../protocol/api.js'
import { plainTable, render } from './table.js'

export function clusterInfoText(md: MetadataResponse, from: string): string {
  const nodes = plainTable(['NODE', 'ADDRESS'])
  for (const n of md.nodes) nodes.push([String(n.id), `${n.host}:${n.port}`])
  const parts = plainTable(['TOPIC', 'PARTITION', 'LEADER', 'REPLICAS', 'MOVING TO'])
  let partitions = 0
  for (const t of [...md.topics].sort((a, b) => a.name.localeCompare(b.name))) {
    if (t.error) {
      parts.push([t.name, '-', '-', '-', `${t.error.code}: ${t.error.message}`])
      continue
    }
    for (const p of t.partitions) {
      partitions++
      parts.push([t.name, String(p.partition), p.leader === null ? 'none' : String(p.leader), p.replicas.join(','), p.target ? p.target.join(',') : '-'])
    }
  }
  const topics = md.topics.length
  const summary = `${md.nodes.length} node${md.nodes.length === 1 ? '' : 's'}, ${topics} topic${topics === 1 ? '' : 's'}, ${partitions} partition${partitions === 1 ? '' : 's'} (metadata from ${from})\n`
  return `${render(nodes)}\n\n${topics > 0 ? `${render(parts)}\n\n` : ''}${summary}`
}
