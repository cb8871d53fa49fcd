/**
 * `raftmq partition move <topic> <partition> --replicas 2,3`, `raftmq node drain <id>`
 * (the command-line side of moves.ts: planning, recording, waiting, the table), and
 * `raftmq node add <id> --peer host:port` / `raftmq node remove <id>`, which grow and
 * shrink the running cluster.
 *
 * Imports cli modules and commander.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { brokersOption, examples, integer, withClient } from './run.js'
import { parseHostPort } from '../broker/config.js'
import { drainPlan, runMoves } from './moves.js'

interface WaitOpts {
  readonly brokers: string[]
  readonly wait: boolean
  readonly waitMs: number
}

function nodeList(value: string): number[] {
  const ids = value.split(',').map((s) => Number(s.trim()))
  if (ids.length === 0 || ids.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new InvalidArgumentError('expected node ids separated by commas, e.g. 2,3')
  return ids
}

function waitOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--no-wait', 'return once the moves are recorded, without waiting for them to finish'))
    .addOption(new Option('--wait-ms <ms>', 'how long to wait for the moves to finish').default(600_000).argParser(integer(1, 86_400_000)))
    .addOption(brokersOption())
}

export function partitionCommand(): Command {
  const cmd = new Command('partition').description('move partitions between nodes')
  waitOptions(
    cmd
      .command('move')
      .description(
        "move a partition to other nodes: its leader adds the new replicas (each catches up from the leader's log) and removes the old ones, one membership change at a time, while it keeps serving; the first replica given is the preferred leader",
      )
      .argument('<topic>', 'topic name')
      .argument('<partition>', 'partition index', integer(0))
      .addOption(new Option('--replicas <ids>', 'the node ids to hold the partition, preferred leader first').argParser(nodeList).makeOptionMandatory()),
  )
    .addHelpText('after', examples('raftmq partition move orders 0 --replicas 2,3', 'raftmq partition move orders 0 --replicas 1,2,3   # a third replica', 'raftmq partition move orders 0 --replicas 2,3 --no-wait'))
    .action(async (topic: string, partition: number, opts: WaitOpts & { replicas: number[] }) => {
      const r = await withClient(opts.brokers, async (client) => {
        const md = await client.metadata([topic])
        const p = md.topics[0]?.partitions.find((x) => x.partition === partition)
        return runMoves(client, [{ topic, partition, from: p?.replicas ?? [], to: opts.replicas }], opts.wait ? opts.waitMs : 0)
      })
      process.stdout.write(r.text)
      if (r.failed) process.exitCode = 1
    })
  return cmd
}

export function nodeCommand(): Command {
  const cmd = new Command('node').description('add nodes to the running cluster, drain them and remove them')
  cmd
    .command('add')
    .description(
      "add a node to the running cluster: every node records it and dials it at its peer address; then start it with --node-id <id> and --peers listing the cluster's nodes and itself. It receives the metadata from the controller, registers its client address, and takes replicas of new topics and of partitions moved onto it",
    )
    .argument('<node>', 'the new node\'s id (above the ids of the metadata group\'s voters)', integer(1, 2 ** 31 - 1))
    .addOption(
      new Option('--peer <host:port>', "where the other nodes reach it (its --peer-listen)")
        .argParser((v: string) => {
          const hp = parseHostPort(v)
          if (!hp.ok) throw new InvalidArgumentError(hp.error.message)
          return hp.value
        })
        .makeOptionMandatory(),
    )
    .addOption(brokersOption())
    .addHelpText('after', examples('raftmq node add 4 --peer 10.0.0.4:7171', 'raftmq start --node-id 4 --listen 10.0.0.4:7070 --peers 1@10.0.0.1:7171,2@10.0.0.2:7171,3@10.0.0.3:7171,4@10.0.0.4:7171', 'raftmq partition move orders 0 --replicas 4,1,2'))
    .action(async (node: number, opts: { brokers: string[]; peer: { host: string; port: number } }) => {
      await withClient(opts.brokers, (client) => client.admin().addNode(node, opts.peer))
      process.stdout.write(`node ${node} added: the cluster dials it at ${opts.peer.host}:${opts.peer.port}; start it with --node-id ${node} and --peers listing every node, itself included\n`)
    })
  cmd
    .command('remove')
    .description('remove a node that was added to the running cluster, once it holds no replicas (drain it first); stop it afterwards')
    .argument('<node>', 'node id', integer(1, 2 ** 31 - 1))
    .addOption(brokersOption())
    .addHelpText('after', examples('raftmq node drain 4 && raftmq node remove 4'))
    .action(async (node: number, opts: { brokers: string[] }) => {
      await withClient(opts.brokers, (client) => client.admin().removeNode(node))
      process.stdout.write(`node ${node} removed: no node dials it any more; it can be stopped and its data directory deleted\n`)
    })
  waitOptions(
    cmd
      .command('drain')
      .description('move every partition replica off a node, each to the node with the fewest replicas that holds none of that partition yet (planned whole: if one cannot go, nothing moves); then the node can be stopped and removed')
      .argument('<node>', 'node id', integer(1)),
  )
    .addHelpText('after', examples('raftmq node drain 3', 'raftmq node drain 3 --no-wait'))
    .action(async (node: number, opts: WaitOpts) => {
      const r = await withClient(opts.brokers, async (client) => {
        const md = await client.metadata()
        if (!md.nodes.some((n) => n.id === node)) return { text: `raftmq: node ${node} is not in the cluster (nodes: ${md.nodes.map((n) => n.id).join(', ')})\n`, failed: true }
        const plan = drainPlan(md, node)
        if (plan.stuck.length > 0) return { text: `raftmq: cannot drain node ${node}, nothing was moved; these partitions have nowhere to go:\n${plan.stuck.map((s) => `  ${s}`).join('\n')}\n`, failed: true }
        if (plan.moves.length === 0) return { text: `node ${node} holds no partition replicas\n`, failed: false }
        return runMoves(client, plan.moves, opts.wait ? opts.waitMs : 0)
      })
      process.stdout.write(r.text)
      if (r.failed) process.exitCode = 1
    })
  return cmd
}
