/**
 * `raftmq consume <topic>`: prints the messages of every partition of a topic (or of one,
 * -p), from a starting position per partition, like `kcat -C`. Without --follow it
 * stops at the high watermark each partition had when the command started (-e, the
 * default), and the partitions' messages come merged in timestamp order; with --follow
 * they are read side by side, printed as they arrive, until SIGINT or SIGTERM (exit 0),
 * riding out a broker restart or a failover however long it takes: the first retriable
 * failure is said once on stderr, reading resumes at the next offset of each partition,
 * and the recovery is said too.
 *
 * Positions (-o): earliest|beginning, latest|end, an offset N, or -N: N messages before
 * each partition's end (not before its start).
 *
 * Output formats, one message per line: `value` writes the value's bytes as they are;
 * `kv` writes key<TAB>value; `json` writes an object with topic, partition, offset,
 * timestamp, key, value and headers, where a key, value or header that is not UTF-8 text
 * is written as {"base64": "..."}; anything with a % is a kcat format string
 * (./format.ts). Output respects stdout's backpressure and ends quietly when the reader
 * goes away (EPIPE, as in `| head`).
 *
 * Imports client, ./run, ./format and packages.
 */
import { once } from 'node:events'
import { Command, InvalidArgumentError, Option } from 'commander'
import { RaftmqError } from '../client/index.js'
import type { Client, ConsumedMessage } from '../client/index.js'
import { compileFormat } from './format.js'
import type { Formatter } from './format.js'
import { brokersOption, examples, exitCodes, failureLine, integer, withClient } from './run.js'

type From = 'earliest' | 'latest' | { readonly offset: number } | { readonly beforeEnd: number }

interface ConsumeOpts {
  readonly brokers: string[]
  readonly partition?: number
  readonly from: From
  readonly follow?: boolean
  readonly count?: number
  readonly format: string
}

/** Long-poll wait of one fetch with --follow. */
const followWaitMs = 1_000

export function consumeCommand(): Command {
  return new Command('consume')
    .description('print the messages of a topic, one per line (every partition, merged in timestamp order)')
    .argument('<topic>', 'topic to read')
    .addOption(new Option('-p, --partition <n>', 'read only this partition (default: all)').argParser(integer(0)))
    .addOption(
      new Option('-o, --from <position>', 'where to start in each partition: earliest|beginning, latest|end, an offset N, or -N (N before the end)').argParser(parseFrom).default('earliest'),
    )
    .addOption(new Option('--follow', 'keep waiting for new messages until interrupted (Ctrl-C)').conflicts('exitAtEnd'))
    .addOption(new Option('-e, --exit-at-end', 'stop at the end of every partition (the default)'))
    .addOption(new Option('-c, --count <n>', 'stop after this many messages').argParser(integer(1)))
    .addOption(
      new Option('-f, --format <format>', "value, kv (key<TAB>value), json, or a kcat format string: %t topic, %p partition, %o offset, %k key, %s value, %h headers, %T timestamp (ms), %S value bytes, %K key bytes, %% a %; \\n \\t \\r \\\\ escapes (e.g. '%p:%o %k=%s\\n')")
        .argParser(parseFormat)
        .default('value'),
    )
    .addOption(brokersOption())
    .addHelpText(
      'after',
      examples(
        'raftmq consume orders',
        'raftmq consume orders -o -10                     # the last 10 of each partition',
        "raftmq consume orders -p 0 -o 100 -c 10 -f '%p:%o %k=%s\\n'",
        'raftmq consume orders -f json',
        'raftmq consume orders -o end --follow',
      ),
    )
    .action(async (topic: string, opts: ConsumeOpts) => {
      await withClient(opts.brokers, (client) => consume(client, topic, opts))
    })
}

function parseFrom(value: string): From {
  if (value === 'earliest' || value === 'beginning') return 'earliest'
  if (value === 'latest' || value === 'end') return 'latest'
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return { offset: Number(value) }
  if (/^-\d+$/.test(value) && Number.isSafeInteger(-Number(value))) return { beforeEnd: -Number(value) }
  if (value.startsWith('@')) throw new InvalidArgumentError('starting at a timestamp needs the partitions\' time index, which raftmq does not keep yet; use an offset')
  throw new InvalidArgumentError('expected earliest|beginning, latest|end, an offset N (an integer >= 0) or -N (N before the end)')
}

function parseFormat(value: string): string {
  if (value === 'value' || value === 'kv' || value === 'json' || value.includes('%')) return value
  throw new InvalidArgumentError("expected value, kv, json or a format string with % fields (e.g. '%k=%s\\n')")
}

async function consume(client: Client, topic: string, opts: ConsumeOpts): Promise<void> {
  const count = await client.partitionCount(topic)
  if (opts.partition !== undefined && opts.partition >= count) {
    throw new RaftmqError('UNKNOWN_PARTITION', `topic ${topic} has no partition ${opts.partition} (it has ${count})`)
  }
  const partitions = opts.partition !== undefined ? [opts.partition] : Array.from({ length: count }, (_, i) => i)
  const out = new Output(topic, opts.format, opts.count)
  const stop = (): void => {
    out.stopped = true
    void client.close() // ends the long polls in flight
  }
  out.onLimit = stop
  const onSignal = (): void => stop()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    if (opts.follow === true) await Promise.all(partitions.map((p) => followPartition(client, topic, p, opts.from, out)))
    else await readMerged(client, topic, partitions, opts.from, out)
  } catch (err) {
    if (!out.stopped) throw err // after a stop, the closed connection is the expected way out
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** The first offset to read in `partition` for `from`. */
async function startOffset(client: Client, topic: string, partition: number, from: From): Promise<number> {
  const admin = client.admin()
  if (from === 'earliest' || from === 'latest') return admin.listOffset(topic, partition, from)
  if ('offset' in from) return from.offset
  const [start, end] = await Promise.all([admin.listOffset(topic, partition, 'earliest'), admin.listOffset(topic, partition, 'latest')])
  return Math.max(start, end - from.beforeEnd)
}

/** A partition read up to the end it had at the start, one page at a time. */
class PartitionReader {
  readonly partition: number
  #offset: number
  readonly #end: number
  #page: ConsumedMessage[] = []
  #at = 0
  #done = false
  readonly #fetch: (offset: number) => Promise<{ messages: ConsumedMessage[]; nextOffset: number }>

  constructor(partition: number, offset: number, end: number, fetch: (offset: number) => Promise<{ messages: ConsumedMessage[]; nextOffset: number }>) {
    this.partition = partition
    this.#offset = offset
    this.#end = end
    this.#fetch = fetch
  }

  /** The next message, without taking it; null once the partition is read to its end. */
  async peek(): Promise<ConsumedMessage | null> {
    while (this.#at >= this.#page.length) {
      if (this.#done || this.#offset >= this.#end) return null
      const page = await this.#fetch(this.#offset)
      this.#page = page.messages.filter((m) => m.offset < this.#end)
      this.#at = 0
      // an empty page before the end means nothing more is there to read
      if (page.messages.length === 0) this.#done = true
      this.#offset = page.nextOffset
    }
    return this.#page[this.#at]!
  }

  /** The next message when a page holds it already (no await on the hot path), else undefined. */
  head(): ConsumedMessage | undefined {
    return this.#at < this.#page.length ? this.#page[this.#at] : undefined
  }

  take(): ConsumedMessage {
    return this.#page[this.#at++]!
  }
}

/**
 * Every partition from its start to the end it had when the command started, merged in
 * timestamp order (ties by partition): the topic's history as it happened, as far as the
 * producers' clocks tell. Pages are fetched per partition as its turn comes.
 */
async function readMerged(client: Client, topic: string, partitions: readonly number[], from: From, out: Output): Promise<void> {
  const consumer = client.consumer()
  const readers = await Promise.all(
    partitions.map(async (p) => {
      const [offset, end] = await Promise.all([startOffset(client, topic, p, from), client.admin().listOffset(topic, p, 'latest')])
      return new PartitionReader(p, offset, end, (at) => consumer.fetch({ topic, partition: p, offset: at, maxWaitMs: 0 }))
    }),
  )
  const lines: Buffer[] = []
  for (;;) {
    let best: PartitionReader | null = null
    let bestAt = 0
    for (const r of readers) {
      const m = r.head() ?? (await r.peek())
      if (m !== null && (best === null || m.timestamp < bestAt)) {
        best = r
        bestAt = m.timestamp
      }
    }
    if (best === null || out.stopped) break
    lines.push(out.line(best.partition, best.take()))
    if (lines.length >= 512) await out.write(lines.splice(0))
  }
  await out.write(lines)
}

/** A partition as messages arrive, through lost brokers (Consumer.pages), until the run stops. */
async function followPartition(client: Client, topic: string, partition: number, from: From, out: Output): Promise<void> {
  const pages = client.consumer().pages({
    topic,
    partition,
    from: await startOffset(client, topic, partition, from),
    maxWaitMs: followWaitMs,
    onRetry: (e) => out.lost(`${e.code}: ${e.message}`),
    onResume: (offset) => out.back(partition, offset),
  })
  for await (const page of pages) {
    await out.write(page.map((m) => out.line(partition, m)))
    if (out.stopped) return
  }
}

class Output {
  readonly #topic: string
  readonly #format: Formatter
  readonly #max: number
  #written = 0
  stopped = false
  onLimit: () => void = () => {}

  constructor(topic: string, format: string, max: number | undefined) {
    this.#topic = topic
    this.#format = compileFormat(format)
    this.#max = max ?? Infinity
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      // the reader went away (as in `| head`): nothing more to do
      if (err.code === 'EPIPE') process.exit(exitCodes.ok)
      process.stderr.write(`${failureLine(err)}\n`)
      process.exit(exitCodes.failed)
    })
  }

  #lost = false

  /** A follow lost its broker: said once until some partition reads again. */
  lost(why: string): void {
    if (this.#lost) return
    this.#lost = true
    process.stderr.write(`raftmq: ${why}; retrying until the broker answers (Ctrl-C to stop)\n`)
  }

  back(partition: number, offset: number): void {
    if (!this.#lost) return
    this.#lost = false
    process.stderr.write(`raftmq: reading again (partition ${partition} from offset ${offset})\n`)
  }

  line(partition: number, m: ConsumedMessage): Buffer {
    return this.#format(this.#topic, partition, m)
  }

  async write(lines: readonly Buffer[]): Promise<void> {
    if (this.stopped || lines.length === 0) return
    const take = lines.length <= this.#max - this.#written ? lines : lines.slice(0, this.#max - this.#written)
    this.#written += take.length
    if (!process.stdout.write(Buffer.concat(take))) await once(process.stdout, 'drain')
    if (this.#written >= this.#max) this.onLimit()
  }
}
