/**
 * ProduceRequests against a recording stand-in for the Client: which batches share a
 * request, which node each request goes to, and how each batch learns its own answer.
 */
import { describe, expect, it } from 'vitest'
import type { Client } from '../../src/client/client.js'
import { RaftmqError } from '../../src/client/errors.js'
import { ProduceRequests } from '../../src/client/produce-requests.js'
import type { ProduceRequest, ProduceResponse } from '../../src/protocol/api.js'

class Recorder {
  readonly requests: ProduceRequest[] = []
  /** The node each request went to, in request order. */
  readonly nodes: number[] = []
  fail: RaftmqError | null = null
  /** Partition -> leader; every partition is led by node 1 unless listed. */
  leaders = new Map<string, number>()
  /** Partitions whose leader is not cached: leaderFor answers them after `lookupMs`. */
  uncached = new Set<string>()
  lookupMs = 20
  lookups = 0

  cachedLeader(topic: string, partition: number): number | undefined {
    const key = `${topic}/${partition}`
    return this.uncached.has(key) ? undefined : (this.leaders.get(key) ?? 1)
  }

  async leaderFor(topic: string, partition: number): Promise<number> {
    this.lookups++
    await new Promise((r) => setTimeout(r, this.lookupMs))
    return this.leaders.get(`${topic}/${partition}`) ?? 1
  }

  /** Answers each partition with count = its batch's length, baseOffset = its position. */
  async requestNode(node: number, api: string, body: ProduceRequest): Promise<ProduceResponse> {
    expect(api).toBe('produce')
    this.nodes.push(node)
    this.requests.push(body)
    if (this.fail) throw this.fail
    return { partitions: body.partitions.map((p, i) => ({ topic: p.topic, partition: p.partition, count: p.batch.length, baseOffset: i })) }
  }
}

const bytes = (n: number): Uint8Array => new Uint8Array(n)
const shape = (r: Recorder): string[][] => r.requests.map((q) => q.partitions.map((p) => `${p.topic}/${p.partition}${q.atomic ? '!' : ''}`))

describe('ProduceRequests', () => {
  it('sends the batches of one turn for different partitions as one request, each answered with its own entry', async () => {
    const rec = new Recorder()
    const reqs = new ProduceRequests(rec as unknown as Client, 1000)
    const answers = await Promise.all([reqs.send('a', 0, bytes(1), false), reqs.send('a', 1, bytes(2), false), reqs.send('b', 0, bytes(3), false)])
    expect(shape(rec)).toEqual([['a/0', 'a/1', 'b/0']])
    expect(answers.map((a) => a.node)).toEqual([1, 1, 1])
    expect(answers.map((a) => a.result)).toEqual([
      { topic: 'a', partition: 0, count: 1, baseOffset: 0 },
      { topic: 'a', partition: 1, count: 2, baseOffset: 1 },
      { topic: 'b', partition: 0, count: 3, baseOffset: 2 },
    ])
    // a later turn is a new request
    await reqs.send('a', 0, bytes(1), false)
    expect(shape(rec)).toEqual([['a/0', 'a/1', 'b/0'], ['a/0']])
  })

  it('opens another request for a partition already in the open one, for the other atomic flag, and past the byte cap', async () => {
    const rec = new Recorder()
    const reqs = new ProduceRequests(rec as unknown as Client, 1000, 10)
    await Promise.all([
      reqs.send('a', 0, bytes(4), false),
      reqs.send('a', 0, bytes(4), false), // same partition: second request
      reqs.send('a', 1, bytes(4), true), // atomic: its own request
      reqs.send('a', 2, bytes(4), false), // joins the first: 4 + 4 <= 10
      reqs.send('a', 3, bytes(4), false), // the first would pass 10 bytes: joins the second
    ])
    expect(shape(rec)).toEqual([['a/0', 'a/2'], ['a/0', 'a/3'], ['a/1!']])
  })

  it('rejects every batch of a request that fails, with the request error', async () => {
    const rec = new Recorder()
    rec.fail = new RaftmqError('CONNECTION_CLOSED', 'gone')
    const reqs = new ProduceRequests(rec as unknown as Client, 1000)
    const settled = await Promise.allSettled([reqs.send('a', 0, bytes(1), false), reqs.send('a', 1, bytes(1), false)])
    expect(settled.map((s) => (s.status === 'rejected' ? (s.reason as RaftmqError).code : 'ok'))).toEqual(['CONNECTION_CLOSED', 'CONNECTION_CLOSED'])
    expect(rec.requests).toHaveLength(1)
  })

  it('refuses a response whose entries do not match the request: INVALID_RESPONSE', async () => {
    const client = { cachedLeader: () => 1, requestNode: async () => ({ partitions: [{ topic: 'a', partition: 1, count: 1, baseOffset: 0 }] }) }
    const reqs = new ProduceRequests(client as unknown as Client, 1000)
    const settled = await Promise.allSettled([reqs.send('a', 0, bytes(1), false), reqs.send('a', 1, bytes(1), false)])
    expect(settled.map((s) => (s.status === 'rejected' ? (s.reason as RaftmqError).code : 'ok'))).toEqual(['INVALID_RESPONSE', 'INVALID_RESPONSE'])
  })
  it('sends one request per leader node in the same turn, each with only the partitions that node leads', async () => {
    const rec = new Recorder()
    rec.leaders = new Map([['a/1', 2], ['a/2', 3], ['b/0', 2]])
    const reqs = new ProduceRequests(rec as unknown as Client, 1000)
    const answers = await Promise.all([reqs.send('a', 0, bytes(1), false), reqs.send('a', 1, bytes(1), false), reqs.send('a', 2, bytes(1), false), reqs.send('b', 0, bytes(1), false)])
    expect(rec.nodes).toEqual([1, 2, 3])
    expect(shape(rec)).toEqual([['a/0'], ['a/1', 'b/0'], ['a/2']])
    expect(answers.map((a) => a.node)).toEqual([1, 2, 3, 2])
    expect(rec.lookups).toBe(0) // every leader was cached: no lookup on the hot path
  })

  it('sends the batches whose leader is cached at once, and the others together once their lookups answer', async () => {
    const rec = new Recorder()
    rec.lookupMs = 50
    rec.uncached = new Set(['a/1', 'a/2'])
    rec.leaders = new Map([['a/1', 2], ['a/2', 2]])
    const reqs = new ProduceRequests(rec as unknown as Client, 1000)
    const first = reqs.send('a', 0, bytes(1), false)
    const later = Promise.all([reqs.send('a', 1, bytes(1), false), reqs.send('a', 2, bytes(1), false)])
    await first
    expect(shape(rec)).toEqual([['a/0']]) // did not wait for the lookups
    await later
    expect(rec.nodes).toEqual([1, 2])
    expect(shape(rec)).toEqual([['a/0'], ['a/1', 'a/2']])
  })

  it('rejects a batch whose leader lookup fails with the lookup error, and sends the rest', async () => {
    const rec = new Recorder()
    rec.uncached = new Set(['a/1'])
    rec.leaderFor = async () => {
      throw new RaftmqError('UNKNOWN_PARTITION', 'no such partition')
    }
    const reqs = new ProduceRequests(rec as unknown as Client, 1000)
    const settled = await Promise.allSettled([reqs.send('a', 0, bytes(1), false), reqs.send('a', 1, bytes(1), false)])
    expect(settled.map((s) => (s.status === 'rejected' ? (s.reason as RaftmqError).code : 'ok'))).toEqual(['ok', 'UNKNOWN_PARTITION'])
    expect(shape(rec)).toEqual([['a/0']])
  })
})
