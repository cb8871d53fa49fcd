/**
 * `raftmq cluster status` (cluster-status.ts) shows a running cluster's health; `raftmq cluster
 * info` (cluster-info.ts) what its metadata says.
 *
 * `raftmq cluster local`: a cluster of N nodes on this host, for trying a cluster out and
 * for benchmarks — each node a `raftmq start` child process with its own data directory
 * (`<data-dir>/node-N`), its own log file (`<data-dir>/node-N.log`), clients on
 * consecutive ports from --port and peers on consecutive ports from --peer-port. It
 * prints a table of the nodes once every one has started, and stops them all on the
 * first Ctrl-C (SIGINT or SIGTERM: each node shuts down cleanly) and reports how each one
 * exited. A node that dies on its own is reported and the others go on; run the command
 * again to bring it back with its data.
 *
 * Imports cli modules, commander and node modules.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createWriteStream, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Command, Option } from 'commander'
import { brokersOption, examples, integer, withClient } from './run.js'
import { clusterStatus, rebalanceLeaders } from './cluster-status.js'
import { clusterInfoText } from './cluster-info.js'
import { plainTable, render } from './table.js'

interface LocalOptions {
  readonly nodes: number
  readonly dataDir: string
  readonly host: string
  readonly port: number
  readonly peerPort: number
  readonly workers?: number
  readonly logLevel: string
}

interface Child {
  readonly id: number
  readonly proc: ChildProcess
  readonly client: string
  readonly peer: string
  readonly log: string
  started: boolean
  exit: string | null
}

function grid(head: string[], rows: string[][]): string {
  const t = plainTable(head)
  t.push(...rows)
  return render(t)
}

/** How long the table waits for every node's "raftmq node started" line. */
const START_WAIT_MS = 60_000

function runLocal(opts: LocalOptions): Promise<void> {
  const root = resolve(opts.dataDir)
  mkdirSync(root, { recursive: true })
  const ids = Array.from({ length: opts.nodes }, (_, i) => i + 1)
  const peers = ids.map((id) => `${id}@${opts.host}:${opts.peerPort + id - 1}`).join(',')
  const children: Child[] = ids.map((id) => {
    const client = `${opts.host}:${opts.port + id - 1}`
    const args = [
      ...process.execArgv,
      process.argv[1]!,
      'start',
      '--node-id', String(id),
      '--data-dir', join(root, `node-${id}`),
      '--listen', client,
      '--peers', peers,
      '--log-level', opts.logLevel,
      ...(opts.workers !== undefined ? ['--workers', String(opts.workers)] : []),
    ]
    const log = join(root, `node-${id}.log`)
    const out = createWriteStream(log, { flags: 'a' })
    // a process group of its own: a terminal's Ctrl-C reaches only this command, which
    // passes it on once (a node that got it twice would exit without closing its stores)
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const child: Child = { id, proc, client, peer: `${opts.host}:${opts.peerPort + id - 1}`, log, started: false, exit: null }
    let pending = ''
    proc.stdout!.on('data', (chunk: Buffer) => {
      out.write(chunk)
      pending += chunk.toString('utf8')
      if (!child.started && pending.includes('"raftmq node started"')) {
        child.started = true
        pending = ''
        onStarted()
      }
      if (pending.length > 1 << 16) pending = pending.slice(-4096)
    })
    proc.stderr!.on('data', (chunk: Buffer) => {
      out.write(chunk)
      process.stderr.write(`node ${id}: ${chunk.toString('utf8')}`)
    })
    proc.on('exit', (code, signal) => {
      child.exit = signal ? `killed by ${signal}` : `exit ${code}`
      out.end()
      if (!stopping) process.stderr.write(`raftmq: node ${id} stopped on its own (${child.exit}); see ${log}\n`)
      if (children.every((c) => c.exit !== null)) finish()
    })
    return child
  })
  let stopping = false
  let printed = false
  const onStarted = (): void => {
    if (printed || !children.every((c) => c.started)) return
    printed = true
    clearTimeout(slow)
    process.stdout.write(
      `${grid(
        ['node', 'clients', 'peers', 'pid', 'log'],
        children.map((c) => [String(c.id), c.client, c.peer, String(c.proc.pid ?? '?'), c.log]),
      )}\n` +
        `a ${opts.nodes}-node cluster is up; bootstrap clients from any node, e.g. --brokers ${children.map((c) => c.client).join(',')}\n` +
        'Ctrl-C stops every node\n',
    )
  }
  const slow = setTimeout(() => {
    const late = children.filter((c) => !c.started).map((c) => `node ${c.id} (${c.log})`)
    process.stderr.write(`raftmq: not started after ${START_WAIT_MS / 1000} s: ${late.join(', ')}\n`)
  }, START_WAIT_MS)
  slow.unref()
  let finish!: () => void
  const done = new Promise<void>((resolveDone) => (finish = resolveDone))
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // a second Ctrl-C: the nodes exit at once too (their write-ahead logs keep what was acknowledged)
      for (const c of children) if (c.exit === null) c.proc.kill('SIGINT')
      return
    }
    stopping = true
    process.stdout.write(`stopping ${children.filter((c) => c.exit === null).length} nodes...\n`)
    for (const c of children) if (c.exit === null) c.proc.kill(signal)
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  // if this command dies the nodes must not live on unseen
  process.on('exit', () => {
    for (const c of children) if (c.exit === null) c.proc.kill('SIGKILL')
  })
  return done.then(() => {
    process.stdout.write(`${grid(['node', 'exit'], children.map((c) => [String(c.id), c.exit ?? '?']))}\n`)
    const clean = children.every((c) => c.exit === 'exit 0')
    process.exitCode = clean ? 0 : 1
  })
}

export function clusterCommand(): Command {
  const cmd = new Command('cluster').description('run and inspect clusters')
  cmd
    .command('local')
    .description('run a cluster of N nodes on this host, each a child process with its own data directory and log file')
    .addOption(new Option('-n, --nodes <n>', 'how many nodes').default(3).argParser(integer(1, 5)))
    .addOption(new Option('--data-dir <dir>', 'where node N keeps node-N/ and node-N.log').default('./data'))
    .addOption(new Option('--host <host>', 'address every node listens on').default('127.0.0.1'))
    .addOption(new Option('--port <port>', 'client port of node 1 (node N: port + N - 1)').default(7070).argParser(integer(1, 65535)))
    .addOption(new Option('--peer-port <port>', 'peer port of node 1 (node N: port + N - 1)').default(7170).argParser(integer(1, 65535)))
    .addOption(new Option('--workers <n>', 'worker threads per node (default: the node\'s default)').argParser(integer(0, 1024)))
    .addOption(new Option('--log-level <level>', 'log level of every node').default('info'))
    .addHelpText('after', '\nExample:\n  raftmq cluster local --nodes 3 --data-dir ./data   # then: raftmq topic create orders --replication-factor 3\n')
    .action((opts: LocalOptions) => runLocal(opts))
  cmd
    .command('info')
    .description('what the metadata says (kcat -L): the nodes and their client addresses, and every topic\'s partitions with leader, replicas and any move under way')
    .argument('[topics...]', 'only these topics (default: all)')
    .addOption(new Option('--json', 'the metadata as one JSON object'))
    .addOption(brokersOption())
    .addHelpText('after', examples('raftmq cluster info', 'raftmq cluster info orders clicks', 'raftmq cluster info --json'))
    .action(async (topics: string[], opts: { brokers: string[]; json?: boolean }) => {
      const md = await withClient(opts.brokers, (client) => client.metadata(topics.length > 0 ? topics : undefined))
      process.stdout.write(opts.json === true ? `${JSON.stringify(md)}\n` : clusterInfoText(md, opts.brokers.join(',')))
    })
  cmd
    .command('status')
    .description('nodes and their health; per partition the leader, replicas, commit index and each follower\'s lag (exit 1 when something needs a look)')
    .addOption(brokersOption())
    .addHelpText('after', examples('raftmq cluster status', 'raftmq cluster status --brokers 10.0.0.1:7070'))
    .action(async (opts: { brokers: string[] }) => {
      const status = await withClient(opts.brokers, (client) => clusterStatus(client))
      process.stdout.write(status.text)
      if (status.degraded) process.exitCode = 1
    })
  cmd
    .command('rebalance')
    .description('hand every partition\'s leadership back to its preferred replica (the first in its replica list) where that replica is up and caught up; leaders do it by themselves too, on their own schedule')
    .addOption(brokersOption())
    .addOption(new Option('--wait-ms <ms>', 'how long to wait for the leaders to settle').default(10_000).argParser(integer(0, 600_000)))
    .addHelpText('after', examples('raftmq cluster rebalance'))
    .action(async (opts: { brokers: string[]; waitMs: number }) => {
      const r = await withClient(opts.brokers, (client) => rebalanceLeaders(client, opts.waitMs))
      process.stdout.write(r.text)
      if (r.degraded) process.exitCode = 1
    })
  return cmd
}
