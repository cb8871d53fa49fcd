/**
 * SIGTERM after a storage failure (issue 7, "storage that fails safe"): a real
 * `raftmq start` child (broker-process.ts: run from the source tree through tsx, as the
 * crash test runs it), loopback only, is stopped with SIGTERM
 *   (a) while its writes are stalled on a full disk (STORAGE_FULL): a small tmpfs the test
 *       mounts (so it needs root, as CI runs) and keeps full, holding either only the
 *       write-ahead logs (the worker loop's turn stalls with a produce in it) or the whole
 *       data directory (the partition store meets the full disk too);
 *   (b) after an I/O error made a worker fail-stop (STORAGE_FAILED): the failpoint
 *       `wal.datasync` (src/storage/wal/failpoints.ts) fails worker 0's fdatasyncs with EIO
 *       from the 13th on, armed through RAFTMQ_FAILPOINTS for that child only.
 * Each time the process must exit by itself within a bound (no SIGKILL) with exit code 3
 * (src/broker/node.ts: stopped after a storage failure), one stderr line naming the code
 * and the failure, and the log line "shut down after a storage failure"; then a restart
 * on the same data directory (space freed, no failpoint) must hold every acknowledged
 * message exactly once, at the offset it was acknowledged with, in order (crash-run.ts's
 * checkLedger). Every wait is a poll with a bound; nothing is timed beyond those bounds.
 */
import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Client, RaftmqError } from '../../src/client/index.js'
import type { Producer } from '../../src/client/index.js'
import { BrokerProcess, freePort } from './broker-process.js'
import { checkLedger, readPartitionLog } from './crash-run.js'
import type { PartitionLog, Sent } from './crash-run.js'

const isRoot = process.getuid?.() === 0
/** The exit code of a node stopped after a storage failure (README, src/broker/node.ts). */
const EXIT_STORAGE = 3
/** SIGTERM to exit: the node waits up to --shutdown-timeout-ms for requests in flight, then closes everything. */
const SHUTDOWN_TIMEOUT_MS = 2_000
const EXIT_BOUND_MS = SHUTDOWN_TIMEOUT_MS + 15_000
const TOPIC = 't'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `f` every 20 ms until it returns a value other than null, for at most `ms`. */
async function until<T>(what: string, ms: number, f: () => T | null | Promise<T | null>): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v !== null) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(20)
  }
}

/** What the test sent, and what became of each message (crash-run.ts's ledger; a plain producer, no retries). */
class Ledger {
  readonly sent: Sent[] = []
  #n = 0

  /** Sends `count` messages of `bytes` each as one batch; resolves with the error code that refused them, or null. */
  async sendBatch(producer: Producer, count: number, bytes: number, partition = 0): Promise<string | null> {
    const batch: Sent[] = []
    for (let i = 0; i < count; i++) {
      const id = `m${this.#n++}`
      const m: Sent = { id, lane: 'plain-batch', idempotent: false, partition, value: `${id}|${'x'.repeat(Math.max(0, bytes - id.length - 1))}`, sentEpoch: 0, state: 'pending', offset: -1, duplicate: false, ackEpoch: -1, error: '' }
      batch.push(m)
      this.sent.push(m)
    }
    const r = await producer.sendBatch(batch.map((m) => ({ topic: TOPIC, partition, value: m.value }))).catch((e: unknown) => e)
    const failAll = (code: string): string => {
      for (const m of batch) Object.assign(m, { state: 'failed', error: code })
      return code
    }
    if (r instanceof RaftmqError) return failAll(r.code)
    if (r instanceof Error) return failAll(r.message)
    let refused: string | null = null
    ;(r as { results: Array<{ offset?: number; error?: { code: string } }> }).results.forEach((x, i) => {
      const m = batch[i]!
      if (x.error) {
        Object.assign(m, { state: 'failed', error: x.error.code })
        refused ??= x.error.code
      } else Object.assign(m, { state: 'acked', offset: x.offset!, ackEpoch: 0 })
    })
    return refused
  }

  get acked(): Sent[] {
    return this.sent.filter((m) => m.state === 'acked')
  }
}

/** A partition of the topic, read from offset 0 to its high watermark. */
function readPartition(client: Client, partition = 0): Promise<PartitionLog> {
  return readPartitionLog(client, TOPIC, partition)
}

/** After a restart: once the re-elected leaders have re-applied what was acknowledged, the partitions' logs against the ledger. */
async function checkAfterRestart(client: Client, ledger: Ledger, partitions = 1): Promise<string[]> {
  const logs: PartitionLog[] = []
  for (let p = 0; p < partitions; p++) {
    const needed = Math.max(0, ...ledger.acked.filter((m) => m.partition === p).map((m) => m.offset + 1))
    logs.push(
      await until(`the restarted node to serve every acknowledged offset of partition ${p}`, 15_000, async () => {
        const l = await readPartition(client, p).catch(() => null)
        return l !== null && l.highWatermark >= needed ? l : null
      }),
    )
  }
  return checkLedger(ledger.sent, logs).problems
}

/** SIGTERM, and what the process did: its exit code (null: it had to be killed after the bound). */
async function terminate(broker: BrokerProcess): Promise<number | null> {
  return broker.stop(EXIT_BOUND_MS)
}

/** The broker's stderr lines and its pino lines (msg and the whole object) of the last life. */
function output(broker: BrokerProcess): { stderr: string[]; logs: Array<Record<string, unknown>> } {
  const lines = broker.tail(240).split('\n')
  const start = lines.findLastIndex((l) => l.startsWith('---- life ') && l.endsWith(': starting'))
  const life = lines.slice(start + 1)
  const logs: Array<Record<string, unknown>> = []
  for (const l of life) {
    if (!l.startsWith('{')) continue
    try {
      logs.push(JSON.parse(l) as Record<string, unknown>)
    } catch {
      // not a log line
    }
  }
  return { stderr: life.filter((l) => l.startsWith('stderr: ')).map((l) => l.slice('stderr: '.length)), logs }
}

/**
 * Keeps a file system full: appends to `path` until ENOSPC, in smaller and smaller
 * pieces, and again every 20 ms while running, so that space the node frees (a discarded
 * segment preparation) is taken again before the worker loop's next retry can use it.
 */
class SpaceHog {
  #fd: number
  #timer: NodeJS.Timeout | null = null

  constructor(path: string) {
    this.#fd = openSync(path, 'a')
  }

  fill(): void {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const chunk = Buffer.alloc(size, 1)
      for (;;) {
        try {
          if (writeSync(this.#fd, chunk) < size) break
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break
          throw e
        }
      }
    }
  }

  start(): void {
    this.fill()
    this.#timer = setInterval(() => this.fill(), 20)
  }

  /** Stops filling (idempotent); the file stays until the test removes it. */
  stop(): void {
    if (this.#fd < 0) return
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    closeSync(this.#fd)
    this.#fd = -1
  }
}

/**
 * A node on a disk the test keeps full, stopped with SIGTERM. `wal`: only the
 * write-ahead logs are on the small file system (mounted at <data-dir>/wal), the
 * partition stores on a roomy one, so the first write refused is a WAL commit: the worker
 * loop's stalled turn, retried every 200 ms, with a produce waiting in it. `all`: the
 * whole data directory is on it, and whichever of the WAL and the partition store meets
 * the full disk first refuses.
 */
async function fullDiskShutdown(layout: 'wal' | 'all'): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), 'raftmq-shutdown-full-'))
  cleanups.push(() => rm(workDir, { recursive: true, force: true }))
  const dataDir = join(workDir, 'data')
  const mnt = layout === 'wal' ? join(dataDir, 'wal') : join(workDir, 'mnt')
  mkdirSync(mnt, { recursive: true })
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${layout === 'wal' ? 32 : 64}m`, 'tmpfs', mnt])
  cleanups.push(() => void execFileSync('umount', [mnt]))
  const broker = new BrokerProcess({
    dataDir: layout === 'wal' ? dataDir : join(mnt, 'data'),
    port: await freePort(),
    logFile: join(workDir, 'broker.log'),
    args: ['--workers', '1', '--tick-ms', '20', '--wal-segment-mb', '1', '--ballast-mb', '0', '--shutdown-timeout-ms', String(SHUTDOWN_TIMEOUT_MS)],
  })
  cleanups.push(() => broker.close())
  await broker.start()
  let client = new Client({ brokers: [broker.address], requestTimeoutMs: 60_000 })
  cleanups.push(() => client.close())
  await client.admin().createTopic({ name: TOPIC, partitions: 1 })
  const ledger = new Ledger()
  const producer = client.producer({ retries: 0 })
  // batches larger than a 1 MiB segment: each commit goes into a new segment and extends
  // it, so each needs space that the full disk does not have
  const BATCH = 2
  const BYTES = 700_000
  for (let i = 0; i < 3; i++) expect(await ledger.sendBatch(producer, BATCH, BYTES)).toBeNull()

  const hog = new SpaceHog(join(mnt, 'filler'))
  cleanups.push(() => hog.stop())
  hog.start()
  // three producers; each stops at its first refusal (a batch the WAL could not take stays
  // waiting in the stalled turn)
  const lanes = Array.from({ length: 3 }, async () => {
    for (let i = 0; i < 100; i++) if ((await ledger.sendBatch(producer, BATCH, BYTES)) !== null) return
  })
  // the worker loop stalled on the WAL, or the partition store met the full disk (or both)
  const stalled = (): boolean => broker.errors.some((e) => e.worker === 0 && e.msg.startsWith('the disk is full: writes refused'))
  const storeFull = (): boolean => broker.errors.some((e) => e.worker === 0 && e.msg === 'partition store write failed' && e.code === 'STORE_FULL')
  await until(`the disk to refuse a write\n${broker.tail()}`, 30_000, () => (stalled() || (layout === 'all' && storeFull()) ? true : null))
  if (layout === 'wal') expect(ledger.sent.some((m) => m.state === 'pending'), 'a batch waits in the stalled turn').toBe(true)
  // and from then on a write is refused at once, retriable
  expect(await ledger.sendBatch(producer, 1, 100)).toBe('STORAGE_FULL')
  expect(ledger.acked.length).toBeGreaterThan(0)

  const code = await terminate(broker)
  hog.stop()
  expect(code, broker.tail()).toBe(EXIT_STORAGE)
  await Promise.all(lanes)
  const { stderr, logs } = output(broker)
  expect(stderr.filter((l) => l.startsWith('raftmq: ')), broker.tail()).toEqual([expect.stringMatching(/^raftmq: STORAGE_FULL: stopped on SIGTERM while the disk was full \(worker 0: .*(ENOSPC|No space left)/)])
  expect(logs.filter((l) => l.msg === 'shut down after a storage failure' && l.code === 'STORAGE_FULL'), broker.tail()).toHaveLength(1)
  // what waited for the disk was answered (refused), not left hanging
  expect(ledger.sent.filter((m) => m.state === 'pending')).toEqual([])

  // space comes back: a restart on the same data holds every acknowledged message once, in order
  await client.close()
  rmSync(join(mnt, 'filler'))
  await broker.start()
  client = new Client({ brokers: [broker.address], requestTimeoutMs: 10_000 })
  expect(await checkAfterRestart(client, ledger)).toEqual([])
  expect(await terminate(broker), broker.tail()).toBe(0)
}

// needs root to mount the small file systems (CI runs as root)
describe.runIf(isRoot)('process - SIGTERM on a full disk', () => {
  it('while a WAL commit is stalled: exits by itself with code 3 and one line naming STORAGE_FULL; after space is freed every acknowledged message is there once, in order', async () => {
    await fullDiskShutdown('wal')
  }, 120_000)

  it('with the partition store on the full disk too: the same', async () => {
    await fullDiskShutdown('all')
  }, 120_000)
})

describe('process - SIGTERM after an I/O error stopped a worker (failpoint wal.datasync)', () => {
  it('the other worker takes writes, reads and metadata answer, writes get STORAGE_FAILED; SIGTERM: exit 3 and one line naming the EIO; restarted without the failpoint every acknowledged message is there once, in order', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'raftmq-shutdown-eio-'))
    cleanups.push(() => rm(workDir, { recursive: true, force: true }))
    const broker = new BrokerProcess({
      dataDir: join(workDir, 'data'),
      port: await freePort(),
      logFile: join(workDir, 'broker.log'),
      args: ['--workers', '2', '--tick-ms', '20', '--ballast-mb', '0', '--shutdown-timeout-ms', String(SHUTDOWN_TIMEOUT_MS)],
    })
    cleanups.push(() => broker.close())
    // worker 0's WAL: its first 12 fdatasyncs succeed (opening its group, its first
    // produces), every later one fails with EIO. Only this life gets the variable.
    await broker.start({ env: { RAFTMQ_FAILPOINTS: 'wal.datasync:error=EIO,after=12,path=/w0/' } })
    expect(output(broker).logs.filter((l) => l.level === 40 && String(l.msg).startsWith('failpoints armed'))).toHaveLength(1)
    let client = new Client({ brokers: [broker.address], requestTimeoutMs: 10_000 })
    cleanups.push(() => client.close())
    // two partitions, one on each worker
    await client.admin().createTopic({ name: TOPIC, partitions: 2 })
    const ledger = new Ledger()
    const producer = client.producer({ retries: 0 })
    let failed = -1
    for (let i = 0; i < 200 && failed < 0; i++) {
      const refused = await ledger.sendBatch(producer, 3, 100, i % 2)
      if (refused !== null) {
        expect(refused).toBe('STORAGE_FAILED')
        failed = i % 2
      }
    }
    expect(failed).toBeGreaterThanOrEqual(0)
    const healthy = 1 - failed
    expect(ledger.acked.filter((m) => m.partition === failed).length).toBeGreaterThan(0)
    await until('the worker loop to report the failed fdatasync', 10_000, () => (broker.errors.some((e) => e.worker === 0 && String(e.msg).startsWith('the write-ahead log failed')) ? true : null))

    // the stopped worker's partition: what it acknowledged still reads, and a write keeps
    // getting the same code; the other worker's partition takes writes; metadata answers
    expect(await ledger.sendBatch(producer, 1, 100, failed)).toBe('STORAGE_FAILED')
    expect(await ledger.sendBatch(producer, 1, 100, healthy)).toBe(null)
    expect(checkLedger(ledger.sent, [await readPartition(client, 0), await readPartition(client, 1)]).problems).toEqual([])
    expect((await client.admin().listTopics()).map((t) => t.name)).toEqual([TOPIC])
    // a topic with a partition on the stopped worker is refused whole, with the same code
    const created = await client.admin().createTopic({ name: 'u', partitions: 2 }).catch((e: unknown) => e)
    expect(created).toBeInstanceOf(RaftmqError)
    expect((created as RaftmqError).code).toBe('STORAGE_FAILED')
    expect((created as RaftmqError).retriable).toBe(false)
    expect((await client.admin().listTopics()).map((t) => t.name)).toEqual([TOPIC])

    const code = await terminate(broker)
    expect(code, broker.tail()).toBe(EXIT_STORAGE)
    const { stderr, logs } = output(broker)
    expect(stderr.filter((l) => l.startsWith('raftmq: ')), broker.tail()).toEqual([expect.stringMatching(/^raftmq: STORAGE_FAILED: stopped on SIGTERM after a storage failure \(worker 0: fdatasync of .*\/w0\/.* failed: EIO /)])
    expect(logs.filter((l) => l.msg === 'shut down after a storage failure' && l.code === 'STORAGE_FAILED'), broker.tail()).toHaveLength(1)

    // restarted without the failpoint: every acknowledged message once, in order, and writes go on
    await client.close()
    await broker.start()
    expect(output(broker).logs.some((l) => String(l.msg).startsWith('failpoints armed'))).toBe(false)
    client = new Client({ brokers: [broker.address], requestTimeoutMs: 10_000 })
    expect(await checkAfterRestart(client, ledger, 2)).toEqual([])
    expect(await ledger.sendBatch(client.producer({ retries: 0 }), 1, 100, failed)).toBe(null)
    expect(await terminate(broker), broker.tail()).toBe(0)
  }, 120_000)
})

describe('process - RAFTMQ_FAILPOINTS it cannot read', () => {
  it('refuses to start, exit 1, naming the variable and the problem', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'raftmq-failpoints-'))
    cleanups.push(() => rm(workDir, { recursive: true, force: true }))
    const broker = new BrokerProcess({ dataDir: join(workDir, 'data'), port: await freePort(), logFile: join(workDir, 'broker.log'), args: ['--workers', '1'] })
    cleanups.push(() => broker.close())
    await expect(broker.start({ env: { RAFTMQ_FAILPOINTS: 'wal.fsync:error=EIO' } })).rejects.toThrow(/exited \(code 1, signal null\) before it was ready/)
    expect(output(broker).stderr).toEqual(['raftmq: RAFTMQ_FAILPOINTS="wal.fsync:error=EIO": unknown failpoint "wal.fsync" (known: wal.datasync)'])
  })
})

/**
 * A node whose only worker hangs in an fdatasync (failpoint wal.datasync:hang): a produce
 * stays in flight, so a SIGTERM's shutdown waits. Returns the broker, the client and the
 * ledger, once a produce has been seen hanging.
 */
async function hungNode(workDir: string, shutdownTimeoutMs: number) {
  const broker = new BrokerProcess({
    dataDir: join(workDir, 'data'),
    port: await freePort(),
    logFile: join(workDir, 'broker.log'),
    args: ['--workers', '1', '--ballast-mb', '0', '--shutdown-timeout-ms', String(shutdownTimeoutMs)],
  })
  cleanups.push(() => broker.close())
  await broker.start({ env: { RAFTMQ_FAILPOINTS: 'wal.datasync:hang=120000,after=12,path=/w0/' } })
  const client = new Client({ brokers: [broker.address], requestTimeoutMs: 150_000 })
  cleanups.push(() => client.close())
  await client.admin().createTopic({ name: TOPIC, partitions: 1 })
  const ledger = new Ledger()
  const producer = client.producer({ retries: 0 })
  for (let i = 0; i < 100; i++) {
    const sent = ledger.sendBatch(producer, 2, 100)
    const answered = await Promise.race([sent.then(() => true), sleep(2_000).then(() => false)])
    if (!answered) return { broker, client, ledger }
  }
  throw new Error(`no produce hung in 100 tries: ${broker.tail()}`)
}

describe('process - a shutdown that cannot finish', () => {
  it('a second signal exits 3 at once, saying so, while the first shutdown still waits; a restart holds everything acknowledged', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'raftmq-shutdown-twice-'))
    cleanups.push(() => rm(workDir, { recursive: true, force: true }))
    const { broker, ledger } = await hungNode(workDir, 60_000)
    expect(ledger.acked.length).toBeGreaterThan(0)
    broker.signal('SIGTERM')
    expect(await broker.exited(1_000), 'the first SIGTERM waits for the hung produce').toBeUndefined()
    broker.signal('SIGTERM')
    expect(await broker.exited(10_000), broker.tail()).toBe(EXIT_STORAGE)
    expect(output(broker).stderr.filter((l) => l.startsWith('raftmq: ')), broker.tail()).toEqual([expect.stringMatching(/^raftmq: SIGTERM again: exiting now, before every store is closed/)])
    await broker.start()
    const client = new Client({ brokers: [broker.address], requestTimeoutMs: 10_000 })
    cleanups.push(() => client.close())
    expect(await checkAfterRestart(client, ledger)).toEqual([])
    expect(await terminate(broker), broker.tail()).toBe(0)
  }, 60_000)

  it('one that has not finished 30 s after --shutdown-timeout-ms exits 3 by itself, saying so', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'raftmq-shutdown-hung-'))
    cleanups.push(() => rm(workDir, { recursive: true, force: true }))
    const { broker } = await hungNode(workDir, 1_000)
    broker.signal('SIGTERM')
    // 1 s for the requests in flight, then closing hangs on the blocked worker until the 30 s grace runs out
    expect(await broker.exited(28_000), 'still closing before the deadline').toBeUndefined()
    expect(await broker.exited(15_000), broker.tail()).toBe(EXIT_STORAGE)
    expect(output(broker).stderr.filter((l) => l.startsWith('raftmq: ')), broker.tail()).toEqual([expect.stringMatching(/^raftmq: shutdown did not finish within 31 s/)])
  }, 90_000)
})
