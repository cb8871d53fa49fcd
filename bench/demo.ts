/**
 * bench/demo.ts — the batch-processing demo (`npm run demo`).
 *
 * It starts an embedded broker (startNode, in this process, two worker threads) in a
 * temporary folder that is removed at the end, and shows the headline of raftmq:
 *
 * 1. N single sends against one batch of N, for N = 10, 100, 1000. The single path is N
 *    sequential `producer.send()` calls: N requests, N Raft proposals, N disk syncs, N
 *    round trips. The batch path is one `producer.sendBatch()` of the same N messages:
 *    one request, one proposal, one sync, one round trip. Both acknowledge only once the
 *    broker has synced the messages to disk. Each size is repeated (after a warm-up) and
 *    the medians are compared with the speedups the original design promised (10
 *    messages 6.7x, 100 messages 50x, 1000 messages 100x).
 *
 * 2. One batch, message by message: an idempotent producer's batch is stored, then sent
 *    again with the same producer id, epoch and sequence numbers — what a producer does
 *    when an answer is lost — and every message comes back with its original offset
 *    marked duplicate, stored once. Then a batch with one record over the 1 MiB message
 *    limit: without `atomic` that record alone is rejected (MESSAGE_TOO_LARGE) and the
 *    others are stored; with `atomic: true` nothing is.
 *
 * The resend is built with the protocol's own encoder (encodeRecordBatch) and sent twice
 * with `client.request('produce', ...)`, because a Producer never reuses sequence
 * numbers unless a request fails; the bytes are exactly what its retry would send.
 *
 * Run:
 *   npm run demo
 *   npm run demo -- --runs 9 --bytes 1024
 *   npm run demo -- --help
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { resolveConfig } from '../src/broker/config.js'
import { startNode } from '../src/broker/node.js'
import type { RunningNode } from '../src/broker/node.js'
import { Client } from '../src/client/index.js'
import type { BatchItemResult, Message, Producer } from '../src/client/index.js'
import { encodeRecordBatch } from '../src/protocol/record-batch.js'
import { produceResults } from '../src/protocol/api.js'
import { limits } from '../src/base/index.js'
import { fmtBytes, fmtMs, fmtX, median, style, textTable } from './lib/report.js'

const HELP = `Usage: npm run demo -- [options]

The batch-processing demo: an embedded broker, N single sends against one batch of N
(N = 10, 100, 1000, both acknowledged after the broker's disk sync), then one batch's
per-message results with a duplicate and a rejected message. About 10-20 seconds.

Options:
  --runs N      timed repetitions per size (default 5; 1000 messages: at most 3)
  --bytes B     value bytes per message (default 100)
  -h, --help    show this help
`

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    bytes: { type: 'string', default: '100' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
})
if (args.help) {
  process.stdout.write(HELP)
  process.exit(0)
}
const RUNS = Number(args.runs)
const VALUE_BYTES = Number(args.bytes)
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs: expected a positive integer, got ${args.runs}`)
if (!Number.isInteger(VALUE_BYTES) || VALUE_BYTES < 0 || VALUE_BYTES > limits.produce.messageBytesMax) throw new Error(`--bytes: expected 0..${limits.produce.messageBytesMax}, got ${args.bytes}`)

/** The original design's table (seed document): N messages, its times before/after, its speedup. */
const PROMISED = [
  { n: 10, before: '~100 ms', after: '~15 ms', speedup: 6.7 },
  { n: 100, before: '~1000 ms', after: '~20 ms', speedup: 50 },
  { n: 1000, before: '~10 s', after: '~100 ms', speedup: 100 },
] as const

const TIMED_TOPIC = 'demo'
const BATCH_RUNS_PER_RUN = 5
const SHOWCASE_TOPIC = 'orders'
const enc = new TextEncoder()
const dec = new TextDecoder()
// a closed stdout (`npm run demo | head`) must not kill the demo before it removes its folder
let stdoutOpen = true
process.stdout.on('error', () => (stdoutOpen = false))
const out = (s = ''): void => {
  if (stdoutOpen) process.stdout.write(`${s}\n`)
}

async function startBroker(dataDir: string): Promise<RunningNode> {
  const cfg = resolveConfig({ dataDir, listen: '127.0.0.1:0', workers: '2', logLevel: 'error' })
  if (!cfg.ok) throw new Error(cfg.error.message)
  const node = await startNode(cfg.value)
  if (!node.ok) throw new Error(`the broker did not start: ${node.error.message}`)
  return node.value
}

// ---- part 1: N single sends vs one batch of N -----------------------------------------------

function messages(n: number, value: Uint8Array): Message[] {
  return Array.from({ length: n }, () => ({ topic: TIMED_TOPIC, partition: 0, value }))
}

async function singlePath(producer: Producer, msgs: readonly Message[]): Promise<number> {
  const t0 = performance.now()
  for (const m of msgs) await producer.send(m)
  return performance.now() - t0
}

async function batchPath(producer: Producer, msgs: readonly Message[]): Promise<number> {
  const t0 = performance.now()
  const { results } = await producer.sendBatch(msgs)
  const ms = performance.now() - t0
  const bad = results.find((r) => 'error' in r)
  if (bad && 'error' in bad) throw new Error(`sendBatch: ${bad.error.code}: ${bad.error.message}`)
  return ms
}

interface SizeResult {
  readonly n: number
  readonly runs: number
  readonly singleMs: number[]
  readonly batchMs: number[]
}

async function compare(producer: Producer): Promise<SizeResult[]> {
  const value = new Uint8Array(VALUE_BYTES).fill(0x61)
  // warm-up: both paths, so neither pays for JIT compilation or the first LevelDB writes
  for (let i = 0; i < 200; i++) await producer.send(messages(1, value)[0]!)
  for (let i = 0; i < 20; i++) await producer.sendBatch(messages(100, value))
  for (let i = 0; i < 3; i++) await producer.sendBatch(messages(1000, value))
  const results: SizeResult[] = []
  for (const { n } of PROMISED) {
    const runs = n >= 1000 ? Math.min(RUNS, 3) : RUNS
    const msgs = messages(n, value)
    const r: SizeResult = { n, runs, singleMs: [], batchMs: [] }
    for (let i = 0; i < runs; i++) {
      // alternate the order, so neither path always runs right after the other; the batch
      // path is cheap, so it runs BATCH_RUNS_PER_RUN times per single-path run and one
      // hiccup (a GC, a LevelDB flush, a neighbour on the machine) cannot move its median
      if (i % 2 === 0) r.singleMs.push(await singlePath(producer, msgs))
      for (let k = 0; k < BATCH_RUNS_PER_RUN; k++) r.batchMs.push(await batchPath(producer, msgs))
      if (i % 2 === 1) r.singleMs.push(await singlePath(producer, msgs))
    }
    results.push(r)
    out(style.dim(`  ${n} messages: ${runs} runs done`))
  }
  return results
}

function printComparison(results: readonly SizeResult[]): void {
  const rows = results.map((r) => {
    const promised = PROMISED.find((p) => p.n === r.n)!
    const single = median(r.singleMs)
    const batch = median(r.batchMs)
    const speedup = single / batch
    const met = speedup >= promised.speedup
    const range = (xs: number[]): string => style.dim(`${fmtMs(Math.min(...xs))}–${fmtMs(Math.max(...xs))}`)
    return [
      String(r.n),
      fmtMs(single),
      range(r.singleMs),
      fmtMs(batch),
      range(r.batchMs),
      style.bold(fmtX(speedup)),
      `${promised.speedup}x`,
      met ? style.green('yes') : style.red(`no (${((speedup / promised.speedup) * 100).toFixed(0)}%)`),
    ]
  })
  out(
    textTable(
      [
        { title: 'messages', align: 'right' },
        { title: 'single path (ms)', align: 'right' },
        { title: 'range', align: 'left' },
        { title: 'batch path (ms)', align: 'right' },
        { title: 'range', align: 'left' },
        { title: 'speedup', align: 'right' },
        { title: 'promised', align: 'right' },
        { title: 'met', align: 'left' },
      ],
      rows,
      2,
    ),
  )
  out()
  const last = results[results.length - 1]!
  const perSingle = median(results.map((r) => median(r.singleMs) / r.n))
  out(style.dim(`  medians of ${results.map((r) => r.singleMs.length).join('/')} runs of the single path, ${results.map((r) => r.batchMs.length).join('/')} of the batch path`))
  out(style.dim(`  a single send costs ~${fmtMs(perSingle)} ms (request + proposal + fsync + answer); in a batch of ${last.n}, a message costs ~${fmtMs((median(last.batchMs) / last.n) * 1000)} µs`))
  out(style.dim(`  the design promised ${PROMISED.map((p) => `${p.before} → ${p.after}`).join(', ')}`))
}

// ---- part 2: one batch, message by message ----------------------------------------------------

function resultText(r: { offset?: number; duplicate?: true; error?: { code: string } }): string {
  if (r.error) return style.red(r.error.code)
  if (r.duplicate) return `offset ${r.offset} ${style.yellow('duplicate')}`
  return style.green(`offset ${r.offset}`)
}

async function showcase(client: Client): Promise<void> {
  await client.admin().createTopic({ name: SHOWCASE_TOPIC, partitions: 1 })
  const admin = client.admin()
  const stored = (): Promise<number> => admin.listOffset(SHOWCASE_TOPIC, 0, 'latest')

  // (a) an idempotent batch, then the same bytes again
  const { producerId, producerEpoch } = await client.request('initProducerId', {})
  const orders = ['espresso', 'croissant', 'orange juice', 'bagel', 'flat white']
  const records = orders.map((o, i) => ({ key: `table-${(i % 3) + 1}`, value: `order: ${o}` }))
  const batch = encodeRecordBatch(records, { producerId, producerEpoch, baseSequence: 0 })
  const send = async (): Promise<readonly { offset?: number; duplicate?: true; error?: { code: string } }[]> => {
    const r = await client.request('produce', { timeoutMs: 10_000, partitions: [{ topic: SHOWCASE_TOPIC, partition: 0, batch }] })
    const p = r.partitions[0]!
    if (p.error) throw new Error(`produce: ${p.error.code}: ${p.error.message}`)
    return produceResults({ ...p, count: p.count ?? 0 })
  }
  const first = await send()
  const afterFirst = await stored()
  const again = await send()
  const afterAgain = await stored()
  out(style.bold(`  a) an idempotent batch of ${records.length}, then the same batch again`))
  out(style.dim(`     producer id ${producerId}, epoch ${producerEpoch}, sequences 0..${records.length - 1}; the resend is what a producer`))
  out(style.dim('     sends when a timeout or a lost connection hid the first answer'))
  out()
  out(
    textTable(
      [
        { title: '#', align: 'right' },
        { title: 'seq', align: 'right' },
        { title: 'key', align: 'left' },
        { title: 'value', align: 'left' },
        { title: 'first send', align: 'left' },
        { title: 'resend', align: 'left' },
      ],
      records.map((rec, i) => [String(i), String(i), rec.key, rec.value, resultText(first[i]!), resultText(again[i]!)]),
      5,
    ),
  )
  out()
  out(
    `     messages in the partition: ${afterFirst} after the first send, ${afterAgain} after the resend ` +
      (afterFirst === afterAgain ? style.green('(stored once)') : style.red('(stored twice!)')),
  )
  out()

  // (b) one record over the message limit, in a non-atomic and then an atomic batch
  const producer = client.producer()
  const tooBig = new Uint8Array(limits.produce.messageBytesMax + 1)
  const mixed: Message[] = [
    { topic: SHOWCASE_TOPIC, partition: 0, key: 'table-2', value: 'order: cappuccino' },
    { topic: SHOWCASE_TOPIC, partition: 0, key: 'table-3', value: tooBig },
    { topic: SHOWCASE_TOPIC, partition: 0, key: 'table-1', value: 'order: muffin' },
    { topic: SHOWCASE_TOPIC, partition: 0, key: 'table-2', value: 'order: latte' },
  ]
  const before = await stored()
  const loose = await producer.sendBatch(mixed)
  const afterLoose = await stored()
  const atomic = await producer.sendBatch(mixed, { atomic: true })
  const afterAtomic = await stored()
  const size = (m: Message): string => {
    const n = typeof m.value === 'string' ? enc.encode(m.value).byteLength : (m.value?.byteLength ?? 0)
    return n > limits.produce.messageBytesMax ? `${fmtBytes(limits.produce.messageBytesMax)} + ${n - limits.produce.messageBytesMax} B` : fmtBytes(n)
  }
  const shown = (m: Message): string => (typeof m.value === 'string' ? m.value : '(zeros)')
  const text = (r: BatchItemResult): string => resultText(r)
  out(style.bold(`  b) a batch of ${mixed.length} with one message over the ${fmtBytes(limits.produce.messageBytesMax)} limit`))
  out()
  out(
    textTable(
      [
        { title: '#', align: 'right' },
        { title: 'value', align: 'left' },
        { title: 'size', align: 'right' },
        { title: 'sendBatch(batch)', align: 'left' },
        { title: 'sendBatch(batch, { atomic: true })', align: 'left' },
      ],
      mixed.map((m, i) => [String(i), shown(m), size(m), text(loose.results[i]!), text(atomic.results[i]!)]),
      5,
    ),
  )
  out()
  out(`     messages in the partition: ${before} before, ${afterLoose} after the plain batch ${style.dim(`(+${afterLoose - before}: the good ones, stored by one proposal)`)},`)
  out(`     ${afterAtomic} after the atomic one ${style.dim(`(+${afterAtomic - afterLoose}: all or nothing)`)}`)
  const tooLarge = loose.results.find((r) => 'error' in r)
  if (tooLarge && 'error' in tooLarge) out(style.dim(`     MESSAGE_TOO_LARGE says: "${tooLarge.error.message}"`))
  out()

  // (c) what a consumer reads back
  const page = await client.consumer().fetch({ topic: SHOWCASE_TOPIC, partition: 0, offset: 0 })
  out(style.bold('  c) what a consumer reads back from offset 0'))
  out()
  out(
    textTable(
      [
        { title: 'offset', align: 'right' },
        { title: 'key', align: 'left' },
        { title: 'value', align: 'left' },
      ],
      page.messages.map((m) => [String(m.offset), m.key ? dec.decode(m.key) : '', m.value ? dec.decode(m.value) : '']),
      5,
    ),
  )
}

// ---- main -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = performance.now()
  const dataDir = await mkdtemp(join(tmpdir(), 'raftmq-demo-'))
  let node: RunningNode | null = null
  let client: Client | null = null
  // Ctrl-C: stop the broker and remove the folder, then leave
  const interrupted = (): void => {
    void (async () => {
      await client?.close()
      await node?.stop()
      await rm(dataDir, { recursive: true, force: true })
      process.exit(130)
    })()
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    node = await startBroker(dataDir)
    client = new Client({ brokers: [`127.0.0.1:${node.address.port}`] })
    await client.admin().createTopic({ name: TIMED_TOPIC, partitions: 1 })
    out(style.bold('raftmq batch demo'))
    out(style.dim(`  embedded broker on 127.0.0.1:${node.address.port}, data in ${dataDir} (removed at the end), 2 worker threads`))
    out(style.dim(`  every acknowledgement waits until the broker has synced the messages to disk, on both paths`))
    out()
    out(style.bold(`1. N single sends against one batch of N (${fmtBytes(VALUE_BYTES)} messages, topic "${TIMED_TOPIC}", one partition)`))
    out(style.dim('   single path: N sequential send() calls = N requests, N Raft proposals, N disk syncs, N round trips'))
    out(style.dim('   batch path:  one sendBatch() of N      = 1 request,  1 proposal,       1 disk sync,  1 round trip'))
    out()
    const results = await compare(client.producer())
    out()
    printComparison(results)
    out()
    out(style.bold('2. One batch, message by message'))
    out()
    await showcase(client)
  } finally {
    await client?.close()
    await node?.stop()
    await rm(dataDir, { recursive: true, force: true })
    process.off('SIGINT', interrupted)
    process.off('SIGTERM', interrupted)
  }
  out()
  out(style.dim(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${dataDir} removed`))
}

await main()
