/**
 * `raftmq consume <topic>`: prints the messages of one partition, or of every partition
 * one after another, from a starting position. Without --follow it stops at the high
 * watermark each partition had when the command started; with --follow the partitions
 * are read side by side, waiting for new messages until SIGINT or SIGTERM (exit 0).
 *
 * Output formats, one message per line: `value` writes the value's bytes as they are
 * (like `kcat -C`); `kv` writes key<TAB>value; `json` writes an object with partition,
 * offset, timestamp, key, value and headers, where a key, value or header that is not
 * UTF-8 text is written as {"base64": "..."}. Output respects stdout's backpressure and
 * ends quietly when the reader goes away (EPIPE, as in `| head`).
 *
 * Imports client, ./run and packages.
 */
import { once } from 'node:events'
import { Command, InvalidArgumentError, Option } from 'commander'
import { RaftmqError } from '../client/index.js'
import type { Client, ConsumedMessage } from '../client/index.js'
import { brokersOption, examples, exitCodes, failureLine, integer, withClient } from './run.js'

type Format = 'value' | 'json' | 'kv'
type From = 'earliest' | 'latest' | number

interface ConsumeOpts {
  readonly brokers: string[]
  readonly partition?: number
  readonly from: From
  readonly follow?: boolean
  readonly maxMessages?: number
  readonly format: Format
}

/** Long-poll wait of one fetch with --follow. */
const followWaitMs = 1_000

export function consumeCommand(): Command {
  return new Command('consume')
    .description('print the messages of a topic, one per line')
    .argument('<topic>', 'topic to read')
    .addOption(new Option('-p, --partition <n>', 'read only this partition (default: all, one after another)').argParser(integer(0)))
    .addOption(new Option('-o, --from <position>', 'where to start in each partition: earliest, latest or an offset').argParser(parseFrom).default('earliest'))
    .addOption(new Option('-f, --follow', 'keep waiting for new messages until interrupted (Ctrl-C)'))
    .addOption(new Option('-n, --max-messages <n>', 'stop after this many messages').argParser(integer(1)))
    .addOption(new Option('--format <format>', 'value: the value; kv: key<TAB>value; json: one object per message').choices(['value', 'json', 'kv']).default('value'))
    .addOption(brokersOption())
    .addHelpText(
      'after',
      examples('raftmq consume orders', 'raftmq consume orders --partition 0 --from 100 --max-messages 10 --format json', 'raftmq consume orders --from latest --follow'),
    )
    .action(async (topic: string, opts: ConsumeOpts) => {
      await withClient(opts.brokers, (client) => consume(client, topic, opts))
    })
}

function parseFrom(value: string): From {
  if (value === 'earliest' || value === 'latest') return value
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value)
  throw new InvalidArgumentError('expected earliest, latest or an offset (an integer >= 0)')
}

async function consume(client: Client, topic: string, opts: ConsumeOpts): Promise<void> {
  const count = await client.partitionCount(topic)
  if (opts.partition !== undefined && opts.partition >= count) {
    throw new RaftmqError('UNKNOWN_PARTITION', `topic ${topic} has no partition ${opts.partition} (it has ${count})`)
  }
  const partitions = opts.partition !== undefined ? [opts.partition] : Array.from({ length: count }, (_, i) => i)
  const out = new Output(opts.format, opts.maxMessages)
  const stop = (): void => {
    out.stopped = true
    void client.close() // ends the long polls in flight
  }
  out.onLimit = stop
  const onSignal = (): void => stop()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    if (opts.follow === true) await Promise.all(partitions.map((p) => readPartition(client, topic, p, opts, out)))
    else for (const p of partitions) await readPartition(client, topic, p, opts, out)
  } catch (err) {
    if (!out.stopped) throw err // after a stop, the closed connection is the expected way out
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

async function readPartition(client: Client, topic: string, partition: number, opts: ConsumeOpts, out: Output): Promise<void> {
  const admin = client.admin()
  const consumer = client.consumer()
  const follow = opts.follow === true
  let offset = typeof opts.from === 'number' ? opts.from : await admin.listOffset(topic, partition, opts.from)
  const end = follow ? Infinity : await admin.listOffset(topic, partition, 'latest')
  while (!out.stopped && offset < end) {
    const page = await consumer.fetch({ topic, partition, offset, maxWaitMs: follow ? followWaitMs : 0 })
    const messages = page.messages.filter((m) => m.offset < end)
    await out.write(partition, messages)
    // without --follow, an empty page before the end means nothing more is there to read
    if (!follow && page.messages.length === 0) return
    offset = page.nextOffset
  }
}

class Output {
  readonly #format: Format
  readonly #max: number
  #written = 0
  stopped = false
  onLimit: () => void = () => {}

  constructor(format: Format, max: number | undefined) {
    this.#format = format
    this.#max = max ?? Infinity
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      // the reader went away (as in `| head`): nothing more to do
      if (err.code === 'EPIPE') process.exit(exitCodes.ok)
      process.stderr.write(`${failureLine(err)}\n`)
      process.exit(exitCodes.failed)
    })
  }

  async write(partition: number, messages: readonly ConsumedMessage[]): Promise<void> {
    if (this.stopped || messages.length === 0) return
    const take = messages.slice(0, this.#max - this.#written)
    this.#written += take.length
    const chunks = take.map((m) => this.#line(partition, m))
    if (!process.stdout.write(Buffer.concat(chunks))) await once(process.stdout, 'drain')
    if (this.#written >= this.#max) this.onLimit()
  }

  #line(partition: number, m: ConsumedMessage): Buffer {
    switch (this.#format) {
      case 'value':
        return Buffer.concat([m.value ?? empty, newline])
      case 'kv':
        return Buffer.concat([m.key ?? empty, tab, m.value ?? empty, newline])
      case 'json': {
        const headers: Record<string, unknown> = {}
        for (const [k, v] of Object.entries(m.headers)) headers[k] = jsonBytes(v)
        const line = { partition, offset: m.offset, timestamp: m.timestamp, key: jsonBytes(m.key), value: jsonBytes(m.value), headers }
        return Buffer.from(`${JSON.stringify(line)}\n`)
      }
    }
  }
}

const empty = new Uint8Array(0)
const newline = Buffer.from('\n')
const tab = Buffer.from('\t')
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** UTF-8 text as a string, other bytes as {"base64": ...}, null as null. */
function jsonBytes(bytes: Uint8Array | null): string | { base64: string } | null {
  if (bytes === null) return null
  try {
    return utf8.decode(bytes)
  } catch {
    return { base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') }
  }
}
