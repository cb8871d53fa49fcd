/**
 * bench/batch-stages.ts — what each stage of one produce batch costs in CPU, stage by
 * stage, on one thread (`npx tsx bench/batch-stages.ts`).
 *
 * The produce path of a batch of N messages crosses three threads: the client encodes
 * it and frames the request; the broker's main thread parses and validates the request
 * and posts the batch to the worker that hosts the partition; the worker checks the
 * batch, proposes it, writes it to LevelDB with one synced write, applies it and posts
 * one result per message back; the main thread frames the response; the client parses
 * and validates it and builds one result object per message. This bench runs each of
 * those stages' functions (the repository's own: encodeRecordBatch, encodeMessageFrame,
 * parseRequest, packPost/unpackPost, checkBatch, recordSizes, encodeProduce,
 * PartitionStateMachine.apply, parseResponse, ...) in a loop on real data and reports
 * the median time per batch and per message. Thread hand-offs, syscalls, the Raft core
 * and the event loop are not in it; the synced LevelDB write of the entry is measured
 * on its own (raw classic-level, one chained batch, `sync: true`), for scale.
 *
 * By default src/ is compiled by tsc into a temporary folder and the compiled modules
 * are measured (as `npm start` runs them); with --tsx, the modules as tsx loads them
 * (as the broker runs from source). The difference is esbuild's output, notably its
 * `__name` helper, called wherever a named function is created.
 *
 * Run:
 *   npx tsx bench/batch-stages.ts
 *   npx tsx bench/batch-stages.ts --messages 1000 --bytes 100 --tsx
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ClassicLevel } from 'classic-level'
import { importCode } from './lib/broker-process.js'
import { describeEnvironment, environment, fmtInt, fmtPct, median, style, textTable } from './lib/report.js'

type RecordBatchModule = typeof import('../src/protocol/record-batch.js')
type CodecModule = typeof import('../src/protocol/codec.js')
type ApiModule = typeof import('../src/protocol/api.js')
type WorkerMessagesModule = typeof import('../src/replica/worker-messages.js')
type CommandsModule = typeof import('../src/partition/commands.js')
type PartitionModule = typeof import('../src/partition/index.js')

const HELP = `Usage: npx tsx bench/batch-stages.ts [options]

CPU cost of each stage of one produce batch, measured stage by stage on one thread.

Options:
  --messages N   messages in the batch (default 1000)
  --bytes B      value bytes per message (default 100)
  --runs N       timed rounds; each round times every stage (default 7)
  --tsx          measure src/ as tsx loads it (default: compiled by tsc)
  -h, --help     show this help
`

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000' },
    bytes: { type: 'string', default: '100' },
    runs: { type: 'string', default: '7' },
    tsx: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
})
if (args.help) {
  process.stdout.write(HELP)
  process.exit(0)
}
const N = Number(args.messages)
const BYTES = Number(args.bytes)
const RUNS = Number(args.runs)

async function load(): Promise<{ rb: RecordBatchModule; codec: CodecModule; api: ApiModule; wm: WorkerMessagesModule; commands: CommandsModule; partition: PartitionModule }> {
  const kind = args.tsx ? 'tsx' : 'compiled'
  const get = <T>(path: string): Promise<T> => importCode<T>(kind, `src/${path}`)
  return {
    rb: await get<RecordBatchModule>('protocol/record-batch'),
    codec: await get<CodecModule>('protocol/codec'),
    api: await get<ApiModule>('protocol/api'),
    wm: await get<WorkerMessagesModule>('replica/worker-messages'),
    commands: await get<CommandsModule>('partition/commands'),
    partition: await get<PartitionModule>('partition/index'),
  }
}

interface Stage {
  readonly thread: 'client' | 'main' | 'worker'
  readonly name: string
  readonly run: () => unknown
}

async function main(): Promise<void> {
  const { rb, codec, api, wm, commands, partition } = await load()
  const value = new Uint8Array(BYTES)
  for (let i = 0; i < BYTES; i++) value[i] = (i * 2654435761) >>> 24
  const messages = Array.from({ length: N }, () => ({ topic: 'bench', partition: 0, value }))
  // what Producer.sendBatch does per message before encoding (recordOf)
  const recordOf = (m: { value: Uint8Array }): { value: Uint8Array; key: null; headers: undefined; timestamp: number } => ({ key: null, value: m.value, headers: undefined, timestamp: Date.now() })
  const records = messages.map(recordOf)
  const batch = rb.encodeRecordBatch(records, {})
  const request = { id: 7, api: 'produce', version: 1, body: { timeoutMs: 30_000, atomic: false, partitions: [{ topic: 'bench', partition: 0, batch }] } }
  const framed = codec.encodeMessageFrame(request)
  if (!framed.ok) throw new Error(framed.error.message)
  const requestBody = framed.value.slice(4)
  const cmd = commands.encodeProduce({ atomic: false }, batch)
  const sm = new partition.PartitionStateMachine()
  let raftIndex = 1
  const summary = { count: N, baseOffset: 0 }
  const response = api.okResponse(7, 'produce', { partitions: [{ topic: 'bench', partition: 0, ...summary }] })
  const responseFrame = codec.encodeMessageFrame(response)
  if (!responseFrame.ok) throw new Error(responseFrame.error.message)
  const responseBody = responseFrame.value.slice(4)
  const parsedResponse = api.parseResponse(responseBody, () => 'produce')
  if (!parsedResponse.ok) throw new Error(parsedResponse.error.message)

  const stages: Stage[] = [
    { thread: 'client', name: 'Producer: a record per message (recordOf)', run: () => messages.map(recordOf) },
    { thread: 'client', name: 'encodeRecordBatch', run: () => rb.encodeRecordBatch(records, { producerId: -1, producerEpoch: -1, baseSequence: -1 }) },
    { thread: 'client', name: 'encodeMessageFrame(produce request)', run: () => codec.encodeMessageFrame(request) },
    { thread: 'main', name: 'parseRequest (decode + validate)', run: () => api.parseRequest(requestBody) },
    { thread: 'main', name: 'packPost(produce request)', run: () => wm.packPost([{ t: 'produce', rid: 1, gid: 1, atomic: false, batch }]) },
    { thread: 'worker', name: 'unpackPost(produce request)', run: () => wm.unpackPost(wm.packPost([{ t: 'produce', rid: 1, gid: 1, atomic: false, batch }])) },
    { thread: 'worker', name: 'checkBatch (header + CRC-32C)', run: () => rb.checkBatch(batch) },
    { thread: 'worker', name: 'recordSizes (walk every record)', run: () => rb.recordSizes(batch, { verifyCrc: false }) },
    { thread: 'worker', name: 'encodeProduce (the entry: one copy)', run: () => commands.encodeProduce({ atomic: false }, batch) },
    {
      thread: 'worker',
      name: 'state machine apply (the summary: base offset + count)',
      run: () => {
        const r = sm.apply(raftIndex++, cmd)
        return r.kind === 'produce' && r.ok ? { count: r.count, baseOffset: r.baseOffset } : null
      },
    },
    { thread: 'worker', name: 'packPost(reply: the summary)', run: () => wm.packPost([{ rid: 1, ok: true, t: 'produce', summary }]) },
    { thread: 'main', name: 'unpackPost(reply)', run: () => wm.unpackPost(wm.packPost([{ rid: 1, ok: true, t: 'produce', summary }])) },
    { thread: 'main', name: 'encodeMessageFrame(response: the summary)', run: () => codec.encodeMessageFrame(response) },
    { thread: 'client', name: 'parseResponse (decode + validate)', run: () => api.parseResponse(responseBody, () => 'produce') },
    {
      thread: 'client',
      name: 'a BatchItemResult per message',
      run: () => {
        const body = parsedResponse.value as unknown as { body: { partitions: import('../src/protocol/api.js').ProduceSummary[] } }
        return api.produceResults(body.body.partitions[0]!).map((r) => ({ topic: 'bench', partition: 0, ...r }))
      },
    },
  ]
  // stages that include another stage's work measure the difference
  const subtract: Record<string, string> = {
    'unpackPost(produce request)': 'packPost(produce request)',
    'unpackPost(reply)': 'packPost(reply: the summary)',
  }

  const iterations = Math.max(20, Math.round(200_000 / N))
  const times = new Map<string, number[]>(stages.map((s) => [s.name, []]))
  for (let round = 0; round <= RUNS; round++) {
    for (const s of stages) {
      const t0 = performance.now()
      for (let i = 0; i < iterations; i++) s.run()
      const us = ((performance.now() - t0) / iterations) * 1000
      if (round > 0) times.get(s.name)!.push(us) // round 0 warms up
    }
  }
  const us = (name: string): number => median(times.get(name)!)
  const cost = (s: Stage): number => Math.max(0, us(s.name) - (subtract[s.name] ? us(subtract[s.name]!) : 0))
  const total = stages.reduce((sum, s) => sum + cost(s), 0)

  // the synced write of the entry, for scale
  const dir = await mkdtemp(join(tmpdir(), 'raftmq-stages-'))
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  const syncs: number[] = []
  const key = new Uint8Array(9)
  const hardState = new Uint8Array(24)
  for (let i = 0; i < 60; i++) {
    new DataView(key.buffer).setUint32(5, i)
    const t0 = performance.now()
    await db.batch().put(key, cmd).put(new Uint8Array([0]), hardState).write({ sync: true })
    if (i >= 10) syncs.push((performance.now() - t0) * 1000)
  }
  await db.close()
  await rm(dir, { recursive: true, force: true })
  const syncUs = median(syncs)

  console.log(style.bold('raftmq batch stages') + style.dim(` — one batch of ${fmtInt(N)} x ${BYTES} B (${fmtInt(batch.byteLength)} bytes), ${args.tsx ? 'loaded by tsx' : 'compiled by tsc'}`))
  console.log(style.dim(`  ${describeEnvironment(environment())}; median of ${RUNS} rounds of ${iterations} iterations per stage`))
  console.log()
  const rows = stages.map((s) => [s.thread, s.name, cost(s).toFixed(1), fmtInt((cost(s) / N) * 1000), fmtPct(cost(s) / total)])
  rows.push(['', style.bold('CPU of the stages above'), style.bold(total.toFixed(1)), style.bold(fmtInt((total / N) * 1000)), '100%'])
  for (const thread of ['client', 'main', 'worker'] as const) {
    const t = stages.filter((s) => s.thread === thread).reduce((sum, s) => sum + cost(s), 0)
    rows.push(['', style.dim(`  of which on the ${thread === 'main' ? "broker's main thread" : thread === 'worker' ? 'worker' : 'client'}`), style.dim(t.toFixed(1)), style.dim(fmtInt((t / N) * 1000)), style.dim(fmtPct(t / total))])
  }
  rows.push(['worker', 'for scale: the entry as one synced LevelDB write', syncUs.toFixed(1), fmtInt((syncUs / N) * 1000), ''])
  console.log(
    textTable(
      [
        { title: 'thread', align: 'left' },
        { title: 'stage', align: 'left' },
        { title: 'µs/batch', align: 'right' },
        { title: 'ns/msg', align: 'right' },
        { title: 'share', align: 'right' },
      ],
      rows,
      2,
    ),
  )
}

await main()
