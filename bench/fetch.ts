/**
 * bench/fetch.ts — how fast raftmq reads back what it stored, and how soon a tailing
 * consumer sees a new message (`npm run bench:fetch`).
 *
 * Setup: one broker in a child process (bench/lib/broker-process.ts, a fresh temporary
 * data directory), a topic with one partition. raftmq's code, the broker's and the
 * client's this bench uses, is compiled by tsc first by default (as `npm start` and an
 * application using the package run it); --code tsx runs both from source (slower:
 * see bench/produce.ts).
 *
 * 1. Store: --messages messages of --bytes value bytes, as sendBatch batches of
 *    --store-batch messages with --store-depth requests in flight (durable, as always).
 *    Reported: messages/s stored, for context.
 * 2. Read back, --runs times: one consumer reads the whole partition from offset 0 with
 *    sequential batch fetches of --max-bytes each, until it has every message.
 *      decoded  `consumer.fetch()`: the public API; every record decoded into a message
 *               object (offset, key, value view, headers, timestamp) on the client.
 *      raw      `client.request('fetch')`: the same requests, the batches counted from
 *               their headers but not decoded — what the broker and the wire deliver.
 *    Reported: messages/s (median, min, max of runs), MB/s of values, fetches per read,
 *    and the CPU of broker and client.
 * 3. Tail: a consumer long-polls at the end of the log (maxWaitMs 1000) while a producer
 *    sends one message every --tail-interval-ms. Reported: p50/p99/max of the delivery
 *    latency (the producer's send() call to the consumer holding the message) and of the
 *    producer's acknowledgement; plus the latency of fetches that find their data at once
 *    (maxMessages 1): from a one-message batch at the tail, and from a big stored batch in
 *    the middle of the log (a fetch returns whole stored batches, so that one carries
 *    --store-batch messages, CRC-checked whole, to deliver one; the consumer steps over
 *    the records before it by their lengths and decodes only that one).
 *
 * The issue's goal (reported, not asserted): reading back 1,000,000 messages at
 * >= 1,000,000 messages/s.
 *
 * Run:
 *   npm run bench:fetch
 *   npm run bench:fetch -- --quick
 *   npm run bench:fetch -- --messages 2000000 --max-bytes 4194304,33554432 --runs 7
 *   npm run bench:fetch -- --help
 */
import { parseArgs } from 'node:util'
import type { Client, Message } from '../src/client/index.js'
import { codeKind, compiledBroker, importCode, spawnBroker } from './lib/broker-process.js'
import type { BrokerProcess, CodeKind } from './lib/broker-process.js'
import {
  describeEnvironment,
  environment,
  fmtBytes,
  fmtInt,
  fmtMs,
  fmtPct,
  gitState,
  machineBusySeconds,
  markdownTable,
  median,
  ownCpuSeconds,
  percentile,
  saveResults,
  sleep,
  spreadOf,
  style,
  textTable,
  waitForQuiet,
} from './lib/report.js'
import type { Column, Spread } from './lib/report.js'
import { optionNumber } from './lib/options.js'

const HELP = `Usage: npm run bench:fetch -- [options]

Stores N messages in one partition, reads them all back with batch fetches (decoded by
the consumer, and raw), then measures a tailing consumer's latency. Results:
bench/results/fetch.{json,md}.

Options:
  --messages N         messages to store and read back (default 1000000)
  --bytes B            value bytes per message (default 100)
  --store-batch N      messages per sendBatch while storing (default 5000)
  --store-depth N      sendBatch requests in flight while storing (default 4)
  --max-bytes LIST     maxBytes of each read-back fetch (default 16777216; the broker caps at 32 MiB)
  --runs N             full read-backs per variant (default 5)
  --tail-messages N    messages sent to the tailing consumer (default 500)
  --tail-interval-ms M pause between those sends (default 5)
  --workers N          the broker's worker threads (default: the broker's default)
  --code KIND          how raftmq's code runs, in the broker and in this client: compiled
                       (default: src/ compiled by tsc first, as \`npm start\` runs it) or
                       tsx (from source)
  --quiet-cores C      before each phase, wait until other processes use at most C cores
                       (default 0.5) ...
  --quiet-wait S       ... but at most S seconds (default 20; 0 never waits)
  --quick              a short smoke run: 200,000 messages, 2 runs, 100 tail messages
  --no-save            do not write bench/results/fetch.{json,md}
  -h, --help           show this help
`

interface Options {
  messages: number
  bytes: number
  storeBatch: number
  storeDepth: number
  maxBytes: number[]
  runs: number
  tailMessages: number
  tailIntervalMs: number
  workers: number | undefined
  code: CodeKind
  quietCores: number
  quietWait: number
  quick: boolean
  save: boolean
}

function parseOptions(): Options {
  const { values: v } = parseArgs({
    options: {
      messages: { type: 'string' },
      bytes: { type: 'string', default: '100' },
      'store-batch': { type: 'string', default: '5000' },
      'store-depth': { type: 'string', default: '4' },
      'max-bytes': { type: 'string', default: String(16 << 20) },
      runs: { type: 'string' },
      'tail-messages': { type: 'string' },
      'tail-interval-ms': { type: 'string', default: '5' },
      workers: { type: 'string' },
      code: { type: 'string', default: 'compiled' },
      'quiet-cores': { type: 'string', default: '0.5' },
      'quiet-wait': { type: 'string', default: '20' },
      quick: { type: 'boolean', default: false },
      'no-save': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (v.help) {
    process.stdout.write(HELP)
    process.exit(0)
  }
  const num = optionNumber
  const quick = v.quick
  return {
    messages: num('messages', v.messages ?? (quick ? '200000' : '1000000'), 1),
    bytes: num('bytes', v.bytes, 0),
    storeBatch: num('store-batch', v['store-batch'], 1),
    storeDepth: num('store-depth', v['store-depth'], 1),
    maxBytes: v['max-bytes'].split(',').map((x) => num('max-bytes', x.trim(), 1)),
    runs: num('runs', v.runs ?? (quick ? '2' : '5'), 1),
    tailMessages: num('tail-messages', v['tail-messages'] ?? (quick ? '100' : '500'), 1),
    tailIntervalMs: num('tail-interval-ms', v['tail-interval-ms'], 0, false),
    workers: v.workers === undefined ? undefined : num('workers', v.workers, 1),
    code: codeKind(v.code),
    quietCores: num('quiet-cores', v['quiet-cores'], 0, false),
    quietWait: num('quiet-wait', v['quiet-wait'], 0, false),
    quick,
    save: !v['no-save'],
  }
}

const TOPIC = 'fetch-bench'

/** The code under test (compiled or source, per --code). */
let ClientImpl: typeof Client
let readBatchHeader: (typeof import('../src/protocol/record-batch.js'))['readBatchHeader']

/** CPU cores used by the broker, this process and everything else over an interval. */
function cpuMeter(broker: BrokerProcess): () => { seconds: number; brokerCpu: number; clientCpu: number; otherCpu: number } {
  const t0 = performance.now()
  const b0 = broker.cpuSeconds()
  const c0 = ownCpuSeconds()
  const m0 = machineBusySeconds()
  return () => {
    const seconds = (performance.now() - t0) / 1000
    const brokerCpu = (broker.cpuSeconds() - b0) / seconds
    const clientCpu = (ownCpuSeconds() - c0) / seconds
    return { seconds, brokerCpu, clientCpu, otherCpu: Math.max(0, (machineBusySeconds() - m0) / seconds - brokerCpu - clientCpu) }
  }
}

// ---- 1. store --------------------------------------------------------------------------------

interface StoreResult {
  readonly messages: number
  readonly seconds: number
  readonly messagesPerSec: number
  readonly brokerCpu: number
  readonly clientCpu: number
  readonly otherCpu: number
}

async function store(client: Client, broker: BrokerProcess, opts: Options): Promise<StoreResult> {
  const producer = client.producer()
  const value = new Uint8Array(opts.bytes)
  for (let i = 0; i < value.length; i++) value[i] = (i * 2654435761) >>> 24
  const batch: Message[] = Array.from({ length: opts.storeBatch }, () => ({ topic: TOPIC, partition: 0, value }))
  let next = 0
  const meter = cpuMeter(broker)
  const loop = async (): Promise<void> => {
    while (next < opts.messages) {
      const n = Math.min(opts.storeBatch, opts.messages - next)
      next += n
      const { results } = await producer.sendBatch(n === batch.length ? batch : batch.slice(0, n))
      for (const r of results) if ('error' in r) throw new Error(`storing: ${r.error.code}: ${r.error.message}`)
    }
  }
  await Promise.all(Array.from({ length: opts.storeDepth }, loop))
  const m = meter()
  return { messages: opts.messages, seconds: m.seconds, messagesPerSec: opts.messages / m.seconds, brokerCpu: m.brokerCpu, clientCpu: m.clientCpu, otherCpu: m.otherCpu }
}

// ---- 2. read back ---------------------------------------------------------------------------------

type Variant = 'decoded' | 'raw'

interface ReadRun {
  readonly seconds: number
  readonly messagesPerSec: number
  readonly fetches: number
  readonly bytes: number
  readonly brokerCpu: number
  readonly clientCpu: number
  readonly otherCpu: number
}

interface ReadResult {
  readonly variant: Variant
  readonly maxBytes: number
  readonly runs: ReadRun[]
  readonly messagesPerSec: Spread
  readonly mbPerSec: number
  readonly fetchesPerRead: number
  readonly brokerCpu: number
  readonly clientCpu: number
  readonly otherCpu: number
  readonly goalMet: boolean
}

async function readAll(client: Client, broker: BrokerProcess, variant: Variant, maxBytes: number, total: number): Promise<ReadRun> {
  const consumer = client.consumer()
  let offset = 0
  let messages = 0
  let fetches = 0
  let bytes = 0
  const meter = cpuMeter(broker)
  while (messages < total) {
    fetches++
    if (variant === 'decoded') {
      const page = await consumer.fetch({ topic: TOPIC, partition: 0, offset, maxBytes })
      if (page.messages.length === 0) throw new Error(`read back: nothing at offset ${offset} (high watermark ${page.highWatermark})`)
      messages += page.messages.length
      for (const m of page.messages) bytes += m.value?.byteLength ?? 0
      offset = page.nextOffset
    } else {
      const r = await client.request('fetch', { maxWaitMs: 0, maxBytes, partitions: [{ topic: TOPIC, partition: 0, offset }] })
      const p = r.partitions[0]!
      if (p.error) throw new Error(`read back: ${p.error.code}: ${p.error.message}`)
      if (p.batches.length === 0) throw new Error(`read back: nothing at offset ${offset}`)
      for (const b of p.batches) {
        const h = readBatchHeader(b)
        if (!h.ok) throw new Error(`read back: a batch header does not parse: ${h.error.message}`)
        // a batch may start before the asked offset; count only what lies at or after it
        const from = Math.max(offset, h.value.baseOffset)
        const last = h.value.baseOffset + h.value.lastOffsetDelta
        messages += last - from + 1
        bytes += b.byteLength
        offset = last + 1
      }
    }
  }
  const m = meter()
  return { seconds: m.seconds, messagesPerSec: messages / m.seconds, fetches, bytes, brokerCpu: m.brokerCpu, clientCpu: m.clientCpu, otherCpu: m.otherCpu }
}

// ---- 3. tail ------------------------------------------------------------------------------------------

interface Latency {
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly count: number
}

function latencyOf(xs: readonly number[]): Latency {
  const s = Float64Array.from(xs).sort()
  return { p50Ms: percentile(s, 50), p99Ms: percentile(s, 99), maxMs: s.length > 0 ? s[s.length - 1]! : NaN, count: s.length }
}

interface TailResult {
  readonly delivery: Latency
  readonly ack: Latency
  readonly immediateSmall: Latency
  readonly immediateLarge: Latency
}

async function tail(broker: BrokerProcess, total: number, opts: Options): Promise<TailResult> {
  // separate connections: the consumer's long poll must not sit in front of the producer's requests
  const consumerClient = new ClientImpl({ brokers: [broker.address], clientId: 'tail-consumer' })
  const producerClient = new ClientImpl({ brokers: [broker.address], clientId: 'tail-producer' })
  try {
    const consumer = consumerClient.consumer()
    const producer = producerClient.producer()
    // every value carries its index; sentTimes[index] is when its send() was called
    const sentTimes: number[] = []
    const delivery: number[] = []
    const ack: number[] = []
    const first = total
    let done = false
    const reader = (async () => {
      let offset = first
      while (!done) {
        const page = await consumer.fetch({ topic: TOPIC, partition: 0, offset, maxWaitMs: 1000 })
        const now = performance.now()
        for (const m of page.messages) {
          const index = m.value && m.value.byteLength >= 4 ? new DataView(m.value.buffer, m.value.byteOffset, 4).getUint32(0) : -1
          const sent = sentTimes[index]
          if (sent !== undefined) delivery.push(now - sent)
          if (m.offset >= first + opts.tailMessages - 1) done = true
        }
        offset = page.nextOffset
      }
    })()
    await sleep(50) // let the consumer park its long poll
    for (let i = 0; i < opts.tailMessages; i++) {
      const value = new Uint8Array(Math.max(4, opts.bytes))
      new DataView(value.buffer).setUint32(0, i)
      const t0 = performance.now()
      sentTimes[i] = t0
      await producer.send({ topic: TOPIC, partition: 0, value })
      ack.push(performance.now() - t0)
      if (opts.tailIntervalMs > 0) await sleep(opts.tailIntervalMs)
    }
    await Promise.race([reader, sleep(10_000)])
    done = true
    // fetches that find their data at once: one message from a one-message batch (the tail
    // just written), and one message from the middle of the log, where a whole stored
    // batch of --store-batch messages travels (and is CRC-checked) to deliver it
    const immediate = async (offsetOf: (i: number) => number): Promise<Latency> => {
      const times: number[] = []
      for (let i = 0; i < 250; i++) {
        const offset = offsetOf(i)
        const t0 = performance.now()
        const page = await consumer.fetch({ topic: TOPIC, partition: 0, offset, maxBytes: 1, maxMessages: 1 })
        if (i >= 50) times.push(performance.now() - t0) // the first ones warm up
        if (page.messages.length === 0) throw new Error(`fetch at ${offset}: nothing`)
      }
      return latencyOf(times)
    }
    const immediateSmall = await immediate((i) => first + (i % opts.tailMessages))
    const immediateLarge = await immediate((i) => Math.floor(((i * 7919) % 1000) * (total / 1000)))
    return { delivery: latencyOf(delivery), ack: latencyOf(ack), immediateSmall, immediateLarge }
  } finally {
    await consumerClient.close()
    await producerClient.close()
  }
}

// ---- output -----------------------------------------------------------------------------------------

const READ_COLUMNS: Column[] = [
  { title: 'read', align: 'left' },
  { title: 'maxBytes', align: 'right' },
  { title: 'msgs/s', align: 'right' },
  { title: 'min', align: 'right' },
  { title: 'max', align: 'right' },
  { title: 'spread', align: 'right' },
  { title: 'MB/s', align: 'right' },
  { title: 'fetches', align: 'right' },
  { title: 'broker cpu', align: 'right' },
  { title: 'client cpu', align: 'right' },
  { title: 'other cpu', align: 'right' },
  { title: 'goal', align: 'left' },
]

function readRow(r: ReadResult, color: boolean): string[] {
  const goal = r.variant === 'decoded' ? `${r.goalMet ? 'PASS' : 'FAIL'} >= 1,000,000 msgs/s` : ''
  return [
    r.variant === 'decoded' ? 'consumer.fetch (decoded)' : 'raw fetch (not decoded)',
    fmtBytes(r.maxBytes),
    color ? style.bold(fmtInt(r.messagesPerSec.median)) : fmtInt(r.messagesPerSec.median),
    fmtInt(r.messagesPerSec.min),
    fmtInt(r.messagesPerSec.max),
    fmtPct(r.messagesPerSec.spread),
    r.mbPerSec.toFixed(1),
    fmtInt(r.fetchesPerRead),
    r.brokerCpu.toFixed(2),
    r.clientCpu.toFixed(2),
    r.otherCpu.toFixed(2),
    color && goal !== '' ? (r.goalMet ? style.green(goal) : style.red(goal)) : goal,
  ]
}

const TAIL_COLUMNS: Column[] = [
  { title: 'latency', align: 'left' },
  { title: 'p50 ms', align: 'right' },
  { title: 'p99 ms', align: 'right' },
  { title: 'max ms', align: 'right' },
  { title: 'samples', align: 'right' },
]

function tailRows(t: TailResult, storeBatch: number): string[][] {
  const row = (name: string, l: Latency): string[] => [name, fmtMs(l.p50Ms), fmtMs(l.p99Ms), fmtMs(l.maxMs), fmtInt(l.count)]
  return [
    row('delivery: send() call -> tailing consumer has it', t.delivery),
    row('acknowledgement: send() call -> resolved', t.ack),
    row('fetch with data at hand: a 1-message batch', t.immediateSmall),
    row(`fetch with data at hand: 1 message of a ${fmtInt(storeBatch)}-message batch`, t.immediateLarge),
  ]
}

// ---- main ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseOptions()
  const env = environment()
  const git = gitState()
  console.log(style.bold('raftmq fetch bench') + style.dim(` — ${fmtInt(opts.messages)} messages of ${fmtBytes(opts.bytes)}, one partition, one node in a child process`))
  console.log(style.dim(`  ${describeEnvironment(env)}`))
  console.log(style.dim(`  tree at ${git.commit}${git.dirty.length > 0 ? ` with ${git.dirty.length} files changed in src/ and workers/` : ''}; raftmq's code (broker and client) ${opts.code === 'compiled' ? 'compiled by tsc' : 'from source under tsx'}`))
  console.log()
  const quiet = async (): Promise<void> => {
    if (opts.quietWait > 0) await waitForQuiet(opts.quietCores, opts.quietWait * 1000, (c) => process.stdout.write(style.yellow(`(waiting: others use ${c.toFixed(1)} cores) `)))
  }
  const code = await importCode<typeof import('../src/client/index.js')>(opts.code, 'src/client/index')
  ClientImpl = code.Client
  readBatchHeader = (await importCode<typeof import('../src/protocol/record-batch.js')>(opts.code, 'src/protocol/record-batch')).readBatchHeader
  const compiledMain = opts.code === 'compiled' ? (await compiledBroker()).main : undefined
  const broker = await spawnBroker({ workers: opts.workers, compiledMain })
  const client = new ClientImpl({ brokers: [broker.address] })
  let stored: StoreResult
  const reads: ReadResult[] = []
  let tailed: TailResult
  try {
    await client.admin().createTopic({ name: TOPIC, partitions: 1 })
    process.stdout.write(style.dim(`  storing ${fmtInt(opts.messages)} messages (sendBatch of ${fmtInt(opts.storeBatch)}, ${opts.storeDepth} in flight) ... `))
    await quiet()
    stored = await store(client, broker, opts)
    console.log(`${fmtInt(stored.messagesPerSec)} msgs/s stored ${style.dim(`(${stored.seconds.toFixed(1)} s)`)}`)
    const hw = await client.admin().listOffset(TOPIC, 0, 'latest')
    if (hw !== opts.messages) throw new Error(`stored ${hw} messages, expected ${opts.messages}`)
    // warm-up: one read of each variant, so JIT compilation is not timed
    for (const variant of ['decoded', 'raw'] as const) await readAll(client, broker, variant, opts.maxBytes[0]!, Math.min(opts.messages, 200_000))
    for (const maxBytes of opts.maxBytes) {
      const runs: Record<Variant, ReadRun[]> = { decoded: [], raw: [] }
      for (let i = 0; i < opts.runs; i++) {
        process.stdout.write(style.dim(`  read back, maxBytes ${fmtBytes(maxBytes)}, run ${i + 1}/${opts.runs} ... `))
        await quiet()
        // alternate the order so neither variant always follows the other
        const order: Variant[] = i % 2 === 0 ? ['decoded', 'raw'] : ['raw', 'decoded']
        for (const variant of order) runs[variant].push(await readAll(client, broker, variant, maxBytes, opts.messages))
        console.log(`decoded ${fmtInt(runs.decoded[i]!.messagesPerSec)} msgs/s, raw ${fmtInt(runs.raw[i]!.messagesPerSec)} msgs/s`)
      }
      for (const variant of ['decoded', 'raw'] as const) {
        const rs = runs[variant]
        const rate = spreadOf(rs.map((r) => r.messagesPerSec))
        reads.push({
          variant,
          maxBytes,
          runs: rs,
          messagesPerSec: rate,
          mbPerSec: (rate.median * opts.bytes) / 1e6,
          fetchesPerRead: median(rs.map((r) => r.fetches)),
          brokerCpu: median(rs.map((r) => r.brokerCpu)),
          clientCpu: median(rs.map((r) => r.clientCpu)),
          otherCpu: median(rs.map((r) => r.otherCpu)),
          goalMet: rate.median >= 1_000_000,
        })
      }
    }
    process.stdout.write(style.dim(`  tailing consumer, ${opts.tailMessages} sends ${opts.tailIntervalMs} ms apart ... `))
    await quiet()
    tailed = await tail(broker, opts.messages, opts)
    console.log(`delivery p50 ${fmtMs(tailed.delivery.p50Ms)} ms`)
  } finally {
    await client.close()
    await broker.stop()
  }

  console.log()
  console.log(textTable(READ_COLUMNS, reads.map((r) => readRow(r, true))))
  console.log()
  console.log(textTable(TAIL_COLUMNS, tailRows(tailed, opts.storeBatch)))
  console.log()
  console.log(style.dim(LEGEND(opts)))
  console.log()
  const decoded = reads.filter((r) => r.variant === 'decoded')
  const best = decoded.reduce((a, b) => (b.messagesPerSec.median > a.messagesPerSec.median ? b : a))
  console.log(
    `${style.bold('Goal')} ${style.dim('(reported, not asserted)')}: read back ${fmtInt(opts.messages)} messages >= 1,000,000 msgs/s: ` +
      (best.goalMet ? style.green('PASS') : style.red('FAIL')) +
      ` (${fmtInt(best.messagesPerSec.median)} msgs/s decoded with maxBytes ${fmtBytes(best.maxBytes)})`,
  )

  if (opts.save) {
    const date = new Date().toISOString()
    const json = { bench: 'fetch', date, environment: env, git, options: opts, store: stored, reads, tail: tailed }
    const md = [
      '# fetch bench',
      '',
      `${date}; ${describeEnvironment(env)}. Tree at ${git.commit}${git.dirty.length > 0 ? ` plus uncommitted changes to ${git.dirty.join(', ')}` : ''}.`,
      '',
      `One raftmq node in a child process (raftmq's code, broker and client, ${opts.code === 'compiled' ? 'compiled by tsc, as `npm start` runs it' : 'from source under tsx'}), one partition holding ${fmtInt(opts.messages)} messages of ${fmtBytes(opts.bytes)} ` +
        `(stored at ${fmtInt(stored.messagesPerSec)} msgs/s as sendBatch batches of ${fmtInt(opts.storeBatch)}, ${opts.storeDepth} in flight, durable). ` +
        `Each read-back run reads every message from offset 0 with sequential fetches; ${opts.runs} runs per variant, medians. ` +
        'Run with `npm run bench:fetch`' + (opts.quick ? ' -- --quick' : '') + '.',
      '',
      markdownTable(READ_COLUMNS, reads.map((r) => readRow(r, false))),
      '',
      `Tailing consumer (long poll, maxWaitMs 1000), ${opts.tailMessages} single sends ${opts.tailIntervalMs} ms apart:`,
      '',
      markdownTable(TAIL_COLUMNS, tailRows(tailed, opts.storeBatch)),
      '',
      LEGEND(opts),
      '',
    ].join('\n')
    const files = saveResults('fetch', json, md)
    console.log()
    console.log(style.dim(`Wrote ${files.join(' and ')}`))
  }
}

const LEGEND = (opts: Options): string => `decoded: consumer.fetch(), every record decoded into a message object on the client; raw: the same
fetch requests through client.request(), batches counted from their headers, not decoded. msgs/s: messages
read per second over a whole read of ${fmtInt(opts.messages)}; MB/s: value bytes. fetches: requests per read. cpu: cores
used on average by the broker process, by this process and by everything else on the machine.`

await main()
