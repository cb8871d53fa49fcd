/**
 * Catch-up by snapshot on a real 3-node cluster of child processes (ClusterProcess), each
 * node with a small log view (`--view-entries-max`, RAFTMQ_VIEW_ENTRIES_MAX): the
 * partition's preferred replica is killed (kill -9) while it leads, the other two take
 * far more entries than their log views keep, and the killed node comes back behind its
 * new leader's log. It must catch up by snapshot — killed once more as its transfer
 * starts, so that a crash lands somewhere in it — and then, once leadership went back to
 * it (the preferred replica; `raftmq cluster rebalance` asks for that too), serve every
 * acknowledged message exactly once, in order, at its offset; after a clean stop the three
 * stores hold byte-identical batches at the same offsets (compareReplicas).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Client } from '../../src/client/index.js'
import { clusterStatus, rebalanceLeaders } from '../../src/cli/cluster-status.js'
import { ClusterProcess } from './cluster-process.js'
import { compareReplicas } from './cluster-run.js'

const TOPIC = 'snap'
const VIEW_ENTRIES_MAX = 100
/** Produce requests (one Raft entry each) while the preferred replica is down: many log views' worth. */
const BATCHES = 1_500
const MESSAGES_PER_BATCH = 8
const VALUE_BYTES = 600

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function until<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await probe().catch(() => null)
    if (v !== null && v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(100)
  }
}

interface LogLine {
  readonly msg: string
  readonly [k: string]: unknown
}

async function logLines(file: string, msgPrefix: string): Promise<LogLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const out: LogLine[] = []
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue
    try {
      const v = JSON.parse(l) as LogLine
      if (typeof v.msg === 'string' && v.msg.startsWith(msgPrefix)) out.push(v)
    } catch {
      // a line cut by a kill -9
    }
  }
  return out
}

describe('process - catch-up by snapshot', () => {
  it('a replica killed while its peers wrote far past their log views catches up by snapshot (a kill -9 in the transfer included), then leads and serves every acknowledged message once, in order; the replicas are byte-identical', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'raftmq-snapshot-'))
    const cluster = await ClusterProcess.create({ workDir, args: ['--view-entries-max', String(VIEW_ENTRIES_MAX)] })
    const client = new Client({ brokers: cluster.brokers(), requestTimeoutMs: 10_000 })
    try {
      await cluster.startAll()
      await client.admin().createTopic({ name: TOPIC, partitions: 1, replicationFactor: 3 })
      const preferred = (await client.metadata([TOPIC])).topics[0]!.partitions[0]!.replicas[0]!
      await until('the preferred replica to lead', 20_000, async () => (await client.metadata([TOPIC])).topics[0]!.partitions[0]!.leader === preferred)

      const acked: { offset: number; value: string }[] = []
      const producer = client.producer({ idempotent: true, retries: 100, retryBackoffMs: 50 })
      const pad = 'x'.repeat(VALUE_BYTES)
      let n = 0
      const send = async (batches: number): Promise<void> => {
        for (let b = 0; b < batches; b++) {
          const msgs = Array.from({ length: MESSAGES_PER_BATCH }, () => ({ topic: TOPIC, partition: 0, value: `m${n++}|${pad}` }))
          const r = await producer.sendBatch(msgs)
          r.results.forEach((res, i) => {
            if (!('offset' in res)) throw new Error(`${msgs[i]!.value.slice(0, 12)}: ${res.error.code} ${res.error.message}`)
            acked.push({ offset: res.offset, value: msgs[i]!.value })
          })
        }
      }
      await send(20)
      // the preferred replica dies while it leads; the others go on far past what their views keep
      await cluster.kill(preferred)
      await send(BATCHES)
      const preferredLog = cluster.node(preferred).logFile

      // back, behind the log: a transfer starts; kill -9 it right then, wherever in the transfer that lands
      await cluster.start(preferred)
      await until('a snapshot transfer to start on the returning replica', 60_000, async () => (await logLines(preferredLog, 'catching up by snapshot: transfer started')).length > 0)
      await cluster.kill(preferred)
      await cluster.start(preferred)
      const statuses: string[] = []
      const installed = await until('the returning replica to install a snapshot', 90_000, async () => {
        statuses.push((await clusterStatus(client)).text)
        const done = await logLines(preferredLog, 'caught up by snapshot')
        return done.length > 0 ? done[done.length - 1]! : null
      })
      expect(installed.index as number).toBeGreaterThan(BATCHES)
      expect(installed.batches as number).toBeGreaterThan(0)
      expect(installed.bytes as number).toBeGreaterThan(0)
      // the leader's side says so too
      const sent = (await Promise.all(cluster.ids.filter((id) => id !== preferred).map((id) => logLines(cluster.node(id).logFile, 'snapshot transfer to a follower finished')))).flat()
      expect(sent.length).toBeGreaterThan(0)
      console.log(
        `snapshot catch-up: ${installed.batches} batches, ${installed.bytes} bytes (fetched from offset ${installed.fetchedFrom} of ${installed.endOffset}) in ${installed.ms} ms; ` +
          `transfers started ${(await logLines(preferredLog, 'catching up by snapshot: transfer started')).length}, aborted ${(await logLines(preferredLog, 'catching up by snapshot: transfer aborted')).length}; ` +
          `status showed a transfer: ${statuses.some((s) => /catching up by snapshot on \d+: \d+ of \d+ bytes/.test(s))}`,
      )

      // a few more, then leadership back to the preferred replica (which may already have it)
      await send(10)
      await until('the preferred replica to lead again', 60_000, async () => {
        await rebalanceLeaders(client, 2_000)
        return (await client.metadata([TOPIC])).topics[0]!.partitions[0]!.leader === preferred
      })
      const status = await until('a healthy cluster', 30_000, async () => {
        const s = await clusterStatus(client)
        return s.degraded ? null : s
      })
      expect(status.text).not.toMatch(/catching up by snapshot/)

      // read back from the returned replica, now the leader: every acknowledged message once, in order
      const toPreferred = new Client({ brokers: [cluster.node(preferred).process.address] })
      const consumer = toPreferred.consumer()
      const read: { offset: number; value: string }[] = []
      let offset = 0
      let highWatermark = -1
      try {
        while (highWatermark < 0 || offset < highWatermark) {
          const page = await consumer.fetch({ topic: TOPIC, partition: 0, offset, maxBytes: 4 << 20 })
          highWatermark = page.highWatermark
          for (const m of page.messages) read.push({ offset: m.offset, value: new TextDecoder().decode(m.value!) })
          if (page.messages.length === 0) break
          offset = page.nextOffset
        }
      } finally {
        await toPreferred.close()
      }
      expect(read.length).toBe(acked.length)
      expect(read.map((r) => r.offset)).toEqual(read.map((_, i) => i))
      expect(read).toEqual([...acked].sort((a, b) => a.offset - b.offset))

      // every replica's store, offline: the same batches, byte for byte, at the same offsets
      for (const id of cluster.ids) expect(await cluster.stop(id)).toBe(0)
      const cmp = await compareReplicas(cluster, workDir, 1, [{ offsets: [], values: [], highWatermark }])
      expect(cmp.problems).toEqual([])
    } finally {
      await client.close()
      await cluster.close()
      await rm(workDir, { recursive: true, force: true })
    }
  }, 300_000)
})
