/**
 * The client API as a KafkaJS user meets it, against a real node: wrong argument types
 * are refused at the call with INVALID_ARGUMENT naming the field (nothing is sent),
 * consumed keys and values are Buffers, and createTopic with ifNotExists runs twice.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Client, RaftmqError } from '../../src/client/index.js'
import type { Message } from '../../src/client/index.js'
import { Cleanups, startTestNode, tempDir } from '../support/node.js'

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
})
