import { cp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { afterEach, describe, expect, it } from 'vitest'
import { Client, RaftmqError } from '../../src/client/index.js'
import { resolveConfig } from '../../src/broker/config.js'
import { startNode } from '../../src/broker/node.js'
import type { RunningNode } from '../../src/broker/node.js'
import { recordKey } from '../../src/storage/keys.js'
import { Cleanups, startTestNode, tempDir } from '../support/node.js'

const cleanups = new Cleanups()
afterEach(() => cleanups.run())

async function withClient(n: RunningNode): Promise<Client> {
  const client = new Client({ brokers: [`127.0.0.1:${n.address.port}`] })
  cleanups.add(() => client.close())
  return client
}

/** A node on `dir` with one topic `t` of one partition holding three batches (offsets 0-2, 3-5, 6-8), stopped cleanly. */
async function threeBatches(dir: string): Promise<void> {
  const n = await startTestNode(dir)
  const client = await withClient(n)
  await client.admin().createTopic({ name: 't', partitions: 1 })
  const producer = client.producer()
  for (let b = 0; b < 3; b++) await producer.sendBatch([0, 1, 2].map((i) => ({ topic: 't', partition: 0, value: `b${b}m${i}` })))
  await client.close()
  await n.stop()
}

/** Edits partition 0's store (group 1) while no node runs. */
async function editStore(dir: string, edit: (db: ClassicLevel<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'groups', '1'), { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  await edit(db)
  await db.close()
}

async function fetchError(client: Client, offset: number): Promise<RaftmqError> {
  const e = await client.consumer().fetch({ topic: 't', partition: 0, offset }).catch((err: unknown) => err)
  expect(e).toBeInstanceOf(RaftmqError)
  return e as RaftmqError
}

async function startFails(dir: string): Promise<string> {
  const cfg = resolveConfig({ dataDir: dir, listen: '127.0.0.1:0', workers: '2', logLevel: 'silent', tickMs: '20', walSegmentMb: '4' })
  if (!cfg.ok) throw new Error(cfg.error.message)
  const r = await startNode(cfg.value)
  if (r.ok) {
    await r.value.stop()
    throw new Error('the node started')
  }
  return r.error.message
}

describe('broker - a bad disk is bad input: refused or reported with a code, never served wrong', () => {
  it('a stored batch that fails its CRC is STORAGE_CORRUPT with the partition and offset; the intact ones still read', async () => {
    const dir = await tempDir(cleanups)
    await threeBatches(dir)
    await editStore(dir, async (db) => {
      const v = Buffer.from((await db.get(recordKey(3)))!)
      v[v.length - 1]! ^= 0x20 // a flipped bit in the last record's value
      await db.put(recordKey(3), v)
    })
    const n = await startTestNode(dir)
    cleanups.add(() => n.stop())
    const client = await withClient(n)
    const e = await fetchError(client, 4)
    expect(e.code).toBe('STORAGE_CORRUPT')
    expect(e.retriable).toBe(false)
    expect(e.message).toMatch(/t\/0 at offset 3/)
    expect(e.message).toMatch(/CRC/)
    // a fetch from below it stops short of it rather than skip over it silently
    expect((await fetchError(client, 0)).code).toBe('STORAGE_CORRUPT')
    const after = await client.consumer().fetch({ topic: 't', partition: 0, offset: 6 })
    expect(after.messages.map((m) => m.offset)).toEqual([6, 7, 8])
  })

  it('a batch missing below the high watermark is STORAGE_CORRUPT, never an empty page', async () => {
    const dir = await tempDir(cleanups)
    await threeBatches(dir)
    await editStore(dir, (db) => db.del(recordKey(3)))
    const n = await startTestNode(dir)
    cleanups.add(() => n.stop())
    const client = await withClient(n)
    const e = await fetchError(client, 3)
    expect(e.code).toBe('STORAGE_CORRUPT')
    expect(e.message).toMatch(/missing/)
  })

  it('a partition store older than the checkpoint its WAL holds is refused at start, naming it', async () => {
    const dir = await tempDir(cleanups)
    await threeBatches(dir)
    const old = join(dir, '..', `${dir.split('/').pop()}-old-store`)
    cleanups.add(() => rm(old, { recursive: true, force: true }))
    await cp(join(dir, 'groups', '1'), old, { recursive: true })
    // more acknowledged messages, a clean stop (a checkpoint), then the store goes back in time
    const n = await startTestNode(dir)
    const client = await withClient(n)
    await client.producer().sendBatch([0, 1].map((i) => ({ topic: 't', partition: 0, value: `later${i}` })))
    await client.close()
    await n.stop()
    await rm(join(dir, 'groups', '1'), { recursive: true })
    await cp(old, join(dir, 'groups', '1'), { recursive: true })
    const why = await startFails(dir)
    expect(why).toContain(join(dir, 'groups', '1'))
    expect(why).toMatch(/lost acknowledged data/)
  })

  it('a lost metadata store stops the node with its path, instead of starting empty', async () => {
    const dir = await tempDir(cleanups)
    await threeBatches(dir)
    await rm(join(dir, 'groups', '0'), { recursive: true })
    const why = await startFails(dir)
    expect(why).toContain(join(dir, 'groups', '0'))
    expect(why).toMatch(/missing/)
    // and nothing else was touched: the partition's store is still there
    await editStore(dir, async (db) => expect(await db.get(recordKey(0))).toBeDefined())
  })

  it('a topic past the node partition cap is refused before anything is created', async () => {
    const dir = await tempDir(cleanups)
    const n = await startTestNode(dir, { maxPartitions: '5' })
    cleanups.add(() => n.stop())
    const client = await withClient(n)
    await client.admin().createTopic({ name: 'a', partitions: 3 })
    const e = await client.admin().createTopic({ name: 'b', partitions: 3 }).catch((err: unknown) => err)
    expect(e).toBeInstanceOf(RaftmqError)
    expect((e as RaftmqError).code).toBe('PARTITION_LIMIT')
    expect((e as RaftmqError).message).toMatch(/6 partitions, past its limit of 5/)
    expect((await client.admin().listTopics()).map((t) => t.name)).toEqual(['a'])
    await client.admin().createTopic({ name: 'c', partitions: 2 })
  })
})
