/**
 * bench/send-latency.ts — where the time of one sequential send goes
 * (`npx tsx bench/send-latency.ts`).
 *
 * A single `send()` is latency-bound: one message, one request, one Raft proposal, one
 * disk sync, one round trip, then the next. This bench peels the path apart by timing
 * requests that go progressively deeper into one broker (a child process; raftmq's code
 * compiled by tsc by default, --code tsx for source), one at a time, p50 and p99 of each:
 *
 *   fdatasync             the disk floor: append 100 bytes to a file and fdatasync it
 *                         (this process, synchronously)
 *   LevelDB synced put    the storage floor: one classic-level chained batch of ~200 bytes
 *                         with `sync: true` (this process; LevelDB writes on libuv's pool)
 *   metadata              client -> broker main thread -> client: TCP, framing, a handler
 *   listOffsets           + a round trip main thread -> partition worker -> main thread
 *   produce (request)     + Raft propose, the synced write, apply: a one-record batch sent
 *                         with client.request('produce'), as Producer.send would
 *   Producer.send         + the producer's queue (a microtask) and result mapping
 *
 * Each step's p50 minus the previous one's is what that step adds. The goal for
 * sequential single sends (>= 2,800/s, p50 <= 0.35 ms) is printed against the last row.
 *
 * Run:
 *   npx tsx bench/send-latency.ts
 *   npx tsx bench/send-latency.ts --count 5000 --code tsx
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ClassicLevel } from 'classic-level'
import { codeKind, compiledBroker, importCode, spawnBroker } from './lib/broker-process.js'
import { describeEnvironment, environment, fmtInt, fmtMs, percentile, style, textTable, waitForQuiet } from './lib/report.js'

const HELP = `Usage: npx tsx bench/send-latency.ts [options]

Latency of one sequential send, peeled apart: fdatasync, a synced LevelDB write, and
requests that go progressively deeper into one broker.

Options:
  --count N      timed operations per step (default 2000, after 200 of warm-up)
  --bytes B      value bytes of the message (default 100)
  --code KIND    how raftmq's code runs, broker and client: compiled (default) or tsx
  --workers N    the broker's worker threads (default: its default, the CPU count;
                 0 hosts the partition groups on the broker's main thread)
  -h, --help     show this help
`

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '2000' },
    bytes: { type: 'string', default: '100' },
    code: { type: 'string', default: 'compiled' },
    workers: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
})
if (args.help) {
  process.stdout.write(HELP)
  process.exit(0)
}
const COUNT = Number(args.count)
const BYTES = Number(args.bytes)
const WARMUP = 200

interface Step {
  readonly name: string
  readonly what: string
  readonly p50Ms: number
  readonly p99Ms: number
}

async function timeIt(name: string, what: string, op: () => Promise<unknown> | unknown): Promise<Step> {
  for (let i = 0; i < WARMUP; i++) await op()
  const xs = new Float64Array(COUNT)
  for (let i = 0; i < COUNT; i++) {
    const t0 = performance.now()
    await op()
    xs[i] = performance.now() - t0
  }
  xs.sort()
  return { name, what, p50Ms: percentile(xs, 50), p99Ms: percentile(xs, 99) }
}

async function main(): Promise<void> {
  const kind = codeKind(args.code)
  const { Client } = await importCode<typeof import('../src/client/index.js')>(kind, 'src/client/index')
  const { encodeRecordBatch } = await importCode<typeof import('../src/protocol/record-batch.js')>(kind, 'src/protocol/record-batch')
  const value = new Uint8Array(BYTES).fill(0x61)
  const steps: Step[] = []
  await waitForQuiet(0.5, 20_000, (c) => console.log(style.yellow(`  (waiting: other processes use ${c.toFixed(1)} cores)`)))

  const dir = await mkdtemp(join(tmpdir(), 'raftmq-latency-'))
  try {
    const fd = openSync(join(dir, 'log'), 'a')
    steps.push(await timeIt('fdatasync', 'append 100 B to a file + fdatasync (sync, this thread)', () => {
      writeSync(fd, value)
      fdatasyncSync(fd)
    }))
    closeSync(fd)
    const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' })
    await db.open()
    const key = new Uint8Array(9)
    const entry = new Uint8Array(200)
    const hardState = new Uint8Array(24)
    let k = 0
    steps.push(await timeIt('LevelDB synced put', 'entry + hard state, one chained batch, sync: true', () => {
      new DataView(key.buffer).setUint32(5, k++)
      return db.batch().put(key, entry).put(new Uint8Array([0]), hardState).write({ sync: true })
    }))
    await db.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }

  const compiledMain = kind === 'compiled' ? (await compiledBroker()).main : undefined
  const broker = await spawnBroker({ compiledMain, ...(args.workers !== undefined ? { workers: Number(args.workers) } : {}) })
  const client = new Client({ brokers: [broker.address] })
  try {
    await client.admin().createTopic({ name: 'latency', partitions: 1 })
    steps.push(await timeIt('metadata', 'client -> broker main thread -> client', () => client.request('metadata', { topics: ['latency'] })))
    steps.push(await timeIt('listOffsets', '+ main thread -> partition worker -> main thread', () => client.request('listOffsets', { partitions: [{ topic: 'latency', partition: 0, spec: 'latest' }] })))
    steps.push(await timeIt('produce (request)', '+ propose, synced write, apply (a one-record batch)', async () => {
      const batch = encodeRecordBatch([{ value, timestamp: Date.now() }])
      const r = await client.request('produce', { timeoutMs: 30_000, partitions: [{ topic: 'latency', partition: 0, batch }] })
      if (r.partitions[0]!.error) throw new Error(r.partitions[0]!.error.message)
    }))
    const producer = client.producer()
    steps.push(await timeIt('Producer.send', "+ the producer's queue and result", () => producer.send({ topic: 'latency', partition: 0, value })))
  } finally {
    await client.close()
    await broker.stop()
  }

  console.log(style.bold('raftmq send latency') + style.dim(` — ${fmtInt(COUNT)} sequential operations per step, raftmq's code ${kind === 'compiled' ? 'compiled by tsc' : 'from source under tsx'}`))
  console.log(style.dim(`  ${describeEnvironment(environment())}`))
  console.log()
  const rows = steps.map((s, i) => {
    const prev = i >= 3 ? steps[i - 1] : undefined
    const added = prev ? s.p50Ms - prev.p50Ms : 0
    return [s.name, s.what, fmtMs(s.p50Ms), fmtMs(s.p99Ms), prev ? `${added < 0 ? '-' : '+'}${fmtMs(Math.abs(added))}` : '', fmtInt(1000 / s.p50Ms)]
  })
  console.log(
    textTable(
      [
        { title: 'step', align: 'left' },
        { title: 'what it adds', align: 'left' },
        { title: 'p50 ms', align: 'right' },
        { title: 'p99 ms', align: 'right' },
        { title: 'p50 added', align: 'right' },
        { title: '1/p50 per s', align: 'right' },
      ],
      rows,
      2,
    ),
  )
  const send = steps[steps.length - 1]!
  const met = send.p50Ms <= 0.35 && 1000 / send.p50Ms >= 2800
  console.log()
  console.log(
    `  goal: sequential single sends >= 2,800/s with p50 <= 0.35 ms: ${met ? style.green('PASS') : style.red('FAIL')} ` +
      style.dim(`(p50 ${fmtMs(send.p50Ms)} ms; the disk alone takes ${fmtMs(steps[0]!.p50Ms)} ms and a bare round trip ${fmtMs(steps[2]!.p50Ms)} ms)`),
  )
}

await main()
