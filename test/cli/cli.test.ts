/**
 * The `raftmq` command end to end: a node runs in this process on port 0 in a temporary
 * directory, and every command runs as a child process (`node --import tsx
 * src/cli/main.ts ...`) against it, so exit codes, stdout and stderr are the real ones.
 * Children are spawned asynchronously: the node answers them from this event loop.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../src/client/index.js'
import { resolveConfig } from '../../src/broker/config.js'
import { startNode } from '../../src/broker/node.js'
import type { RunningNode } from '../../src/broker/node.js'
import { freePort } from '../process/broker-process.js'

const root = join(import.meta.dirname, '..', '..')
let dir: string
let node: RunningNode
let brokers: string
let client: Client

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'raftmq-cli-'))
  const cfg = resolveConfig({ dataDir: join(dir, 'data'), listen: '127.0.0.1:0', workers: '2', logLevel: 'warn', tickMs: '20' })
  if (!cfg.ok) throw new Error(cfg.error.message)
  const n = await startNode(cfg.value)
  if (!n.ok) throw new Error(n.error.message)
  node = n.value
  brokers = `127.0.0.1:${node.address.port}`
  client = new Client({ brokers: [brokers] })
})

afterAll(async () => {
  await client?.close()
  await node?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

interface Child {
  readonly done: Promise<Run>
  readonly stdout: () => string
  readonly kill: (signal: NodeJS.Signals) => void
}

/** Starts `raftmq args...` with RAFTMQ_BROKERS pointing at the test node. */
function start(args: string[], input = '', keepStdinOpen = false): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, RAFTMQ_BROKERS: brokers, NO_COLOR: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  if (keepStdinOpen) child.stdin.write(input)
  else child.stdin.end(input)
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { done, stdout: () => stdout, kill: (signal) => child.kill(signal) }
}

function raftmq(args: string[], input = ''): Promise<Run> {
  return start(args, input).done
}

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

interface JsonMessage {
  readonly partition: number
  readonly offset: number
  readonly timestamp: number
  readonly key: string | null
  readonly value: string | null
  readonly headers: Record<string, unknown>
}

function jsonLines(stdout: string): JsonMessage[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as JsonMessage)
}

describe('cli - topic', () => {
  it('creates, lists, describes and deletes a topic, with exit code 1 and the error code on failure', async () => {
    const created = await raftmq(['topic', 'create', 'orders', '--partitions', '3', '--retention-ms', '60000', '--brokers', brokers])
    expect(created).toMatchObject({ code: 0, stderr: '' })
    expect(created.stdout).toBe('created topic orders with 3 partitions (replication factor 1)\n')

    await client.producer().sendBatch(['a', 'b', 'c', 'd'].map((value) => ({ topic: 'orders', partition: 1, value })))
    const [again, list, described] = await Promise.all([
      raftmq(['topic', 'create', 'orders', '-p', '3']),
      raftmq(['topic', 'list']),
      raftmq(['topic', 'describe', 'orders']),
    ])
    expect(again.code).toBe(1)
    expect(again.stderr).toBe('raftmq: TOPIC_EXISTS: topic orders already exists\n')
    expect(list.code).toBe(0)
    expect(list.stdout).toMatch(/^TOPIC\s+PARTITIONS$/m)
    expect(list.stdout).toMatch(/^orders\s+3$/m)
    expect(described.code).toBe(0)
    expect(described.stdout).toMatch(/^retention\s+1 min \(60000 ms\), no size limit$/m)
    const lines = described.stdout.split('\n')
    const header = lines.findIndex((l) => /^PARTITION\s+LEADER\s+LOG START\s+HIGH WATERMARK\s+MESSAGES$/.test(l))
    expect(header).toBeGreaterThan(0)
    expect(lines.slice(header + 1, header + 4).map((l) => l.split(/\s{2,}/))).toEqual([
      ['0', '1', '0', '0', '0'],
      ['1', '1', '0', '4', '4'],
      ['2', '1', '0', '0', '0'],
    ])

    expect(await raftmq(['topic', 'delete', 'orders'])).toMatchObject({ code: 0, stdout: 'deleted topic orders\n' })
    const [gone, deleteAgain, listAgain] = await Promise.all([raftmq(['topic', 'describe', 'orders']), raftmq(['topic', 'delete', 'orders']), raftmq(['topic', 'list'])])
    expect(gone.code).toBe(1)
    expect(gone.stderr).toBe('raftmq: UNKNOWN_TOPIC: topic orders does not exist\n')
    expect(deleteAgain).toMatchObject({ code: 1, stderr: 'raftmq: UNKNOWN_TOPIC: topic orders does not exist\n' })
    expect(listAgain.stdout).not.toMatch(/^orders/m)
  })
})

describe('cli - produce and consume', () => {
  it('produces a file with keys and reads it back as json, kv and values', async () => {
    await client.admin().createTopic({ name: 'lines', partitions: 2 })
    const sent = Array.from({ length: 500 }, (_, i) => ({ key: `k${i % 7}`, value: i === 3 ? 'größe ✓ "quoted"' : i === 4 ? '' : `value ${i}` }))
    const file = join(dir, 'lines.txt')
    await writeFile(file, sent.map((m) => `${m.key}\t${m.value}\n`).join(''))

    const produced = await raftmq(['produce', 'lines', '--file', file, '-K', '\\t', '--batch-size', '64', '--compression', 'lz4'])
    expect(produced.stderr).toBe('')
    expect(produced.code).toBe(0)
    expect(produced.stdout).toMatch(/^produced 500 messages \([\d.]+ kB\) to lines in [\d.]+ s, [\d,]+ msgs\/s\n$/)

    const [consumed, kv, values] = await Promise.all([
      raftmq(['consume', 'lines', '--format', 'json']),
      raftmq(['consume', 'lines', '--partition', '0', '--from', '2', '--count', '3', '--format', 'kv']),
      raftmq(['consume', 'lines', '-p', '0', '-c', '2']),
    ])
    expect(consumed).toMatchObject({ code: 0, stderr: '' })
    const got = jsonLines(consumed.stdout)
    expect(got.length).toBe(500)
    for (const m of got) expect(m).toMatchObject({ topic: 'lines', headers: {}, timestamp: expect.any(Number) })
    // every key lands on one partition, in input order
    for (let k = 0; k < 7; k++) {
      const want = sent.filter((m) => m.key === `k${k}`).map((m) => m.value)
      const mine = got.filter((m) => m.key === `k${k}`)
      expect(new Set(mine.map((m) => m.partition)).size).toBe(1)
      expect(mine.map((m) => m.value)).toEqual(want)
    }
    // offsets are dense per partition, the partitions one after another
    for (const p of [0, 1]) {
      const offsets = got.filter((m) => m.partition === p).map((m) => m.offset)
      expect(offsets).toEqual(offsets.map((_, i) => i))
    }

    const p0 = got.filter((m) => m.partition === 0)
    expect(kv.stdout).toBe(p0.slice(2, 5).map((m) => `${m.key}\t${m.value}\n`).join(''))
    expect(values.stdout).toBe(p0.slice(0, 2).map((m) => `${m.value}\n`).join(''))
  })

  it('consumes nothing from latest on an empty topic, and nothing past the end', async () => {
    await client.admin().createTopic({ name: 'empty', partitions: 2 })
    const [latest, earliest] = await Promise.all([raftmq(['consume', 'empty', '--from', 'latest']), raftmq(['consume', 'empty'])])
    expect(latest).toMatchObject({ code: 0, stdout: '', stderr: '' })
    expect(earliest).toMatchObject({ code: 0, stdout: '', stderr: '' })
    const produced = await raftmq(['produce', 'empty', '--partition', '1'], 'one\ntwo\n')
    expect(produced).toMatchObject({ code: 0, stderr: '' })
    const [latestNow, earliestNow] = await Promise.all([raftmq(['consume', 'empty', '--from', 'latest']), raftmq(['consume', 'empty'])])
    expect(latestNow).toMatchObject({ code: 0, stdout: '' })
    expect(earliestNow).toMatchObject({ code: 0, stdout: 'one\ntwo\n' })
  })

  it('follows new messages until SIGINT, then exits 0', async () => {
    await client.admin().createTopic({ name: 'live', partitions: 1 })
    await client.producer().sendBatch([{ topic: 'live', value: 'old 1' }, { topic: 'live', value: 'old 2' }])
    const follower = start(['consume', 'live', '--follow'])
    await until('the old messages', () => follower.stdout() === 'old 1\nold 2\n')
    await client.producer().send({ topic: 'live', value: 'new' })
    await until('the new message', () => follower.stdout().endsWith('new\n'))
    follower.kill('SIGINT')
    expect(await follower.done).toMatchObject({ code: 0, stdout: 'old 1\nold 2\nnew\n', stderr: '' })
  })

  it('reports per-message failures with their code and exits 1, sending the rest', async () => {
    await client.admin().createTopic({ name: 'mixed', partitions: 1 })
    const huge = 'x'.repeat(1_100_000)
    const r = await raftmq(['produce', 'mixed'], `first\n${huge}\nlast\n`)
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^produced 2 messages/)
    expect(r.stderr).toMatch(/^raftmq: line 2: MESSAGE_TOO_LARGE: /m)
    expect(r.stderr).toMatch(/^raftmq: 1 of 3 messages failed \(MESSAGE_TOO_LARGE: 1\)$/m)
    expect((await raftmq(['consume', 'mixed'])).stdout).toBe('first\nlast\n')
  })

  it('produces with -H headers, a -D delimiter (one byte or more), -Z tombstones and --whole-file', async () => {
    await client.admin().createTopic({ name: 'shaped', partitions: 1 })
    const delimited = await raftmq(['produce', 'shaped', '-D', ';', '-Z', '-H', 'src=cli', '-H', 'v=2'], 'a;b\r;;c')
    expect(delimited).toMatchObject({ code: 0, stderr: '' })
    expect(delimited.stdout).toMatch(/^produced 4 messages/)
    const twoBytes = await raftmq(['produce', 'shaped', '-D', '\\x1e\\n'], 'x\x1e\ny\x1e\nz')
    expect(twoBytes).toMatchObject({ code: 0, stderr: '' })
    const file = join(dir, 'config.json')
    await writeFile(file, '{\n  "a": 1\n}\n')
    const whole = await raftmq(['produce', 'shaped', '--whole-file', '-k', 'cfg', '--file', file])
    expect(whole).toMatchObject({ code: 0, stderr: '' })
    expect(whole.stdout).toMatch(/^produced 1 message /)
    const page = await client.consumer().fetch({ topic: 'shaped', partition: 0, offset: 0 })
    const got = page.messages.map((m) => ({ key: m.key?.toString() ?? null, value: m.value === null ? null : m.value.toString(), headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, v?.toString()])) }))
    const h = { src: 'cli', v: '2' }
    expect(got).toEqual([
      { key: null, value: 'a', headers: h },
      { key: null, value: 'b\r', headers: h }, // a delimiter other than the newline keeps \r
      { key: null, value: null, headers: h }, // -Z: the empty message is a tombstone
      { key: null, value: 'c', headers: h },
      { key: null, value: 'x', headers: {} },
      { key: null, value: 'y', headers: {} },
      { key: null, value: 'z', headers: {} },
      { key: 'cfg', value: '{\n  "a": 1\n}\n', headers: {} },
    ])
  })

  it('Ctrl-C during a produce stops reading, sends what was read, prints the summary and exits 130', async () => {
    await client.admin().createTopic({ name: 'typed', partitions: 1 })
    const producer = start(['produce', 'typed', '--linger-ms', '0'], 'one\ntwo\n', true)
    const stored = async (): Promise<number> => (await client.consumer().fetch({ topic: 'typed', partition: 0, offset: 0 })).messages.length
    for (const until = Date.now() + 10_000; (await stored()) < 2; await new Promise((r) => setTimeout(r, 25))) {
      if (Date.now() > until) throw new Error('the typed lines were not produced')
    }
    producer.kill('SIGINT')
    const r = await producer.done
    expect(r.code).toBe(130)
    expect(r.stdout).toMatch(/^produced 2 messages \(6 B\) to typed in /)
    expect(r.stderr).toMatch(/^raftmq: interrupted: reading no more input/)
    expect(r.stderr).toMatch(/^raftmq: interrupted after line 2: 0 messages not produced$/m)
  })

  it('reads every partition merged in timestamp order, from -N before each end, with kcat format strings and -c', async () => {
    await client.admin().createTopic({ name: 'merge', partitions: 3 })
    const t0 = 1_800_000_000_000
    // message i goes to partition i % 3 with timestamp t0 + i: the merge must give back i's order
    await client.producer().sendBatch(Array.from({ length: 12 }, (_, i) => ({ topic: 'merge', partition: i % 3, value: `m${i}`, timestamp: t0 + i })))
    await client.producer().send({ topic: 'merge', partition: 0, key: 'k', value: 'last', headers: { a: '1', b: '2' }, timestamp: t0 + 100 })
    const all = await raftmq(['consume', 'merge', '-f', '%s\\n'])
    expect(all).toMatchObject({ code: 0, stderr: '' })
    expect(all.stdout).toBe([...Array.from({ length: 12 }, (_, i) => `m${i}`), 'last'].join('\n') + '\n')
    const [tail, counted, fields] = await Promise.all([
      raftmq(['consume', 'merge', '-o', '-2', '-e', '-f', '%p:%o %s\\n']),
      raftmq(['consume', 'merge', '-c', '4', '-f', '%T %s\\n']),
      raftmq(['consume', 'merge', '-p', '0', '-o', '4', '-f', '%t|%k|%K|%s|%S|%h|%%\\t.\\n']),
    ])
    // the last two of each partition (partition 0 ends with m9 and last), in timestamp order
    expect(tail.stdout).toBe('1:2 m7\n2:2 m8\n0:3 m9\n1:3 m10\n2:3 m11\n0:4 last\n')
    expect(counted.stdout).toBe([0, 1, 2, 3].map((i) => `${t0 + i} m${i}\n`).join(''))
    expect(fields.stdout).toBe('merge|k|1|last|4|a=1,b=2|%\t.\n')
  })

  it('refuses a start at a timestamp with a clear usage error (no time index yet)', async () => {
    const r = await raftmq(['consume', 'merge', '-o', '@2026-12-01T00:00:00Z'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/starting at a timestamp needs the partitions' time index/)
  })

  it('exits 1 with UNKNOWN_TOPIC for a topic that does not exist', async () => {
    const [produced, consumed] = await Promise.all([raftmq(['produce', 'nope'], 'hello\n'), raftmq(['consume', 'nope'])])
    expect(produced).toMatchObject({ code: 1, stdout: '', stderr: 'raftmq: UNKNOWN_TOPIC: topic nope does not exist\n' })
    expect(consumed).toMatchObject({ code: 1, stderr: 'raftmq: UNKNOWN_TOPIC: topic nope does not exist\n' })
  })
})

describe('cli - bench', () => {
  it('creates its topic, sends every message and prints throughput and latency', async () => {
    const r = await raftmq(['bench', '--topic', 'benchy', '--messages', '300', '--size', '64', '--batch-size', '50', '--partitions', '2', '--producers', '2'])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('created topic benchy with 2 partitions\n')
    for (const row of ['messages/s', 'MB/s', 'ack latency p50', 'ack latency p99']) expect(r.stdout).toMatch(new RegExp(`│ ${row}\\s+│ [\\d.,]+( ms)?\\s+│`))
    expect(r.stdout).toMatch(/│ messages\s+│ 300 × 64 B\s+│/)
    const d = await client.admin().describeTopic('benchy')
    expect(d.partitions.map((p) => p.highWatermark)).toEqual([150, 150])
    // the same topic with another --partitions is refused, not silently used; without it, used as it is
    const other = await raftmq(['bench', '--topic', 'benchy', '--messages', '10', '--partitions', '3'])
    expect(other.code).toBe(1)
    expect(other.stderr).toBe('raftmq: INVALID_CONFIG: topic benchy exists with 2 partitions, not 3: leave out --partitions to use it as it is, or pick another --topic\n')
    const again = await raftmq(['bench', '--topic', 'benchy', '--messages', '10'])
    expect(again).toMatchObject({ code: 0, stderr: '' })
    expect(again.stdout).toMatch(/│ topic\s+│ benchy \(2 partitions\)\s+│/)
  })

  it('without --topic runs on a fresh topic and deletes it afterwards', async () => {
    const before = (await client.admin().listTopics()).map((t) => t.name)
    const r = await raftmq(['bench', '--messages', '40', '--batch-size', '10', '-p', '2'])
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/^created topic raftmq-bench-[0-9a-f]{8} with 2 partitions \(deleted after the run\)\n$/)
    expect((await client.admin().listTopics()).map((t) => t.name)).toEqual(before)
  })
})

describe('cli - usage', () => {
  it('exits 2 with the problem and the usage line for bad flags and arguments', async () => {
    const cases: [string[], RegExp][] = [
      [['produce', 'lines', '--bogus'], /^raftmq: unknown option '--bogus'\nusage: raftmq produce \[options\] <topic>\n/],
      [['topic', 'create'], /^raftmq: missing required argument 'name'\nusage: raftmq topic create \[options\] <name>\n/],
      [['topic', 'create', 'x', '-p', 'many'], /argument 'many' is invalid\. expected an integer >= 1\n/],
      [['consume', 'lines', '--from', 'sideways'], /expected earliest\|beginning, latest\|end, an offset N/],
      [['consume', 'lines', '--format', 'xml'], /expected value, kv, json or a format string/],
      [['produce'], /^raftmq: missing required argument 'topic'\n/],
      [['bench', '--messages', '0'], /expected an integer >= 1/],
      [['topic', 'list', '--brokers', 'nowhere'], /"nowhere" is not host:port/],
      [['frobnicate'], /^raftmq: unknown command 'frobnicate'/],
      [[], /Usage: raftmq/],
    ]
    const runs = await Promise.all(cases.map(([args]) => raftmq(args)))
    runs.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(cases[i]![1])
    })
  })

  it('prints help with defaults and examples, exit 0', async () => {
    const commands = [['produce'], ['consume'], ['bench'], ['topic', 'create']]
    const runs = await Promise.all(commands.map((cmd) => raftmq([...cmd, '--help'])))
    runs.forEach((r, i) => {
      const cmd = commands[i]!
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`^Usage: raftmq ${cmd.join(' ')} `))
      expect(r.stdout).toMatch(/\nExamples:\n {2}\$ raftmq /)
      expect(r.stdout).toMatch(/default: 127\.0\.0\.1:7070,\s+env:\s+RAFTMQ_BROKERS/)
    })
  })
})

describe('raftmq --version', () => {
  it('prints the package version on the root and on every subcommand, and exits 0', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }
    const line = `raftmq ${pkg.version} (protocol 1, Node.js ${process.version})\n`
    for (const args of [['--version'], ['-V'], ['topic', 'create', '-V'], ['node', 'add', '--version']]) {
      const r = await raftmq(args)
      expect(r, args.join(' ')).toMatchObject({ code: 0, stdout: line, stderr: '' })
    }
  })
})

describe('raftmq topic create', () => {
  it('makes one partition by default, and with --if-not-exists runs again without an error', async () => {
    const first = await raftmq(['topic', 'create', 'once', '--if-not-exists'])
    expect(first).toMatchObject({ code: 0, stdout: 'created topic once with 1 partition (replication factor 1)\n' })
    const again = await raftmq(['topic', 'create', 'once', '-p', '4', '--if-not-exists'])
    expect(again).toMatchObject({ code: 0, stdout: 'topic once exists already, with 1 partition: left as it is\n', stderr: '' })
    const plain = await raftmq(['topic', 'create', 'once'])
    expect(plain.code).toBe(1)
    expect(plain.stderr).toMatch(/^raftmq: TOPIC_EXISTS: /)
  })
})

describe('raftmq consume --follow across a broker restart', () => {
  it('says it lost the broker, waits for it, and goes on from the next offset: nothing acknowledged is missing, nothing twice', async () => {
    const port = await freePort()
    const cfg = resolveConfig({ dataDir: join(dir, 'restarting'), listen: `127.0.0.1:${port}`, workers: '1', logLevel: 'warn', tickMs: '20' })
    if (!cfg.ok) throw new Error(cfg.error.message)
    let n = await startNode(cfg.value)
    if (!n.ok) throw new Error(n.error.message)
    const own = `127.0.0.1:${port}`
    const c1 = new Client({ brokers: [own] })
    await c1.admin().createTopic({ name: 'restart', partitions: 2 })
    await c1.producer().sendBatch([{ topic: 'restart', partition: 0, value: 'before 0' }, { topic: 'restart', partition: 1, value: 'before 1' }])
    const follower = start(['consume', 'restart', '--follow', '-f', '%p %s\\n', '--brokers', own])
    try {
      await until('the first messages', () => follower.stdout().split('\n').length === 3, 15_000)
      await c1.close()
      await n.value.stop()
      await new Promise((r) => setTimeout(r, 3_000)) // longer than the client's own retries
      n = await startNode(cfg.value)
      if (!n.ok) throw new Error(n.error.message)
      const c2 = new Client({ brokers: [own] })
      await c2.producer().sendBatch([{ topic: 'restart', partition: 0, value: 'after 0' }, { topic: 'restart', partition: 1, value: 'after 1' }])
      await c2.close()
      await until('the messages after the restart', () => follower.stdout().includes('after 0') && follower.stdout().includes('after 1'), 20_000)
      follower.kill('SIGINT')
      const r = await follower.done
      expect(r.code).toBe(0)
      expect(r.stdout.split('\n').filter((l) => l !== '').sort()).toEqual(['0 after 0', '0 before 0', '1 after 1', '1 before 1'])
      expect(r.stderr).toMatch(/^raftmq: [A-Z_]+: .*; retrying until the broker answers \(Ctrl-C to stop\)$/m)
      expect(r.stderr).toMatch(/^raftmq: reading again \(partition \d from offset 1\)$/m)
    } finally {
      follower.kill('SIGKILL')
      if (n.ok) await n.value.stop()
    }
  }, 60_000)
})

describe('raftmq cluster info', () => {
  it('prints the nodes, then every partition with leader and replicas (kcat -L), or JSON', async () => {
    await client.admin().createTopic({ name: 'info-a', partitions: 2, ifNotExists: true })
    const r = await raftmq(['cluster', 'info', 'info-a'])
    expect(r).toMatchObject({ code: 0, stderr: '' })
    expect(r.stdout).toBe(
      `NODE  ADDRESS\n1     ${brokers}\n\nTOPIC   PARTITION  LEADER  REPLICAS  MOVING TO\ninfo-a  0          1       1         -\ninfo-a  1          1       1         -\n\n1 node, 1 topic, 2 partitions (metadata from ${brokers})\n`,
    )
    const j = await raftmq(['cluster', 'info', 'info-a', '--json'])
    expect(JSON.parse(j.stdout)).toMatchObject({ nodes: [{ id: 1 }], topics: [{ name: 'info-a', partitions: [{ partition: 0, leader: 1 }, { partition: 1, leader: 1 }] }] })
  })
})

describe('raftmq topic alter', () => {
  it('changes retention and raises the partition count, says the result, and refuses fewer partitions or nothing to do', async () => {
    await raftmq(['topic', 'create', 'alt'])
    const r = await raftmq(['topic', 'alter', 'alt', '--retention-ms', '60000', '-p', '3'])
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: 'topic alt: 3 partitions, retention 60000 ms, no size limit\n' })
    const back = await raftmq(['topic', 'alter', 'alt', '--retention-ms', 'forever', '--retention-bytes', '1048576'])
    expect(back.stdout).toBe('topic alt: 3 partitions, retention forever, 1048576 bytes per partition\n')
    const fewer = await raftmq(['topic', 'alter', 'alt', '-p', '2'])
    expect(fewer.code).toBe(1)
    expect(fewer.stderr).toMatch(/^raftmq: INVALID_CONFIG: .*partitions are never removed/)
    const nothing = await raftmq(['topic', 'alter', 'alt'])
    expect(nothing).toMatchObject({ code: 2, stderr: 'raftmq: nothing to change: give --retention-ms, --retention-bytes or --partitions\n' })
  })
})
