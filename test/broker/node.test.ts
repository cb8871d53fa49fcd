import { afterEach, describe, expect, it } from 'vitest'
import { Client, RaftmqError } from '../../src/client/index.js'
import { resolveConfig } from '../../src/broker/config.js'
import { startNode } from '../../src/broker/node.js'
import { Cleanups, startTestNode, tempDir } from '../support/node.js'
import type { RunningNode } from '../../src/broker/node.js'
import { wantsPool } from '../../src/broker/codec-pool.js'
import { encodeRecordBatch } from '../../src/protocol/record-batch.js'
import { Prng } from '../../src/base/index.js'

const dec = new TextDecoder()
const cleanups = new Cleanups()
afterEach(() => cleanups.run())

const node = (dataDir: string, workers = '2'): Promise<RunningNode> => startTestNode(dataDir, { workers })

describe('broker node - produce and fetch end to end', () => {
  // workers 0: the groups on the main thread, the same code through an in-thread channel
  it.each(['2', '0'])('creates a topic, sends one and a batch, reads them back, and keeps them across a restart (workers %s)', async (workers) => {
    const dir = await tempDir(cleanups)
    let n = await node(dir, workers)
    let client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    await client.admin().createTopic({ name: 'orders', partitions: 2 })
    const producer = client.producer()
    const one = await producer.send({ topic: 'orders', partition: 0, key: 'k', value: 'first' })
    expect(one.offset).toBe(0)
    const batch = await producer.sendBatch(Array.from({ length: 100 }, (_, i) => ({ topic: 'orders', partition: 0, value: `m${i}` })))
    expect(batch.results.map((r) => ('offset' in r ? r.offset : -1))).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    const page = await client.consumer().fetch({ topic: 'orders', partition: 0, offset: 0, maxBytes: 1 << 20 })
    expect(page.messages.length).toBe(101)
    expect(dec.decode(page.messages[0]!.value!)).toBe('first')
    expect(dec.decode(page.messages[0]!.key!)).toBe('k')
    expect(dec.decode(page.messages[100]!.value!)).toBe('m99')
    expect(page.nextOffset).toBe(101)
    expect(page.highWatermark).toBe(101)
    await client.close()
    await n.stop()

    n = await node(dir, workers)
    cleanups.add(() => n.stop())
    client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    cleanups.add(() => client.close())
    const again = await client.consumer().fetch({ topic: 'orders', partition: 0, offset: 50 })
    expect(again.messages.map((m) => m.offset)).toEqual(Array.from({ length: 51 }, (_, i) => i + 50))
    const next = await client.producer().send({ topic: 'orders', partition: 0, value: 'after restart' })
    expect(next.offset).toBe(101)
    expect((await client.admin().listTopics()).map((t) => t.name)).toEqual(['orders'])
  })

  it('answers unknown topics, bad offsets and a second node on the same data dir with clear errors', async () => {
    const dir = await tempDir(cleanups)
    const n = await node(dir)
    cleanups.add(() => n.stop())
    const client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    cleanups.add(() => client.close())
    const e1 = await client.producer().send({ topic: 'nope', partition: 0, value: 'x' }).catch((e: unknown) => e)
    expect(e1).toBeInstanceOf(RaftmqError)
    expect((e1 as RaftmqError).code).toBe('UNKNOWN_TOPIC')
    await client.admin().createTopic({ name: 't', partitions: 1 })
    const e2 = await client.consumer().fetch({ topic: 't', partition: 0, offset: 5 }).catch((e: unknown) => e)
    expect((e2 as RaftmqError).code).toBe('OFFSET_OUT_OF_RANGE')
    const cfg = resolveConfig({ dataDir: dir, listen: '127.0.0.1:0', workers: '1', logLevel: 'silent' })
    const second = await startNode(cfg.ok ? cfg.value : (undefined as never))
    expect(second.ok).toBe(false)
    if (!second.ok) expect(second.error.message).toMatch(/in use/)
  })

  it('verifies large compressed batches in the codec pool: stores good ones, refuses corrupt ones', async () => {
    const n = await node(await tempDir(cleanups))
    cleanups.add(() => n.stop())
    const client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 'z', partitions: 1 })
    // incompressible values keep the gzip batch above the pool's threshold
    const rnd = new Prng(9)
    const values = Array.from({ length: 120 }, () => Uint8Array.from({ length: 1024 }, () => rnd.int(256)))
    const good = encodeRecordBatch(values.map((value) => ({ value })), { compression: 'gzip' })
    expect(wantsPool(good)).toBe(true)
    const ok = await client.request('produce', { timeoutMs: 5_000, partitions: [{ topic: 'z', partition: 0, batch: good }] })
    expect(ok.partitions[0]).toMatchObject({ count: 120, baseOffset: 0 })
    const bad = good.slice()
    bad[bad.length - 100] ^= 0xff // inside the compressed records: the CRC no longer matches either
    const refused = await client.request('produce', { timeoutMs: 5_000, partitions: [{ topic: 'z', partition: 0, batch: bad }] })
    expect(refused.partitions[0]!.error?.code).toBe('CORRUPT_MESSAGE')
    const page = await client.consumer().fetch({ topic: 'z', partition: 0, offset: 0, maxBytes: 1 << 22 })
    expect(page.messages.length).toBe(120)
    expect(new Uint8Array(page.messages[119]!.value!)).toEqual(values[119]) // a Buffer, compared as bytes
  })

  it('long-polls until data arrives', async () => {
    const n = await node(await tempDir(cleanups))
    cleanups.add(() => n.stop())
    const client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 'lp', partitions: 1 })
    const t0 = Date.now()
    const waiting = client.consumer().fetch({ topic: 'lp', partition: 0, offset: 0, maxWaitMs: 5_000 })
    setTimeout(() => void client.producer().send({ topic: 'lp', partition: 0, value: 'wake' }), 100)
    const page = await waiting
    expect(page.messages.length).toBe(1)
    expect(Date.now() - t0).toBeLessThan(4_000)
  })

  it('a long poll over several partitions ends when one of them gets data, answering every partition', async () => {
    const n = await node(await tempDir(cleanups))
    cleanups.add(() => n.stop())
    const client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 'lp3', partitions: 3 })
    const producer = client.producer()
    await producer.send({ topic: 'lp3', partition: 0, value: 'old' })
    const t0 = Date.now()
    // partition 0 waits past its one message, 1 and 2 at their (empty) ends
    const partitions = [0, 1, 2].map((partition) => ({ topic: 'lp3', partition, offset: partition === 0 ? 1 : 0 }))
    const waiting = client.request('fetch', { maxWaitMs: 20_000, maxBytes: 1 << 20, partitions }, 30_000)
    setTimeout(() => void producer.send({ topic: 'lp3', partition: 2, value: 'wake' }), 100)
    const r = await waiting
    // well before the 20 s deadline: the other partitions' waits were cancelled, not waited out
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(r.partitions.map((p) => [p.partition, p.error?.code, p.batches.length, p.highWatermark])).toEqual([
      [0, undefined, 0, 1],
      [1, undefined, 0, 0],
      [2, undefined, 1, 1],
    ])
    // the broker is not left holding parked waits (they would last 20 s)
    const deadline = Date.now() + 5_000
    while (n.workerRequestsInFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(n.workerRequestsInFlight()).toBe(0)
    // and a fresh long poll on a partition whose wait was cancelled wakes as usual
    const again = client.consumer().fetch({ topic: 'lp3', partition: 1, offset: 0, maxWaitMs: 20_000 })
    setTimeout(() => void producer.send({ topic: 'lp3', partition: 1, value: 'again' }), 50)
    expect((await again).messages.map((m) => new TextDecoder().decode(m.value!))).toEqual(['again'])
  })
})
