/**
 * Client routing against a fake cluster (test/support/fake-cluster.ts): partition requests
 * go to their leader, one produce request per leader node; NOT_LEADER, lost and refused
 * connections and leaderless partitions re-route under the retry rules; metadata requests
 * are coalesced and rate limited; and on one node routing costs nothing per request.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Client, RaftmqError } from '../../src/client/index.js'
import type { ClientOptions } from '../../src/client/index.js'
import type { ProduceRequest } from '../../src/protocol/api.js'
import { FakeCluster } from '../support/fake-cluster.js'

let cluster: FakeCluster | null = null
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  await cluster?.close()
  cluster = null
})

async function start(nodes: number): Promise<FakeCluster> {
  cluster = await FakeCluster.start(nodes)
  return cluster
}

function clientOf(c: FakeCluster, opts: Partial<ClientOptions> = {}): Client {
  const client = new Client({ brokers: c.brokers(), ...opts })
  clients.push(client)
  return client
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function until(what: string, ok: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** Which partitions each produce request carried, with the node it went to. */
const produceRoutes = (c: FakeCluster): string[] =>
  c.requests('produce').map((r) => `${r.node}:${(r.body as ProduceRequest).partitions.map((p) => p.partition).join(',')}`)

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i)

describe('client routing - producer', () => {
  it('batches for partitions led by three nodes leave as three requests, one per node, in parallel', { timeout: 15_000 }, async () => {
    const c = await start(3)
    c.createTopic('t', [1, 2, 3])
    c.delays.produce = 300
    // bootstrap from node 1 only: nodes 2 and 3 are reached at the addresses the metadata gives
    const client = new Client({ brokers: [c.brokers()[0]!] })
    clients.push(client)
    const t0 = Date.now()
    const r = await client.producer().sendBatch(range(3).map((partition) => ({ topic: 't', partition, value: `v${partition}` })))
    const elapsedMs = Date.now() - t0
    expect(r.results).toEqual(range(3).map((partition) => ({ topic: 't', partition, offset: 0 })))
    expect(produceRoutes(c).sort()).toEqual(['1:0', '2:1', '3:2'])
    const at = c.requests('produce').map((q) => q.atMs)
    // one after another they would arrive 300 ms apart and take 900 ms in all
    expect(Math.max(...at) - Math.min(...at)).toBeLessThan(150)
    expect(elapsedMs).toBeLessThan(800)
  })

  it('a NOT_LEADER with a hint re-routes to the named node at once, without a metadata request', { timeout: 15_000 }, async () => {
    const c = await start(3)
    c.createTopic('t', [1])
    const client = clientOf(c)
    // a backoff would cost 5 s: the re-routed retry must not wait for one
    const producer = client.producer({ retryBackoffMs: 5_000 })
    expect((await producer.send({ topic: 't', partition: 0, value: 'a' })).offset).toBe(0)
    expect(c.requests('metadata')).toHaveLength(1)
    c.setLeader('t', 0, 2)
    const t0 = Date.now()
    expect((await producer.send({ topic: 't', partition: 0, value: 'b' })).offset).toBe(1)
    expect(Date.now() - t0).toBeLessThan(1_000)
    expect(c.requests('metadata')).toHaveLength(1)
    expect(produceRoutes(c)).toEqual(['1:0', '1:0', '2:0'])
    expect(client.cachedLeader('t', 0)).toBe(2)
    expect(c.storedValues('t', 0)).toEqual(['a', 'b'])
  })

  it('NOT_LEADER without a hint: the partitions that failed together share one metadata refresh, then succeed', { timeout: 15_000 }, async () => {
    const c = await start(3)
    c.hints = false
    c.createTopic('t', [1, 2, 3])
    const client = clientOf(c)
    const producer = client.producer({ retryBackoffMs: 50 })
    const batch = (v: string) => range(3).map((partition) => ({ topic: 't', partition, value: `${v}${partition}` }))
    await producer.sendBatch(batch('a'))
    expect(c.requests('metadata')).toHaveLength(1)
    // every partition moves: three NOT_LEADERs from three nodes
    c.setLeader('t', 0, 2)
    c.setLeader('t', 1, 3)
    c.setLeader('t', 2, 1)
    const r = await producer.sendBatch(batch('b'))
    expect(r.results).toEqual(range(3).map((partition) => ({ topic: 't', partition, offset: 1 })))
    expect(c.requests('metadata')).toHaveLength(2)
    expect(produceRoutes(c).slice(3).sort()).toEqual(['1:0', '1:2', '2:0', '2:1', '3:1', '3:2'])
    for (const p of range(3)) expect(c.storedValues('t', p)).toEqual([`a${p}`, `b${p}`])
  })

  it('an idempotent producer whose leader dies after storing a batch: every message stored exactly once, in order', { timeout: 20_000 }, async () => {
    const c = await start(3)
    c.createTopic('t', [1])
    let produced = 0
    c.beforeReply = (node, req) => {
      // the fifth batch is stored, then its leader dies before answering; node 2 takes over
      if (node !== 1 || req.api !== 'produce' || ++produced !== 5) return 'reply'
      c.setLeader('t', 0, 2)
      return 'kill'
    }
    const client = clientOf(c)
    const producer = client.producer({ idempotent: true, retryBackoffMs: 20 })
    const results = []
    for (let wave = 0; wave < 10; wave++) {
      // five concurrent sends coalesce into one batch (one request in flight per partition)
      results.push(...(await Promise.all(range(5, wave * 5).map((i) => producer.send({ topic: 't', partition: 0, value: `m${i}` })))))
    }
    expect(c.storedValues('t', 0)).toEqual(range(50).map((i) => `m${i}`))
    expect(results.map((r) => r.offset)).toEqual(range(50))
    // the lost answer's batch was resent with the same sequences and recognised
    expect(results.filter((r) => r.duplicate).map((r) => r.offset)).toEqual(range(5, 20))
    expect(c.requests('produce', 1)).toHaveLength(5)
    expect(c.requests('produce', 2).length).toBeGreaterThanOrEqual(6)
    expect(c.requests('initProducerId')).toHaveLength(1)
  })

  it('an idempotent producer retries initProducerId on another node when the one asked dies before answering', { timeout: 15_000 }, async () => {
    const c = await start(2)
    c.createTopic('t', [2])
    c.beforeReply = (node, req) => (node === 1 && req.api === 'initProducerId' ? 'kill' : 'reply')
    const client = clientOf(c)
    const r = await client.producer({ idempotent: true, retryBackoffMs: 20 }).send({ topic: 't', partition: 0, value: 'a' })
    expect(r.offset).toBe(0)
    expect(c.requests('initProducerId').map((q) => q.node)).toEqual([1, 2])
  })

  it('a plain producer retries a refused connection until its node is back, through a fresh connection', { timeout: 15_000 }, async () => {
    const c = await start(2)
    c.createTopic('t', [1])
    const client = clientOf(c)
    const producer = client.producer({ retries: 8, retryBackoffMs: 20 })
    await producer.send({ topic: 't', partition: 0, value: 'a' })
    await c.kill(1)
    setTimeout(() => void c.restart(1), 300)
    const r = await producer.send({ topic: 't', partition: 0, value: 'b' })
    expect(r.offset).toBe(1)
    expect(c.storedValues('t', 0)).toEqual(['a', 'b'])
    // node 1 was connected to twice: the dead connection was dropped and a new one opened
    expect(c.requests('hello', 1)).toHaveLength(2)
    // the metadata in between came from node 2, the one still up
    expect(c.requests('metadata', 2).length).toBeGreaterThanOrEqual(1)
  })

  it('a plain producer whose leader died re-routes to the new one the metadata names', { timeout: 15_000 }, async () => {
    const c = await start(3)
    c.hints = false
    c.createTopic('t', [1, 1])
    const client = clientOf(c)
    const producer = client.producer({ retryBackoffMs: 20 })
    await producer.sendBatch([{ topic: 't', partition: 0, value: 'a0' }, { topic: 't', partition: 1, value: 'a1' }])
    await c.kill(1)
    c.setLeader('t', 0, 2)
    c.setLeader('t', 1, 3)
    const r = await producer.sendBatch([{ topic: 't', partition: 0, value: 'b0' }, { topic: 't', partition: 1, value: 'b1' }])
    expect(r.results).toEqual([{ topic: 't', partition: 0, offset: 1 }, { topic: 't', partition: 1, offset: 1 }])
    expect(produceRoutes(c).slice(1).sort()).toEqual(['2:0', '3:1'])
    expect(c.storedValues('t', 0)).toEqual(['a0', 'b0'])
  })

  it('a node that stays unreachable fails the send with a retriable CONNECTION_CLOSED once the retries are spent', { timeout: 15_000 }, async () => {
    const c = await start(2)
    c.createTopic('t', [1])
    const client = clientOf(c)
    const producer = client.producer({ retries: 3, retryBackoffMs: 10 })
    await producer.send({ topic: 't', partition: 0, value: 'a' })
    await c.kill(1)
    const e = await producer.send({ topic: 't', partition: 0, value: 'b' }).catch((err: unknown) => err)
    expect(e).toBeInstanceOf(RaftmqError)
    expect(e).toMatchObject({ code: 'CONNECTION_CLOSED', retriable: true })
    // each retry asked node 2 where the leader is, and tried node 1 again
    expect(c.requests('metadata', 2).length).toBeGreaterThanOrEqual(3)
  })
})

describe('client routing - metadata', () => {
  it('a NOT_LEADER hint naming a node not in the metadata forces a refresh past the rate limit', { timeout: 15_000 }, async () => {
    const c = await start(3)
    c.unlisted.add(3)
    c.createTopic('t', [1])
    // a refresh that waited for the rate limit would take 20 s
    const client = clientOf(c, { metadataMinIntervalMs: 20_000 })
    const producer = client.producer({ retryBackoffMs: 300 })
    await producer.send({ topic: 't', partition: 0, value: 'a' })
    c.unlisted.delete(3)
    c.setLeader('t', 0, 3)
    const t0 = Date.now()
    expect((await producer.send({ topic: 't', partition: 0, value: 'b' })).offset).toBe(1)
    expect(Date.now() - t0).toBeLessThan(2_000)
    const metadata = c.requests('metadata')
    expect(metadata).toHaveLength(2)
    // asked as soon as the hint came, not after the backoff
    expect(metadata[1]!.atMs - c.requests('produce', 1)[1]!.atMs).toBeLessThan(150)
    expect(produceRoutes(c)).toEqual(['1:0', '1:0', '3:0'])
  })

  it('refreshes start at least metadataMinIntervalMs apart however fast the failures come', { timeout: 15_000 }, async () => {
    const c = await start(2)
    c.hints = false
    c.createTopic('t', [2])
    // the metadata keeps naming node 1, which keeps refusing: every retry asks again
    c.misreport('t', 0, 1)
    const client = clientOf(c, { metadataMinIntervalMs: 200 })
    const e = await client.producer({ retries: 5, retryBackoffMs: 1 }).send({ topic: 't', partition: 0, value: 'x' }).catch((err: unknown) => err)
    expect(e).toMatchObject({ code: 'NOT_LEADER' })
    const at = c.requests('metadata').map((r) => r.atMs)
    expect(at).toHaveLength(6) // the first lookup and one per retry
    // without the limit they would come 1-16 ms apart, with the backoff
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(190)
  })

  it('metadata older than metadataMaxAgeMs is refreshed in the background: a moved leader is learnt without a failure', { timeout: 15_000 }, async () => {
    const c = await start(2)
    c.createTopic('t', [1])
    const client = clientOf(c, { metadataMaxAgeMs: 300 })
    expect(await client.leaderFor('t', 0)).toBe(1)
    c.setLeader('t', 0, 2)
    await until('the moved leader in the cache', () => client.cachedLeader('t', 0) === 2, 2_000)
    expect(c.requests('metadata').map((r) => r.body)).toEqual([{ topics: ['t'] }, { topics: ['t'] }])
    expect(c.requests('produce')).toHaveLength(0)
  })

  it('a partition without a leader waits for one rather than failing', { timeout: 15_000 }, async () => {
    const c = await start(2)
    c.createTopic('t', [null])
    const client = clientOf(c)
    setTimeout(() => c.setLeader('t', 0, 2), 300)
    const t0 = Date.now()
    // no retries: only the lookup's own wait can carry the send past the election
    const r = await client.producer({ retries: 0 }).send({ topic: 't', partition: 0, value: 'x' })
    expect(r.offset).toBe(0)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250)
    expect(produceRoutes(c)).toEqual(['2:0'])
    // looked up again with backoff, not in a loop
    const lookups = c.requests('metadata').length
    expect(lookups).toBeGreaterThanOrEqual(2)
    expect(lookups).toBeLessThanOrEqual(5)
  })

  it('a partition that stays leaderless past leaderWaitMs is LEADER_NOT_AVAILABLE', { timeout: 15_000 }, async () => {
    const c = await start(1)
    c.createTopic('t', [null])
    const client = clientOf(c, { leaderWaitMs: 300 })
    const t0 = Date.now()
    const e = await client.producer({ retries: 0 }).send({ topic: 't', partition: 0, value: 'x' }).catch((err: unknown) => err)
    expect(e).toMatchObject({ code: 'LEADER_NOT_AVAILABLE', retriable: true })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290)
    expect(c.requests('produce')).toHaveLength(0)
  })

  it('lookups of topics never seen share a metadata request: those made together, and those made while it is in flight', { timeout: 15_000 }, async () => {
    const c = await start(2)
    for (const t of ['a', 'b', 'c']) c.createTopic(t, [1, 2])
    const client = clientOf(c)
    const leaders = await Promise.all(['a', 'b', 'c'].flatMap((t) => [client.leaderFor(t, 0), client.leaderFor(t, 1)]))
    expect(leaders).toEqual([1, 2, 1, 2, 1, 2])
    // a lookup made while a request covering its topic is in flight waits for that one
    c.createTopic('d', [2])
    c.createTopic('e', [1])
    c.delays.metadata = 200
    const d0 = client.leaderFor('d', 0)
    await sleep(50)
    const late = [client.leaderFor('d', 0), client.leaderFor('e', 0)]
    expect(await Promise.all([d0, ...late])).toEqual([2, 2, 1])
    expect(c.requests('metadata').map((r) => r.body)).toEqual([{ topics: ['a', 'b', 'c'] }, { topics: ['d'] }, { topics: ['e'] }])
    c.delays.metadata = 0
    await expect(client.leaderFor('nope', 0)).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' })
    await expect(client.leaderFor('a', 7)).rejects.toMatchObject({ code: 'UNKNOWN_PARTITION' })
  })

  it('one node: a steady stream of sends, fetches and offset lookups costs one metadata request and one connection', { timeout: 15_000 }, async () => {
    const c = await start(1)
    c.createTopic('t', [1, 1])
    const client = clientOf(c)
    const producer = client.producer()
    for (let i = 0; i < 100; i++) await producer.send({ topic: 't', partition: i % 2, value: `s${i}` })
    for (let burst = 0; burst < 10; burst++) await Promise.all(range(10).map((i) => producer.send({ topic: 't', partition: i % 2, value: `b${i}` })))
    await producer.sendBatch(range(20).map((i) => ({ topic: 't', value: `k${i}`, key: `k${i}` })))
    const consumer = client.consumer()
    const page = await consumer.fetch({ topic: 't', partition: 0, offset: 0 })
    expect(page.messages.length).toBeGreaterThanOrEqual(100)
    expect(await client.admin().listOffset('t', 1, 'earliest')).toBe(0)
    expect(c.requests('metadata')).toHaveLength(1)
    expect(c.requests('hello')).toHaveLength(1)
  })
})

describe('client routing - consumer', () => {
  it('subscribe rides through a leader dying and a leader moving, with no gaps and no repeats', { timeout: 20_000 }, async () => {
    const c = await start(3)
    c.createTopic('t', [1])
    const client = clientOf(c)
    const producer = client.producer({ retryBackoffMs: 20 })
    for (let i = 0; i < 30; i++) await producer.send({ topic: 't', partition: 0, value: `m${i}` })
    const stop = new AbortController()
    const got: string[] = []
    let writing: Promise<void> = Promise.resolve()
    for await (const m of client.consumer({ retryBackoffMs: 20 }).subscribe({ topic: 't', partition: 0, from: 'earliest', maxWaitMs: 100, signal: stop.signal })) {
      got.push(Buffer.from(m.value!).toString())
      if (got.length === 10) {
        // node 1 dies mid-read; node 2 leads from here, and the rest is written there
        await c.kill(1)
        c.setLeader('t', 0, 2)
        writing = (async () => {
          for (let i = 30; i < 60; i++) {
            await producer.send({ topic: 't', partition: 0, value: `m${i}` })
            await sleep(2)
          }
        })()
      }
      // then node 3 takes over while the consumer long-polls on node 2 (a NOT_LEADER with hint)
      if (got.length === 40) c.setLeader('t', 0, 3)
      if (got.length === 60) stop.abort()
    }
    await writing
    expect(got).toEqual(range(60).map((i) => `m${i}`))
    expect(c.requests('fetch', 2).length).toBeGreaterThanOrEqual(1)
    expect(c.requests('fetch', 3).length).toBeGreaterThanOrEqual(1)
    expect(c.storedValues('t', 0)).toEqual(range(60).map((i) => `m${i}`))
  })

  it('fetch and listOffset follow a NOT_LEADER hint to the leader', { timeout: 15_000 }, async () => {
    const c = await start(2)
    c.createTopic('t', [1])
    const client = clientOf(c)
    await client.producer().sendBatch(range(3).map((i) => ({ topic: 't', partition: 0, value: `m${i}` })))
    c.setLeader('t', 0, 2)
    const consumer = client.consumer({ retryBackoffMs: 5_000 })
    const t0 = Date.now()
    expect((await consumer.fetch({ topic: 't', partition: 0, offset: 1 })).messages.map((m) => m.offset)).toEqual([1, 2])
    expect(await consumer.listOffset('t', 0, 'latest')).toBe(3)
    expect(Date.now() - t0).toBeLessThan(1_000)
    expect(c.requests('fetch').map((r) => r.node)).toEqual([1, 2])
    expect(c.requests('listOffsets').map((r) => r.node)).toEqual([2])
  })
})

describe('client routing - admin and lifecycle', () => {
  it('createTopic passes the replication factor through; the metadata brings each partition its replicas', { timeout: 15_000 }, async () => {
    const c = await start(3)
    const client = clientOf(c)
    await client.admin().createTopic({ name: 'r', partitions: 2, replicationFactor: 3 })
    expect(c.requests('createTopic')[0]!.body).toMatchObject({ name: 'r', partitions: 2, replicationFactor: 3 })
    expect(await client.leaderFor('r', 1)).toBe(2)
    expect(client.partitionRoute('r', 1)).toEqual({ leader: 2, replicas: [2, 3, 1] })
  })

  it('close() closes the connection to every node it opened', { timeout: 15_000 }, async () => {
    const c = await start(3)
    c.createTopic('t', [1, 2, 3])
    const client = clientOf(c)
    await client.producer().sendBatch(range(3).map((partition) => ({ topic: 't', partition, value: 'x' })))
    await until('a connection to each node', () => [1, 2, 3].every((id) => c.openSockets(id) === 1))
    await client.close()
    await until('every connection closed', () => c.openSockets() === 0)
    await expect(client.producer().send({ topic: 't', partition: 0, value: 'y' })).rejects.toMatchObject({ code: 'CLIENT_CLOSED' })
  })
})
