/**
 * The client API as a KafkaJS user meets it, against a real node: wrong argument types
 * are refused at the call with INVALID_ARGUMENT naming the field (nothing is sent),
 * consumed keys and values are Buffers, createTopic with ifNotExists runs twice, keyless
 * messages stick to a partition per batch, and a subscription outlives a broker restart.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Client, RaftmqError } from '../../src/client/index.js'
import type { Message } from '../../src/client/index.js'
import { Cleanups, startTestNode, tempDir } from '../support/node.js'
import { freePort } from '../process/broker-process.js'

const cleanups = new Cleanups()
afterEach(() => cleanups.run())

async function client(): Promise<Client> {
  const node = await startTestNode(await tempDir(cleanups))
  cleanups.add(() => node.stop())
  const c = new Client({ brokers: [`127.0.0.1:${node.address.port}`] })
  cleanups.add(() => c.close())
  return c
}

describe('client API - arguments, Buffers and ifNotExists', () => {
  it('refuses values a message cannot hold, naming the field, and sends none of a batch with one', async () => {
    const c = await client()
    await c.admin().createTopic({ name: 'args', partitions: 1 })
    const producer = c.producer()
    const refusal = async (m: unknown): Promise<string> => {
      const e = await producer.send(m as Message).then(
        () => 'sent',
        (err: unknown) => (err instanceof RaftmqError ? `${err.code}: ${err.message}` : String(err)),
      )
      return e
    }
    expect(await refusal({ topic: 'args', value: 42 })).toMatch(/^INVALID_ARGUMENT: message\.value: a string, a Uint8Array\/Buffer or null, got a number \(convert it/)
    expect(await refusal({ topic: 'args', value: { a: 1 } })).toMatch(/^INVALID_ARGUMENT: message\.value: .* got an object \(Object\)/)
    expect(await refusal({ topic: 'args', value: undefined })).toMatch(/^INVALID_ARGUMENT: message\.value: undefined: .*null for a message without a value/)
    expect(await refusal({ topic: 'args', key: 7, value: 'x' })).toMatch(/^INVALID_ARGUMENT: message\.key: /)
    expect(await refusal({ topic: 'args', value: 'x', headers: { h: 1 } })).toMatch(/^INVALID_ARGUMENT: message\.headers\["h"\]: /)
    expect(await refusal({ topic: 'args', value: 'x', partition: -1 })).toMatch(/^INVALID_ARGUMENT: message\.partition: /)
    expect(await refusal({ value: 'x' })).toMatch(/^INVALID_ARGUMENT: message\.topic: /)
    const batch = await producer.sendBatch([{ topic: 'args', value: 'ok' }, { topic: 'args', value: 3 as unknown as string }]).catch((e: unknown) => e as RaftmqError)
    expect(batch).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('messages[1].value') })
    // nothing of the refused batch was stored; a good send still goes, and null is a tombstone
    expect((await producer.send({ topic: 'args', value: null })).offset).toBe(0)
  })

  it('hands out keys, values and header values as Buffers', async () => {
    const c = await client()
    await c.admin().createTopic({ name: 'buf', partitions: 1 })
    await c.producer().send({ topic: 'buf', partition: 0, key: 'k', value: 'hello', headers: { h: 'v' } })
    const page = await c.consumer().fetch({ topic: 'buf', partition: 0, offset: 0 })
    const m = page.messages[0]!
    expect(Buffer.isBuffer(m.value)).toBe(true)
    expect(m.value!.toString()).toBe('hello')
    expect(m.key!.toString()).toBe('k')
    expect(Buffer.isBuffer(m.headers.h)).toBe(true)
    expect(m.headers.h!.toString()).toBe('v')
  })

  it('createTopic with ifNotExists answers created: false the second time, and without it TOPIC_EXISTS', async () => {
    const c = await client()
    const admin = c.admin()
    expect(await admin.createTopic({ name: 'twice', partitions: 3, ifNotExists: true })).toEqual({ name: 'twice', partitions: 3, created: true })
    expect(await admin.createTopic({ name: 'twice', partitions: 5, ifNotExists: true })).toEqual({ name: 'twice', partitions: 3, created: false })
    await expect(admin.createTopic({ name: 'twice', partitions: 3 })).rejects.toMatchObject({ code: 'TOPIC_EXISTS' })
  })

  it('keyless messages stick to one partition per batch and move on after it (KIP-480), starting at a random one', async () => {
    const c = await client()
    await c.admin().createTopic({ name: 'sticky', partitions: 4 })
    const producer = c.producer()
    let previous = -1
    for (let round = 0; round < 12; round++) {
      const { results } = await producer.sendBatch(Array.from({ length: 10 }, (_, i) => ({ topic: 'sticky', value: `r${round}-${i}` })))
      const partitions = new Set(results.map((r) => r.partition))
      expect(partitions.size, `round ${round}`).toBe(1) // one batch, one partition
      const p = [...partitions][0]!
      expect(p, `round ${round} moved on from partition ${previous}`).not.toBe(previous)
      previous = p
    }
    // a new producer per message: the first partitions are not all partition 0 (all 0 by chance: 4^-16)
    const firsts = new Set<number>()
    for (let i = 0; i < 16; i++) firsts.add((await c.producer().send({ topic: 'sticky', value: `one-${i}` })).partition)
    expect(firsts.size).toBeGreaterThan(1)
  })

  it('a subscription rides out a broker restart: told of each retry, it resumes at the next offset, nothing twice or skipped', async () => {
    const dir = await tempDir(cleanups)
    const listen = `127.0.0.1:${await freePort()}`
    let node = await startTestNode(dir, { listen })
    const first = node
    cleanups.add(() => first.stop()) // a second stop is a no-op
    const logged: string[] = []
    const c = new Client({ brokers: [listen], logger: { warn: (_f, msg) => logged.push(msg), info: (_f, msg) => logged.push(msg) } })
    cleanups.add(() => c.close())
    const events: string[] = []
    for (const name of ['connect', 'reconnect', 'disconnect'] as const) c.on(name, (e) => events.push(`${name} ${e.nodeId}${e.error ? ` ${e.error.code}` : ''}`))
    await c.admin().createTopic({ name: 'sub', partitions: 1 })
    await c.producer().sendBatch([{ topic: 'sub', partition: 0, value: 'a' }, { topic: 'sub', partition: 0, value: 'b' }])
    const stop = new AbortController()
    const retries: string[] = []
    const seen: string[] = []
    const reading = (async () => {
      for await (const m of c.consumer().subscribe({ topic: 'sub', partition: 0, from: 'earliest', maxWaitMs: 200, signal: stop.signal, onRetry: (e) => retries.push(e.code) })) {
        seen.push(`${m.offset}:${m.value!.toString()}`)
        if (seen.length === 4) stop.abort()
      }
    })()
    for (const until = Date.now() + 10_000; seen.length < 2; await new Promise((r) => setTimeout(r, 20))) if (Date.now() > until) throw new Error('nothing read')
    await node.stop()
    await new Promise((r) => setTimeout(r, 3_000)) // past the fetch's own retries
    node = await startTestNode(dir, { listen })
    cleanups.add(() => node.stop())
    const p = new Client({ brokers: [listen] })
    cleanups.add(() => p.close())
    await p.producer().sendBatch([{ topic: 'sub', partition: 0, value: 'c' }, { topic: 'sub', partition: 0, value: 'd' }])
    await reading
    expect(seen).toEqual(['0:a', '1:b', '2:c', '3:d'])
    expect(retries.length).toBeGreaterThan(0)
    expect(retries.every((code) => code === 'CONNECTION_CLOSED' || code === 'LEADER_NOT_AVAILABLE' || code === 'NOT_LEADER')).toBe(true)
    // the connection's story, as events and as log lines: connected, lost, connected again
    expect(events[0]).toBe('connect 1')
    expect(events).toContain('disconnect 1 CONNECTION_CLOSED')
    expect(events.indexOf('reconnect 1')).toBeGreaterThan(events.indexOf('disconnect 1 CONNECTION_CLOSED'))
    expect(logged).toContain('connection lost')
    expect(logged).toContain('connected again')
  }, 60_000)

  it('a subscription with maxOutageMs gives up with the last error once the broker has been gone that long', async () => {
    const dir = await tempDir(cleanups)
    const node = await startTestNode(dir)
    const c = new Client({ brokers: [`127.0.0.1:${node.address.port}`] })
    cleanups.add(() => c.close())
    await c.admin().createTopic({ name: 'gone', partitions: 1 })
    const it = c.consumer({ retries: 0 }).subscribe({ topic: 'gone', partition: 0, from: 0, maxWaitMs: 100, maxOutageMs: 1_000 })
    const first = it.next()
    await node.stop()
    const t0 = Date.now()
    await expect(first).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' })
    expect(Date.now() - t0).toBeLessThan(20_000)
  })
})
