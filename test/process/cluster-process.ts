/**
 * ClusterProcess: N raftmq nodes as child processes (one BrokerProcess each, with the
 * cluster flags), every node-to-node link through a FaultProxy the test controls.
 *
 * Wiring: one proxy per node pair i < j, listening on its own port and forwarding to
 * node j's real peer listener. Every node's --peers names itself at its real
 * --peer-listen and every other node at the proxy of their pair, so all Raft traffic
 * between i and j (the lower id dials the higher) crosses proxy(i, j). Cutting node k off
 * is setting every proxy touching k to drop; `isolate(k, mode)` does it for any mode,
 * and `oneWay` is given relative to k ('in': nothing reaches k, 'out': nothing leaves
 * it). Client traffic does not go through proxies: a cut-off node still talks to clients.
 *
 * Per node: kill -9, start (same data directory and ports), stop (SIGTERM, the exit code),
 * pause (SIGSTOP) and resume (SIGCONT); a paused node is resumed before it is stopped.
 *
 * Imports ./broker-process and ../support/fault-proxy.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { FaultProxy, oneWay, pass } from '../support/fault-proxy.js'
import type { ProxyMode } from '../support/fault-proxy.js'
import { BrokerProcess, freePort } from './broker-process.js'
import type { BrokerLogLine } from './broker-process.js'

export interface ClusterProcessOptions {
  readonly workDir: string
  readonly nodes?: number
  /** Extra `raftmq start` flags for every node. */
  readonly args?: readonly string[]
  readonly startTimeoutMs?: number
}

/** A fault on the links of one node: a proxy mode, with one-way relative to the node. */
export type LinkFault = { readonly kind: 'drop' } | { readonly kind: 'delay'; readonly ms: number } | { readonly kind: 'oneWay'; readonly cut: 'in' | 'out' }

export interface ClusterNode {
  readonly id: number
  readonly process: BrokerProcess
  readonly dataDir: string
  readonly logFile: string
  readonly clientPort: number
  readonly peerPort: number
  paused: boolean
}

export class ClusterProcess {
  readonly ids: readonly number[]
  readonly nodes: ReadonlyMap<number, ClusterNode>
  /** `${i}-${j}` for i < j. */
  readonly proxies: ReadonlyMap<string, FaultProxy>

  private constructor(nodes: Map<number, ClusterNode>, proxies: Map<string, FaultProxy>) {
    this.ids = [...nodes.keys()]
    this.nodes = nodes
    this.proxies = proxies
  }

  static async create(opts: ClusterProcessOptions): Promise<ClusterProcess> {
    const n = opts.nodes ?? 3
    const ids = Array.from({ length: n }, (_, i) => i + 1)
    const ports = new Map<number, { client: number; peer: number }>()
    for (const id of ids) ports.set(id, { client: await freePort(), peer: await freePort() })
    const proxies = new Map<string, FaultProxy>()
    for (const i of ids) for (const j of ids) if (i < j) proxies.set(`${i}-${j}`, await FaultProxy.listen({ target: { host: '127.0.0.1', port: ports.get(j)!.peer } }))
    const nodes = new Map<number, ClusterNode>()
    for (const id of ids) {
      const { client, peer } = ports.get(id)!
      const peers = ids.map((o) => `${o}@127.0.0.1:${o === id ? peer : proxies.get(`${Math.min(o, id)}-${Math.max(o, id)}`)!.port}`).join(',')
      const dataDir = join(opts.workDir, `node-${id}`)
      await mkdir(dataDir, { recursive: true })
      const logFile = join(opts.workDir, `node-${id}.log`)
      const process = new BrokerProcess({
        dataDir,
        port: client,
        logFile,
        startTimeoutMs: opts.startTimeoutMs ?? 60_000,
        args: ['--node-id', String(id), '--peer-listen', `127.0.0.1:${peer}`, '--peers', peers, '--workers', '1', '--tick-ms', '50', ...(opts.args ?? [])],
      })
      nodes.set(id, { id, process, dataDir, logFile, clientPort: client, peerPort: peer, paused: false })
    }
    return new ClusterProcess(nodes, proxies)
  }

  /** Client addresses of every node (bootstrap from all of them). */
  brokers(): string[] {
    return this.ids.map((id) => this.node(id).process.address)
  }

  node(id: number): ClusterNode {
    const n = this.nodes.get(id)
    if (!n) throw new Error(`no node ${id}`)
    return n
  }

  /** Starts node `id` (it must be down); resolves once it logged "raftmq node started". */
  start(id: number): Promise<number> {
    return this.node(id).process.start()
  }

  startAll(): Promise<number[]> {
    return Promise.all(this.ids.map((id) => this.start(id)))
  }

  async kill(id: number): Promise<void> {
    const n = this.node(id)
    await n.process.kill()
    n.paused = false
  }

  /** SIGTERM (after SIGCONT if paused); the exit code (null: was not running). */
  async stop(id: number, timeoutMs = 20_000): Promise<number | null> {
    this.resume(id)
    return this.node(id).process.stop(timeoutMs)
  }

  pause(id: number): void {
    const n = this.node(id)
    if (!n.process.running || n.paused) return
    n.process.signal('SIGSTOP')
    n.paused = true
  }

  resume(id: number): void {
    const n = this.node(id)
    if (!n.paused) return
    n.process.signal('SIGCONT')
    n.paused = false
  }

  /** The proxies on node `id`'s links, with the side `id` is on in each. */
  links(id: number): Array<{ readonly proxy: FaultProxy; readonly side: 'a' | 'b'; readonly other: number }> {
    const out: Array<{ proxy: FaultProxy; side: 'a' | 'b'; other: number }> = []
    for (const o of this.ids) {
      if (o === id) continue
      const proxy = this.proxies.get(`${Math.min(o, id)}-${Math.max(o, id)}`)!
      out.push({ proxy, side: id < o ? 'a' : 'b', other: o })
    }
    return out
  }

  /** Puts every link of node `id` into `fault`. */
  isolate(id: number, fault: LinkFault): void {
    for (const { proxy, side } of this.links(id)) proxy.setMode(modeFor(fault, side))
  }

  /** Resets (RST) every current connection on node `id`'s links. */
  resetLinks(id: number): void {
    for (const { proxy } of this.links(id)) proxy.reset()
  }

  /** Every link back to pass, every paused node resumed. */
  healAll(): void {
    for (const p of this.proxies.values()) p.setMode(pass)
    for (const id of this.ids) this.resume(id)
  }

  /** Error-level lines of every node, with its id. */
  errors(): Array<{ readonly node: number; readonly line: BrokerLogLine }> {
    return this.ids.flatMap((id) => this.node(id).process.errors.map((line) => ({ node: id, line })))
  }

  tails(n = 30): string {
    return this.ids.map((id) => `---- node ${id} (${this.node(id).logFile}):\n${this.node(id).process.tail(n)}`).join('\n')
  }

  /** Kills whatever runs, closes the proxies and the log files. */
  async close(): Promise<void> {
    for (const id of this.ids) this.resume(id)
    await Promise.all(this.ids.map((id) => this.node(id).process.close()))
    await Promise.all([...this.proxies.values()].map((p) => p.close()))
  }
}

function modeFor(fault: LinkFault, side: 'a' | 'b'): ProxyMode {
  if (fault.kind !== 'oneWay') return fault
  // 'out' of the node on side a is a->b; 'in' to it is b->a
  const aOut = (fault.cut === 'out') === (side === 'a')
  return oneWay(aOut ? 'a->b' : 'b->a')
}
