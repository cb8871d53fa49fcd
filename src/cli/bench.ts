/**
 * `raftmq bench`: a produce benchmark against running brokers. Without --topic it
 * creates a fresh topic (`raftmq-bench-<random>`, with --partitions and
 * --replication-factor) and deletes it afterwards, so runs never pile onto an old
 * topic; with --topic it uses that one, creating it if missing, and refuses one whose
 * partition count differs from a --partitions given (never ignoring it silently). It
 * waits until every partition has a leader, then K producers (each
 * with its own connection and one request in flight) send N messages of the given size:
 * in sendBatch batches, each batch to one partition in turn (one Raft proposal each), or
 * with plain send when the batch size is 1. It prints messages/s, MB/s and the
 * acknowledgement latency of a request (p50, p99, max; nearest rank over every recorded
 * latency). The first failed request stops the run and makes the exit code 1.
 *
 * Imports client, ./run, ./progress and packages.
 */
import { randomBytes } from 'node:crypto'
import { Command, Option } from 'commander'
import Table from 'cli-table3'
import { Client, RaftmqError } from '../client/index.js'
import type { Message } from '../client/index.js'
import type { Compression } from '../protocol/compression.js'
import { formatBytes } from './produce.js'
import { Progress } from './progress.js'
import { brokersOption, examples, integer, withClient } from './run.js'

interface BenchOpts {
  readonly brokers: string[]
  /** Absent: a fresh topic, deleted afterwards. */
  readonly topic?: string
  readonly messages: number
  readonly size: number
  readonly batchSize: number
  /** Absent: 1 for a topic created here, the count of an existing --topic. */
  readonly partitions?: number
  readonly replicationFactor: number
  readonly producers: number
  readonly compression: Compression
}

/** How long to wait for the leaders of a topic's partitions. */
const leadersWaitMs = 10_000

export function benchCommand(): Command {
  return new Command('bench')
    .description('measure produce throughput and acknowledgement latency')
    .addOption(new Option('-t, --topic <name>', 'topic to produce to, created if missing and kept (default: a fresh topic, deleted afterwards)'))
    .addOption(new Option('-n, --messages <n>', 'messages to send in all').argParser(integer(1)).default(100_000))
    .addOption(new Option('-s, --size <bytes>', 'bytes of each message value').argParser(integer(0, 1 << 20)).default(100))
    .addOption(new Option('--batch-size <n>', 'messages per request; 1 uses plain send').argParser(integer(1, 100_000)).default(100))
    .addOption(new Option('-p, --partitions <n>', 'partitions of the topic (an existing --topic must have as many)').argParser(integer(1, 10_000)))
    .addOption(new Option('-r, --replication-factor <n>', 'copies of each partition, when the topic is created').argParser(integer(1, 255)).default(1))
    .addOption(new Option('--producers <k>', 'concurrent producers, each with its own connection and one request in flight').argParser(integer(1, 256)).default(1))
    .addOption(new Option('-z, --compression <codec>', 'batch compression').choices(['none', 'gzip', 'lz4', 'zstd']).default('none'))
    .addOption(brokersOption())
    .addHelpText(
      'after',
      examples('raftmq bench', 'raftmq bench --messages 1000000 --size 1000 --batch-size 1000 --partitions 4 --producers 4', 'raftmq bench --batch-size 1 --messages 10000'),
    )
    .action(async (given: BenchOpts) => {
      const fresh = given.topic === undefined
      const opts = { ...given, topic: given.topic ?? `raftmq-bench-${randomBytes(4).toString('hex')}` }
      const partitions = await withClient(opts.brokers, (client) => prepareTopic(client, opts, fresh))
      try {
        const result = await run(opts, partitions)
        process.stdout.write(`${report(opts, partitions, result)}\n`)
        if (result.failure) throw result.failure
      } finally {
        if (fresh) await withClient(opts.brokers, (client) => client.admin().deleteTopic(opts.topic)).catch(() => process.stderr.write(`raftmq: could not delete the bench topic ${opts.topic}; delete it with: raftmq topic delete ${opts.topic}\n`))
      }
    })
}

/** Creates the topic if it is missing (a fresh one always is) and waits for its leaders; answers its partition count. */
async function prepareTopic(client: Client, opts: BenchOpts & { topic: string }, fresh: boolean): Promise<number> {
  const admin = client.admin()
  const partitions = opts.partitions ?? 1
  const created = await admin.createTopic({ name: opts.topic, partitions, replicationFactor: opts.replicationFactor, ifNotExists: !fresh })
  if (created.created) process.stderr.write(`created topic ${opts.topic} with ${partitions} partition${partitions === 1 ? '' : 's'}${fresh ? ' (deleted after the run)' : ''}\n`)
  else if (opts.partitions !== undefined && created.partitions !== opts.partitions) {
    throw new RaftmqError('INVALID_CONFIG', `topic ${opts.topic} exists with ${created.partitions} partition${created.partitions === 1 ? '' : 's'}, not ${opts.partitions}: leave out --partitions to use it as it is, or pick another --topic`)
  }
  const deadline = Date.now() + leadersWaitMs
  for (;;) {
    const d = await admin.describeTopic(opts.topic)
    if (d.partitions.every((p) => p.leader !== null)) return d.partitions.length
    if (Date.now() > deadline) throw new RaftmqError('LEADER_NOT_AVAILABLE', `${opts.topic} still has partitions without a leader after ${leadersWaitMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

interface BenchResult {
  readonly acked: number
  readonly elapsedMs: number
  /** Acknowledgement latency of each request, ms, sorted. */
  readonly latenciesMs: Float64Array
  readonly failure: RaftmqError | null
}

async function run(opts: BenchOpts & { topic: string }, partitions: number): Promise<BenchResult> {
  const value = payload(opts.size)
  const requestsMax = Math.ceil(opts.messages / opts.batchSize) + opts.producers // each producer's last batch may be short
  const latenciesMs = new Float64Array(requestsMax)
  let requests = 0
  let acked = 0
  let nextPartition = 0
  let failure: RaftmqError | null = null
  const progress = new Progress({ total: opts.messages, unit: 'messages' })

  const produceShare = async (producerIndex: number, share: number): Promise<void> => {
    const client = new Client({ brokers: opts.brokers, clientId: `raftmq-bench-${producerIndex}` })
    try {
      const producer = client.producer({ compression: opts.compression })
      for (let left = share; left > 0 && failure === null; ) {
        const n = Math.min(opts.batchSize, left)
        const partition = nextPartition++ % partitions
        const t0 = performance.now()
        let error: RaftmqError | null = null
        try {
          if (opts.batchSize === 1) await producer.send({ topic: opts.topic, partition, value })
          else {
            const messages: Message[] = new Array<Message>(n).fill({ topic: opts.topic, partition, value })
            const failed = (await producer.sendBatch(messages)).results.find((x) => 'error' in x)
            if (failed && 'error' in failed) error = RaftmqError.from(failed.error)
          }
        } catch (err) {
          error = err instanceof RaftmqError ? err : new RaftmqError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err })
        }
        if (error) {
          failure ??= error
          return
        }
        latenciesMs[requests++] = performance.now() - t0
        acked += n
        left -= n
        progress.update(acked, `${formatBytes(acked * opts.size)}`)
      }
    } finally {
      await client.close()
    }
  }

  const startMs = performance.now()
  await Promise.all(Array.from({ length: opts.producers }, (_, j) => produceShare(j, Math.floor(opts.messages / opts.producers) + (j < opts.messages % opts.producers ? 1 : 0))))
  const elapsedMs = performance.now() - startMs
  progress.stop()
  return { acked, elapsedMs, latenciesMs: latenciesMs.slice(0, requests).sort(), failure }
}

/** `size` random upper-case letters, like Kafka's producer-perf-test: partly compressible. */
function payload(size: number): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = 65 + Math.floor(Math.random() * 26)
  return b
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

function report(opts: BenchOpts & { topic: string }, partitions: number, r: BenchResult): string {
  const seconds = r.elapsedMs / 1000
  const ms = (v: number): string => (Number.isNaN(v) ? '-' : `${v.toFixed(2)} ms`)
  const table = new Table({ style: { head: [], border: [], compact: true } })
  table.push(
    ['topic', `${opts.topic} (${partitions} partition${partitions === 1 ? '' : 's'})`],
    ['messages', `${r.acked.toLocaleString('en-US')} × ${opts.size.toLocaleString('en-US')} B${opts.compression === 'none' ? '' : `, ${opts.compression}`}`],
    ['requests', `${r.latenciesMs.length.toLocaleString('en-US')} of ${opts.batchSize === 1 ? '1 message (send)' : `up to ${opts.batchSize.toLocaleString('en-US')} messages (sendBatch)`}`],
    ['producers', String(opts.producers)],
    ['elapsed', `${seconds.toFixed(2)} s`],
    ['messages/s', Math.round(r.acked / seconds).toLocaleString('en-US')],
    ['MB/s', ((r.acked * opts.size) / 1e6 / seconds).toFixed(2)],
    ['ack latency p50', ms(percentile(r.latenciesMs, 0.5))],
    ['ack latency p99', ms(percentile(r.latenciesMs, 0.99))],
    ['ack latency max', ms(percentile(r.latenciesMs, 1))],
  )
  return table.toString()
}
