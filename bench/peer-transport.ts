/**
 * bench/peer-transport.ts — when should PeerTransport flush a turn's sends: in a
 * microtask (the end of the current callback) or in setImmediate (the end of the loop
 * iteration)? (`npx tsx bench/peer-transport.ts`, ~25 s.)
 *
 * Node 1 runs here; node 2 runs in a child process (`--echo`) and answers every frame it
 * receives with one frame of the same size back, as a Raft follower answers each
 * AppendEntries. Both use the same flush mode. Two workloads per mode:
 *
 *   rtt      one 100-byte message, its answer, the next: p50 / p99 round trip.
 *   fan-in   the shape of the main thread: K message ports (standing in for K group
 *            workers) each deliver, per loop iteration, a batch of B frames bound for
 *            node 2, as separate callbacks; a window of frames in flight keeps it closed
 *            loop. Frames answered per second, socket writes per second on both nodes,
 *            and the answer latency p50 / p99.
 *
 * The microtask flush writes once per callback that sent, the setImmediate flush once
 * per loop iteration: under fan-in the difference is the number of writes (syscalls);
 * for a lone round trip it is one more loop phase of latency.
 *
 * Run:
 *   npx tsx bench/peer-transport.ts
 *   npx tsx bench/peer-transport.ts --seconds 3 --ports 8 --batch 20
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { MessageChannel } from 'node:worker_threads'
import { PeerTransport } from '../src/broker/peer/index.js'
import type { PeerLog } from '../src/broker/peer/index.js'

type Mode = 'microtask' | 'immediate'
const quiet: PeerLog = { info() {}, warn() {}, error() {}, debug() {} }
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}

if (process.argv.includes('--echo')) {
  // node 2: answer every frame with a frame of the same size (its first 8 bytes kept: the send time)
  const mode = process.argv[process.argv.indexOf('--echo') + 1] as Mode
  let t: PeerTransport
  const r = await PeerTransport.start({
    nodeId: 2,
    clusterId: 'bench',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([[1, { host: '127.0.0.1', port: 1 }]]),
    log: quiet,
    flushOn: mode,
    onMessage: (from, channel, payload) => void t.send(from, channel, payload),
  })
  if (!r.ok) throw new Error(r.error.message)
  t = r.value
  console.log(`port ${t.address.port}`)
  process.stdin.on('data', () => console.log(`writes ${t.stats().writes}`))
  process.stdin.on('end', () => void t.close().then(() => process.exit(0)))
} else {
  const seconds = arg('seconds', 3)
  const ports = arg('ports', 8)
  const batch = arg('batch', 20)
  const rows: string[] = []
  for (const mode of ['microtask', 'immediate'] as const) rows.push(...(await run(mode, seconds, ports, batch)))
  console.log(`\n${process.version}, ${ports} ports x ${batch} frames of 100 B per iteration, ${seconds} s per workload\n`)
  console.log('| mode | workload | answered/s | writes/s node 1 | writes/s node 2 | p50 µs | p99 µs |')
  console.log('| :-- | :-- | --: | --: | --: | --: | --: |')
  for (const r of rows) console.log(r)
}

async function run(mode: Mode, seconds: number, ports: number, batch: number): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, '--echo', mode], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const next = async (): Promise<string> => (await lines.next()).value as string
  const port = Number((await next()).split(' ')[1])
  const childWrites = async (): Promise<number> => {
    child.stdin!.write('\n')
    return Number((await next()).split(' ')[1])
  }

  let onAnswer: (sentAt: number) => void = () => {}
  const r = await PeerTransport.start({
    nodeId: 1,
    clusterId: 'bench',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([[2, { host: '127.0.0.1', port }]]),
    log: quiet,
    flushOn: mode,
    onMessage: (_from, _channel, payload) => onAnswer(Buffer.from(payload.buffer, payload.byteOffset, 8).readDoubleLE(0)),
  })
  if (!r.ok) throw new Error(r.error.message)
  const t = r.value
  while (!t.isUp(2)) await new Promise((res) => setTimeout(res, 5))
  const payload = Buffer.alloc(100)
  const send = (): boolean => {
    payload.writeDoubleLE(performance.now(), 0)
    return t.send(2, 1, payload)
  }
  const out: string[] = []

  // rtt: sequential round trips
  {
    const lat: number[] = []
    let w1 = t.stats().writes
    let w2 = await childWrites()
    const started = performance.now()
    await new Promise<void>((done) => {
      onAnswer = (at) => {
        lat.push(performance.now() - at)
        if (performance.now() - started < seconds * 1000) send()
        else done()
      }
      send()
    })
    const wall = (performance.now() - started) / 1000
    w1 = t.stats().writes - w1
    w2 = (await childWrites()) - w2
    out.push(row(mode, 'rtt', lat.length / wall, w1 / wall, w2 / wall, lat))
  }

  // fan-in: K ports deliver a batch each per iteration, within a window of frames in flight
  {
    const window = 20_000
    const lat: number[] = []
    let inflight = 0
    let answered = 0
    onAnswer = (at) => {
      inflight--
      answered++
      if ((answered & 15) === 0) lat.push(performance.now() - at)
    }
    const channels = Array.from({ length: ports }, () => new MessageChannel())
    for (const c of channels) {
      c.port2.on('message', () => {
        for (let i = 0; i < batch; i++) if (send()) inflight++
      })
    }
    let w1 = t.stats().writes
    let w2 = await childWrites()
    const started = performance.now()
    let running = true
    const drive = (): void => {
      if (!running) return
      if (inflight + ports * batch <= window) for (const c of channels) c.port1.postMessage(0)
      setImmediate(drive)
    }
    drive()
    await new Promise((res) => setTimeout(res, seconds * 1000))
    running = false
    const wall = (performance.now() - started) / 1000
    const done = answered
    w1 = t.stats().writes - w1
    w2 = (await childWrites()) - w2
    for (const c of channels) c.port1.close()
    out.push(row(mode, 'fan-in', done / wall, w1 / wall, w2 / wall, lat))
  }

  await t.close()
  child.stdin!.end()
  await new Promise((res) => child.once('exit', res))
  return out
}

function row(mode: Mode, workload: string, perSecond: number, w1: number, w2: number, lat: number[]): string {
  lat.sort((a, b) => a - b)
  const q = (p: number): string => Math.round((lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0) * 1000).toLocaleString('en')
  const n = (v: number): string => Math.round(v).toLocaleString('en')
  return `| ${mode} | ${workload} | ${n(perSecond)} | ${n(w1)} | ${n(w2)} | ${q(0.5)} | ${q(0.99)} |`
}
