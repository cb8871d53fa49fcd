/**
 * A cluster of real nodes in this process for tests: N nodes on loopback, each with its
 * own data directory, client port and peer port (ports chosen up front so every node can
 * list the others), quiet logs and short ticks. Nodes stop and start again on the same
 * directory and ports. `spares` more ids get ports too but are not in the first nodes'
 * `--peers`: started later, they join the running cluster (raftmq node add), listing
 * every node, themselves included.
 */
import { join } from 'node:path'
import { resolveConfig } from '../../src/broker/config.js'
import type { RawConfig } from '../../src/broker/config.js'
import { startNode } from '../../src/broker/node.js'
import type { RunningNode } from '../../src/broker/node.js'
import { freePort } from '../process/broker-process.js'
import type { Cleanups } from './node.js'
import { tempDir } from './node.js'

export interface ClusterNodes {
  readonly ids: readonly number[]
  readonly nodes: Map<number, RunningNode>
  /** Client address of node `id`. */
  broker(id: number): string
  /** Peer address of node `id`. */
  peer(id: number): { host: string; port: number }
  /** Data directory of node `id`. */
  dataDir(id: number): string
  brokers(): string[]
  start(id: number): Promise<RunningNode>
  stop(id: number): Promise<void>
}

export async function startClusterNodes(cleanups: Cleanups, n: number, overrides: RawConfig = {}, spares = 0): Promise<ClusterNodes> {
  const root = await tempDir(cleanups, 'raftmq-cluster-')
  const ids = Array.from({ length: n }, (_, i) => i + 1)
  const all = Array.from({ length: n + spares }, (_, i) => i + 1)
  const ports = new Map<number, { client: number; peer: number }>()
  for (const id of all) ports.set(id, { client: await freePort(), peer: await freePort() })
  const list = (of: readonly number[]): string => of.map((id) => `${id}@127.0.0.1:${ports.get(id)!.peer}`).join(',')
  const nodes = new Map<number, RunningNode>()
  const start = async (id: number): Promise<RunningNode> => {
    const cfg = resolveConfig({
      nodeId: String(id),
      dataDir: join(root, `node-${id}`),
      listen: `127.0.0.1:${ports.get(id)!.client}`,
      peers: ids.includes(id) ? list(ids) : list(all),
      ...(ids.includes(id) ? {} : { peerListen: `127.0.0.1:${ports.get(id)!.peer}` }),
      workers: '1',
      logLevel: 'warn',
      tickMs: '20',
      walSegmentMb: '4',
      ballastMb: '0',
      ...overrides,
    })
    if (!cfg.ok) throw new Error(cfg.error.message)
    const r = await startNode(cfg.value)
    if (!r.ok) throw new Error(`node ${id}: ${r.error.message}`)
    nodes.set(id, r.value)
    return r.value
  }
  const stop = async (id: number): Promise<void> => {
    const node = nodes.get(id)
    nodes.delete(id)
    await node?.stop()
  }
  cleanups.add(async () => {
    await Promise.all([...nodes.keys()].map(stop))
  })
  await Promise.all(ids.map(start))
  return {
    ids,
    nodes,
    broker: (id) => `127.0.0.1:${ports.get(id)!.client}`,
    peer: (id) => ({ host: '127.0.0.1', port: ports.get(id)!.peer }),
    dataDir: (id) => join(root, `node-${id}`),
    brokers: () => ids.map((id) => `127.0.0.1:${ports.get(id)!.client}`),
    start,
    stop,
  }
}
