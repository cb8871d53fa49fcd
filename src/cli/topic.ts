/**
 * `raftmq topic create|list|describe|delete`: topic administration through the client's
 * Admin. Tables are plain aligned columns with an upper-case header (like `kubectl get`),
 * readable and easy to cut with awk.
 *
 * Imports client, ./run and packages.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import type { DescribeTopicResponse } from '../protocol/api.js'
import { brokersOption, examples, integer, withClient } from './run.js'
import { plainTable, render } from './table.js'

interface BrokersOpts {
  readonly brokers: string[]
}

interface CreateOpts extends BrokersOpts {
  readonly partitions: number
  readonly replicationFactor: number
  readonly retentionMs?: number
  readonly retentionBytes?: number
  readonly ifNotExists?: boolean
}

export function topicCommand(): Command {
  const topic = new Command('topic')
    .description('create, list, describe and delete topics')
    .addHelpText('after', examples('raftmq topic create orders --partitions 3', 'raftmq topic list', 'raftmq topic describe orders'))

  topic
    .command('create')
    .description('create a topic')
    .argument('<name>', 'topic name: 1..249 of [a-zA-Z0-9._-]')
    .addOption(new Option('-p, --partitions <n>', 'number of partitions').argParser(integer(1)).default(1))
    .addOption(new Option('-r, --replication-factor <n>', 'copies of each partition').argParser(integer(1, 255)).default(1))
    .addOption(new Option('--retention-ms <ms>', 'drop records older than this (default: keep forever)').argParser(integer(1)))
    .addOption(new Option('--retention-bytes <bytes>', 'per partition, drop the oldest records past this size (default: no limit)').argParser(integer(1)))
    .addOption(new Option('--if-not-exists', 'a topic of that name existing already is no error (it is left as it is)'))
    .addOption(brokersOption())
    .addHelpText('after', examples('raftmq topic create orders --partitions 3', 'raftmq topic create clicks -p 6 --retention-ms 86400000', 'raftmq topic create orders -p 3 --if-not-exists   # in a script that runs again'))
    .action(async (name: string, opts: CreateOpts) => {
      const created = await withClient(opts.brokers, (client) =>
        client.admin().createTopic({
          name,
          partitions: opts.partitions,
          replicationFactor: opts.replicationFactor,
          retentionMs: opts.retentionMs ?? null,
          retentionBytes: opts.retentionBytes ?? null,
          ifNotExists: opts.ifNotExists === true,
        }),
      )
      const s = created.partitions === 1 ? '' : 's'
      if (!created.created) process.stdout.write(`topic ${created.name} exists already, with ${created.partitions} partition${s}: left as it is\n`)
      else process.stdout.write(`created topic ${created.name} with ${created.partitions} partition${s} (replication factor ${opts.replicationFactor})\n`)
    })

  topic
    .command('alter')
    .description(
      'change a topic: its retention (from the partitions\' next check on) and/or its partition count (raised only; each added partition is a new Raft group placed like a new topic\'s; keys may hash to other partitions afterwards, as in Kafka)',
    )
    .argument('<name>', 'topic name')
    .addOption(new Option('--retention-ms <ms>', 'drop records older than this; "forever" for no time limit').argParser(limitOrNone('forever')))
    .addOption(new Option('--retention-bytes <bytes>', 'per partition, drop the oldest records past this size; "unlimited" for none').argParser(limitOrNone('unlimited')))
    .addOption(new Option('-p, --partitions <n>', 'raise the partition count to n').argParser(integer(1)))
    .addOption(brokersOption())
    .addHelpText('after', examples('raftmq topic alter orders --retention-ms 3600000', 'raftmq topic alter orders --retention-bytes unlimited', 'raftmq topic alter orders --partitions 8'))
    .action(async (name: string, opts: BrokersOpts & { retentionMs?: number; retentionBytes?: number; partitions?: number }) => {
      if (opts.retentionMs === undefined && opts.retentionBytes === undefined && opts.partitions === undefined) {
        process.stderr.write('raftmq: nothing to change: give --retention-ms, --retention-bytes or --partitions\n')
        process.exitCode = 2
        return
      }
      const change = {
        ...(opts.retentionMs === undefined ? {} : { retentionMs: opts.retentionMs === UNLIMITED ? null : opts.retentionMs }),
        ...(opts.retentionBytes === undefined ? {} : { retentionBytes: opts.retentionBytes === UNLIMITED ? null : opts.retentionBytes }),
        ...(opts.partitions === undefined ? {} : { partitions: opts.partitions }),
      }
      const t = await withClient(opts.brokers, (client) => client.admin().alterTopic(name, change))
      const retention = `${t.retentionMs === null ? 'forever' : `${t.retentionMs} ms`}, ${t.retentionBytes === null ? 'no size limit' : `${t.retentionBytes} bytes per partition`}`
      process.stdout.write(`topic ${t.name}: ${t.partitions} partition${t.partitions === 1 ? '' : 's'}, retention ${retention}\n`)
    })

  topic
    .command('list')
    .description('list the topics with their partition counts')
    .addOption(brokersOption())
    .addHelpText('after', examples('raftmq topic list', 'raftmq topic list --brokers 10.0.0.5:7070'))
    .action(async (opts: BrokersOpts) => {
      const topics = await withClient(opts.brokers, (client) => client.admin().listTopics())
      if (topics.length === 0) {
        process.stdout.write('no topics\n')
        return
      }
      const table = plainTable(['TOPIC', 'PARTITIONS'])
      for (const t of topics) table.push([t.name, String(t.partitions)])
      process.stdout.write(`${render(table)}\n`)
    })

  topic
    .command('describe')
    .description('show retention and, per partition, the leader, log start offset and high watermark')
    .argument('<name>', 'topic name')
    .addOption(brokersOption())
    .addHelpText('after', examples('raftmq topic describe orders'))
    .action(async (name: string, opts: BrokersOpts) => {
      const d = await withClient(opts.brokers, (client) => client.admin().describeTopic(name))
      process.stdout.write(formatDescription(d))
    })

  topic
    .command('delete')
    .description('delete a topic and all its messages')
    .argument('<name>', 'topic name')
    .addOption(brokersOption())
    .addHelpText('after', examples('raftmq topic delete orders'))
    .action(async (name: string, opts: BrokersOpts) => {
      await withClient(opts.brokers, (client) => client.admin().deleteTopic(name))
      process.stdout.write(`deleted topic ${name}\n`)
    })

  return topic
}

/** An integer >= 1, or the word for no limit (UNLIMITED: commander keeps the raw text when a parser returns null). */
const UNLIMITED = -1

function limitOrNone(word: string): (value: string) => number {
  const n = integer(1)
  return (value: string) => {
    if (value === word) return UNLIMITED
    try {
      return n(value)
    } catch {
      throw new InvalidArgumentError(`expected an integer >= 1 or ${word}`)
    }
  }
}

export function formatDescription(d: DescribeTopicResponse): string {
  const retention = `${d.retentionMs === null ? 'forever' : formatMs(d.retentionMs)}, ${d.retentionBytes === null ? 'no size limit' : `${formatRetentionBytes(d.retentionBytes)} per partition`}`
  const head = plainTable([])
  head.push(['topic', d.name], ['partitions', String(d.partitions.length)], ['retention', retention])
  const table = plainTable(['PARTITION', 'LEADER', 'LOG START', 'HIGH WATERMARK', 'MESSAGES'])
  for (const p of d.partitions) {
    table.push([String(p.partition), p.leader === null ? 'none' : String(p.leader), String(p.logStartOffset), String(p.highWatermark), String(p.highWatermark - p.logStartOffset)])
  }
  return `${render(head)}\n\n${render(table)}\n`
}


function formatMs(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1_000, 's'],
  ]
  for (const [size, unit] of units) if (ms % size === 0) return `${ms / size} ${unit} (${ms} ms)`
  return `${ms} ms`
}

function formatRetentionBytes(bytes: number): string {
  const units: [number, string][] = [
    [1 << 30, 'GiB'],
    [1 << 20, 'MiB'],
    [1 << 10, 'KiB'],
  ]
  for (const [size, unit] of units) if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`
  return `${bytes} bytes`
}
