import { afterEach, describe, expect, it } from 'vitest'
import { Client, RaftmqError } from '../../src/client/index.js'
import { encodeRecordBatch } from '../../src/protocol/record-batch.js'
import { Cleanups, startTestNode, tempDir } from '../support/node.js'
import type { RunningNode } from '../../src/broker/node.js'

const cleanups = new Cleanups()
afterEach(() => cleanups.run())

const node = (dataDir: string): Promise<RunningNode> => startTestNode(dataDir, { workers: '1', retentionCheckMs: '50' })

async function until<T>(f: () => Promise<T | null>, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await f()
    if (v !== null) return v
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('broker retention - cleanup through Raft', () => {
  it('size retention drops the oldest batches, keeps the rest readable, and survives a restart', async () => {
    const dir = await tempDir(cleanups)
    let n = await node(dir)
    let client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    await client.admin().createTopic({ name: 'r', partitions: 1, retentionBytes: 20_000 })
    const producer = client.producer()
    const value = 'v'.repeat(200)
    for (let b = 0; b < 40; b++) await producer.sendBatch(Array.from({ length: 10 }, (_, i) => ({ topic: 'r', partition: 0, value: `${b}:${i}:${value}` })))
    const start = await until(async () => {
      const d = await client.admin().describeTopic('r')
      // retention runs every 50 ms: wait until what is left fits the limit (each record is over 200 bytes)
      return 400 - d.partitions[0]!.logStartOffset <= 20_000 / 200 ? d.partitions[0]!.logStartOffset : null
    }, 'retention to advance the log start')
    // whole batches are dropped, and the newest are kept
    expect(start % 10).toBe(0)
    expect(400 - start).toBeGreaterThan(0)
    const gone = await client.consumer().fetch({ topic: 'r', partition: 0, offset: 0 }).catch((e: unknown) => e)
    expect((gone as RaftmqError).code).toBe('OFFSET_OUT_OF_RANGE')
    expect((gone as RaftmqError).details).toMatchObject({ logStartOffset: start, highWatermark: 400 })
    const kept = await client.consumer().fetch({ topic: 'r', partition: 0, offset: start, maxBytes: 1 << 20 })
    expect(kept.messages[0]!.offset).toBe(start)
    expect(kept.messages.length).toBe(400 - start)
    await client.close()
    await n.stop()

    n = await node(dir)
    cleanups.add(() => n.stop())
    client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    cleanups.add(() => client.close())
    const after = await client.admin().describeTopic('r')
    expect(after.partitions[0]!.logStartOffset).toBeGreaterThanOrEqual(start)
    expect(after.partitions[0]!.highWatermark).toBe(400)
    expect((await client.producer().send({ topic: 'r', partition: 0, value: 'next' })).offset).toBe(400)
  })

  it('time retention drops records older than the limit', async () => {
    const dir = await tempDir(cleanups)
    const n = await node(dir)
    cleanups.add(() => n.stop())
    const client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 't', partitions: 1, retentionMs: 60_000 })
    const old = Date.now() - 3_600_000
    await client.producer().sendBatch(Array.from({ length: 5 }, (_, i) => ({ topic: 't', partition: 0, value: `old${i}`, timestamp: old })))
    await client.producer().sendBatch(Array.from({ length: 5 }, (_, i) => ({ topic: 't', partition: 0, value: `new${i}` })))
    const start = await until(async () => {
      const d = await client.admin().describeTopic('t')
      return d.partitions[0]!.logStartOffset > 0 ? d.partitions[0]!.logStartOffset : null
    }, 'time retention')
    expect(start).toBe(5)
    const page = await client.consumer().fetch({ topic: 't', partition: 0, offset: 5 })
    expect(page.messages.map((m) => new TextDecoder().decode(m.value!))).toEqual(['new0', 'new1', 'new2', 'new3', 'new4'])
  })

  it('alterTopic changes a live topic: retention set later takes effect, and added partitions take writes', async () => {
    const dir = await tempDir(cleanups)
    const n = await node(dir)
    cleanups.add(() => n.stop())
    const client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 'later', partitions: 1 })
    const old = Date.now() - 3_600_000
    await client.producer().sendBatch(Array.from({ length: 4 }, (_, i) => ({ topic: 'later', partition: 0, value: `old${i}`, timestamp: old })))
    await client.producer().send({ topic: 'later', partition: 0, value: 'new' })
    // forever so far: a few checks later nothing is gone
    await new Promise((r) => setTimeout(r, 300))
    expect((await client.admin().describeTopic('later')).partitions[0]!.logStartOffset).toBe(0)
    const altered = await client.admin().alterTopic('later', { retentionMs: 60_000, partitions: 3 })
    expect(altered).toEqual({ name: 'later', partitions: 3, retentionMs: 60_000, retentionBytes: null })
    const start = await until(async () => {
      const d = await client.admin().describeTopic('later')
      return d.partitions[0]!.logStartOffset > 0 ? d.partitions[0]!.logStartOffset : null
    }, 'retention set by alterTopic')
    expect(start).toBe(4)
    expect((await client.producer().send({ topic: 'later', partition: 2, value: 'on an added partition' })).offset).toBe(0)
    // fewer partitions is refused, and a restart keeps what was altered
    await expect(client.admin().alterTopic('later', { partitions: 2 })).rejects.toMatchObject({ code: 'INVALID_CONFIG' })
    await client.close()
    await n.stop()
    const again = await node(dir)
    cleanups.add(() => again.stop())
    const c2 = new Client({ brokers: [`127.0.0.1:${again.address.port}`] })
    cleanups.add(() => c2.close())
    const d = await c2.admin().describeTopic('later')
    expect({ partitions: d.partitions.length, retentionMs: d.retentionMs, start: d.partitions[0]!.logStartOffset, added: d.partitions[2]!.highWatermark }).toEqual({ partitions: 3, retentionMs: 60_000, start: 4, added: 1 })
  })

  it('an idempotent producer silent longer than producerExpiryMs is forgotten; one heard from recently is not', async () => {
    const dir = await tempDir(cleanups)
    const n = await startTestNode(dir, { workers: '1', retentionCheckMs: '50', producerExpiryMs: '1000' })
    cleanups.add(() => n.stop())
    const client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 'e', partitions: 1 })
    const { producerId, producerEpoch } = await client.request('initProducerId', {})
    const send = async (timestamp: number): Promise<{ baseOffset?: number; duplicate?: true }> => {
      const batch = encodeRecordBatch([{ value: 'a', timestamp }, { value: 'b', timestamp }], { producerId, producerEpoch, baseSequence: 0 })
      const r = await client.request('produce', { timeoutMs: 5_000, partitions: [{ topic: 'e', partition: 0, batch }] })
      return r.partitions[0]!
    }
    // a batch stamped now: well inside the expiry, its retry stays a duplicate
    const fresh = Date.now() + 3_600_000
    expect(await send(fresh)).toEqual({ topic: 'e', partition: 0, count: 2, baseOffset: 0 })
    await new Promise((r) => setTimeout(r, 300)) // several expiry checks
    expect(await send(fresh)).toMatchObject({ baseOffset: 0, duplicate: true })
    // the same producer's next batch stamped an hour ago: the next check forgets the producer,
    // and the retry of that batch is stored again
    const batch = encodeRecordBatch([{ value: 'c', timestamp: Date.now() - 3_600_000 }], { producerId, producerEpoch, baseSequence: 2 })
    const first = await client.request('produce', { timeoutMs: 5_000, partitions: [{ topic: 'e', partition: 0, batch }] })
    expect(first.partitions[0]).toMatchObject({ baseOffset: 2 })
    const again = await until(async () => {
      const r = await client.request('produce', { timeoutMs: 5_000, partitions: [{ topic: 'e', partition: 0, batch }] })
      return r.partitions[0]!.duplicate ? null : r.partitions[0]!
    }, 'the producer to expire')
    expect(again).toMatchObject({ baseOffset: 3 })
    expect(await client.admin().listOffset('e', 0, 'latest')).toBe(4)
  })
})
