/**
 * A full disk, for real: a node on a 64 MiB tmpfs (mounted by the test, which needs root,
 * as CI runs) is filled up. Writes must answer STORAGE_FULL (retriable) without losing
 * anything acknowledged, reads must go on, writes must resume by themselves once space is
 * freed, and a node must start on the full disk and serve reads.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client, RaftmqError } from '../../src/client/index.js'
import type { RunningNode } from '../../src/broker/node.js'
import { startTestNode } from '../support/node.js'

const root = process.getuid?.() === 0
let mnt = ''

beforeAll(async () => {
  if (!root) return
  mnt = await mkdtemp(join(tmpdir(), 'raftmq-full-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mnt])
})

afterAll(() => {
  if (!mnt) return
  execFileSync('umount', [mnt])
  rmSync(mnt, { recursive: true, force: true })
})

async function until<T>(what: string, f: () => Promise<T | null>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await f()
    if (v !== null) return v
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

// needs root to mount the small file system (CI runs as root)
describe.runIf(root)('process - a full disk', () => {
  it('refuses writes with STORAGE_FULL, keeps serving reads, resumes once space is freed, and starts on a full disk', async () => {
    const dir = join(mnt, 'data')
    mkdirSync(dir)
    const filler = join(mnt, 'filler')
    writeFileSync(filler, Buffer.alloc(12 << 20))
    // the node keeps a 24 MiB ballast in its data directory: released when it starts on the full disk
    let node: RunningNode = await startTestNode(dir, { workers: '1', walSegmentMb: '2', ballastMb: '24' })
    let client = new Client({ brokers: [`127.0.0.1:${node.address.port}`], requestTimeoutMs: 10_000 })
    try {
      await client.admin().createTopic({ name: 't', partitions: 1 })
      const producer = client.producer({ retries: 0 })
      const value = 'x'.repeat(100_000)
      const acked: number[] = []
      let refused: RaftmqError | null = null
      for (let i = 0; i < 400 && refused === null; i++) {
        const r = await producer.sendBatch(Array.from({ length: 5 }, () => ({ topic: 't', partition: 0, value }))).catch((e: unknown) => e)
        if (r instanceof RaftmqError) refused = r
        else if (r instanceof Error) throw r
        else {
          const results = (r as { results: Array<{ offset?: number; error?: { code: string; message: string } }> }).results
          const failed = results.find((x) => x.error)
          if (failed) refused = new RaftmqError(failed.error!.code as 'STORAGE_FULL', failed.error!.message)
          else for (const x of results) acked.push(x.offset!)
        }
      }
      expect(refused?.code).toBe('STORAGE_FULL')
      expect(refused?.retriable).toBe(true)
      expect(acked.length).toBeGreaterThan(0)

      // reads go on while the disk is full, and everything acknowledged is there
      const readAll = async (c: Client): Promise<number[]> => {
        const got: number[] = []
        let offset = 0
        for (;;) {
          const page = await c.consumer().fetch({ topic: 't', partition: 0, offset, maxBytes: 4 << 20 })
          for (const m of page.messages) got.push(m.offset)
          if (page.nextOffset >= page.highWatermark) return got
          offset = page.nextOffset
        }
      }
      expect(await readAll(client)).toEqual(expect.arrayContaining(acked))

      // a node starts on the full disk and serves reads
      await client.close()
      await node.stop()
      node = await startTestNode(dir, { workers: '1', walSegmentMb: '2', ballastMb: '24' })
      client = new Client({ brokers: [`127.0.0.1:${node.address.port}`], requestTimeoutMs: 10_000 })
      expect(await readAll(client)).toEqual(expect.arrayContaining(acked))

      // space comes back: writes resume without a restart
      rmSync(filler)
      const after = await until('a write to succeed', async () => {
        const r = await client.producer({ retries: 0 }).send({ topic: 't', partition: 0, value: 'after' }).catch((e: unknown) => e)
        if (r instanceof RaftmqError && r.code === 'STORAGE_FULL') return null
        if (r instanceof Error) throw r
        return r as { offset: number }
      })
      expect(after.offset).toBeGreaterThan(Math.max(...acked))
    } finally {
      await client.close()
      await node.stop()
    }
  })
})
