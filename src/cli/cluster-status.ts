/**
 * `raftmq cluster status`: the nodes of a cluster and their health, and per partition its
 * leader, replicas, commit index and each follower's lag — every node asked (describeCluster,
 * apis/cluster.ts) and the answers merged: a partition as its leader reports it, a node's
 * health as this command and the other nodes see it. A node that does not answer is
 * shown as such; the rest is still printed. Exit code 1 when something needs a look (a
 * node down, a partition without a leader or short of replicas); 0 when all is well.
 *
 * Imports client (types), protocol (types) and ./ modules of the cli.
 */
import type { Client } from '../client/index.js'
import type { DescribeClusterResponse, GroupReport } from '../protocol/api.js'
import { plainTable, render } from './table.js'

/** A follower further behind than this many entries is shown as lagging. */
const LAG_WARN = 1_000

export interface ClusterStatus {
  readonly text: string
  /** Something needs a look: a node down, a partition leaderless or short of replicas. */
  readonly degraded: boolean
}

export async function clusterStatus(client: Client): Promise<ClusterStatus> {
  const md = await client.metadata()
  const answers = new Map<number, DescribeClusterResponse | string>()
  await Promise.all(
    md.nodes.map(async (n) => {
      try {
        answers.set(n.id, await client.requestNode(n.id, 'describeCluster', {}, 5_000))
      } catch (err) {
        answers.set(n.id, err instanceof Error ? err.message : String(err))
      }
    }),
  )
  const reports = [...answers.values()].filter((a): a is DescribeClusterResponse => typeof a !== 'string')
  let degraded = false
  const nodes = plainTable(['NODE', 'ADDRESS', 'STATUS', 'SEEN UP BY', 'METADATA', 'REPLICAS', 'LEADS'])
  const controllerLeader = reports.map((r) => r.controller.leader).find((l) => l !== 0) ?? 0
  const voters = reports[0]?.controller.voters ?? []
  for (const n of md.nodes) {
    const a = answers.get(n.id) ?? 'no answer'
    const ok = typeof a !== 'string'
    const seenBy = reports.filter((r) => r.nodeId !== n.id && r.nodes.some((x) => x.id === n.id && x.up)).map((r) => r.nodeId).sort((x, y) => x - y)
    const role = n.id === controllerLeader ? 'leader' : voters.includes(n.id) ? 'voter' : 'observer'
    const hosted = ok ? a.groups.length : NaN
    const leads = ok ? a.groups.filter((g) => g.role === 'leader').length : NaN
    if (!ok) degraded = true
    nodes.push([String(n.id), `${n.host}:${n.port}`, ok ? 'up' : `not answering (${a})`, seenBy.join(',') || '-', role, Number.isNaN(hosted) ? '?' : String(hosted), Number.isNaN(leads) ? '?' : String(leads)])
  }
  // each partition as its leader reports it (the highest term, should two claim it)
  const byPartition = new Map<string, GroupReport>()
  const hostedBy = new Map<string, number[]>()
  for (const r of reports) {
    for (const g of r.groups) {
      const key = `${g.topic}\u0000${g.partition}`
      hostedBy.set(key, [...(hostedBy.get(key) ?? []), r.nodeId])
      const known = byPartition.get(key)
      if (!known || (g.role === 'leader' && (known.role !== 'leader' || g.term > known.term))) byPartition.set(key, g)
    }
  }
  const parts = plainTable(['TOPIC', 'PARTITION', 'LEADER', 'REPLICAS', 'TERM', 'COMMIT', 'FOLLOWER LAG', 'STATE'])
  for (const t of md.topics) {
    for (const p of t.partitions) {
      const key = `${t.name}\u0000${p.partition}`
      const g = byPartition.get(key)
      const problems: string[] = []
      let lag = '-'
      if (!g || g.role !== 'leader') {
        problems.push('no leader')
      } else {
        lag = g.followers.map((f) => `${f.id}:${Math.max(0, g.lastIndex - f.match)}${f.active ? '' : ' (silent)'}`).join(' ') || '-'
        const silent = g.followers.filter((f) => !f.active).length
        if (silent > 0) problems.push(`${silent} replica${silent === 1 ? '' : 's'} silent`)
        if (g.followers.some((f) => g.lastIndex - f.match > LAG_WARN)) problems.push('a follower lags')
      }
      for (const r of reports) {
        const x = r.groups.find((x) => x.topic === t.name && x.partition === p.partition && x.behind)
        if (x) problems.push(`catching up by snapshot on ${r.nodeId}: ${x.snapshotBytes} of ${x.snapshotBytesTotal} bytes`)
      }
      const missing = p.replicas.filter((id) => typeof answers.get(id) !== 'string' && !(hostedBy.get(key) ?? []).includes(id))
      if (missing.length > 0) problems.push(`not open on ${missing.join(',')}`)
      if (problems.length > 0) degraded = true
      parts.push([t.name, String(p.partition), g?.role === 'leader' ? String(g.leader) : 'none', p.replicas.join(','), g ? String(g.term) : '-', g ? String(g.commit) : '-', lag, problems.join('; ') || (g?.quiet ? 'ok, quiet' : 'ok')])
    }
  }
  const summary = `${md.nodes.length} node${md.nodes.length === 1 ? '' : 's'}, ${reports.length} answering; metadata leader: ${controllerLeader === 0 ? 'none' : controllerLeader}; ${byPartition.size} partitions`
  return { text: `${render(nodes)}\n\n${md.topics.length > 0 ? `${render(parts)}\n\n` : ''}${summary}\n`, degraded }
}

/** Partitions led by each node, and by a replica other than the preferred one. */
function leadership(md: Awaited<ReturnType<Client['metadata']>>): { byNode: Map<number, number>; notPreferred: number; leaderless: number } {
  const byNode = new Map<number, number>(md.nodes.map((n) => [n.id, 0]))
  let notPreferred = 0
  let leaderless = 0
  for (const t of md.topics) {
    for (const p of t.partitions) {
      if (p.leader === null) leaderless++
      else byNode.set(p.leader, (byNode.get(p.leader) ?? 0) + 1)
      if (p.leader !== null && p.leader !== p.replicas[0]) notPreferred++
    }
  }
  return { byNode, notPreferred, leaderless }
}

/**
 * `raftmq cluster rebalance`: every node hands the partitions it leads back to their
 * preferred replicas where they may go now (electPreferredLeaders); then this waits up to
 * `waitMs` for the leaders to settle and shows how many partitions each node led before
 * and after.
 */
export async function rebalanceLeaders(client: Client, waitMs: number): Promise<ClusterStatus> {
  const md = await client.metadata()
  const before = leadership(md)
  let started = 0
  const silent: number[] = []
  await Promise.all(
    md.nodes.map(async (n) => {
      try {
        started += (await client.requestNode(n.id, 'electPreferredLeaders', {}, 5_000)).started
      } catch {
        silent.push(n.id)
      }
    }),
  )
  let after = leadership(await client.metadata())
  for (const until = Date.now() + waitMs; started > 0 && after.notPreferred > 0 && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 100))
    after = leadership(await client.metadata())
  }
  const table = plainTable(['NODE', 'LEADS BEFORE', 'LEADS AFTER'])
  for (const n of md.nodes) table.push([String(n.id), String(before.byNode.get(n.id) ?? 0), String(after.byNode.get(n.id) ?? 0)])
  const lines = [
    render(table),
    '',
    `${started} transfer${started === 1 ? '' : 's'} started; ${after.notPreferred} partition${after.notPreferred === 1 ? '' : 's'} still led by a replica other than the preferred one${after.leaderless > 0 ? `, ${after.leaderless} without a leader` : ''}`,
    ...(silent.length > 0 ? [`not answering: ${silent.sort((a, b) => a - b).join(', ')}`] : []),
  ]
  return { text: `${lines.join('\n')}\n`, degraded: silent.length > 0 || after.leaderless > 0 }
}
