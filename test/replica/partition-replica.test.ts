/**
 * PartitionReplica over a real WAL (in memory) and a real partition store: the produce
 * path's command, as the state machine, retention and fetch see it. A re-framed batch
 * is applied, retained and served by its own header; a produce command in format 1 (as
 * builds before format 2 wrote it) left in the WAL by a crash is re-applied after the
 * upgrade and served.
 */
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Prng, limits, ok } from '../../src/base/index.js'
import { PartitionStateMachine } from '../../src/partition/index.js'
import { encodeRecordBatch, readBatchHeader, setBaseOffset } from '../../src/protocol/record-batch.js'
import { GroupRuntime, HostedGroup, PartitionReplica } from '../../src/replica/index.js'
import type { ReplicaSpec } from '../../src/replica/index.js'
import { GroupStore, MemoryWalFs, recoverWals, removeGenerations } from '../../src/storage/index.js'
import { produceV1 } from '../partition/support.js'
import { tempDir } from '../storage/helpers.js'

const silent = { info() {}, warn() {}, error() {}, debug() {} }
const GROUP = 1

let tmp: { dir: string; remove: () => Promise<void> }
beforeEach(async () => {
  tmp = await tempDir()
})
afterEach(async () => {
  await tmp.remove()
})

const spec = (over: Partial<ReplicaSpec> = {}): ReplicaSpec => ({
  groupId: GROUP,
  dir: join(tmp.dir, String(GROUP)),
  nodeId: 1,
  voters: [1],
  topic: 't',
  partition: 0,
  retentionMs: 1_000,
  retentionBytes: null,
  electionTicks: 10,
  ...over,
})

/** The WAL recovered from what the last life left on `fs`, and a runtime over it. */
async function runtimeOver(fs: MemoryWalFs): Promise<{ runtime: GroupRuntime; expectApplied: number | undefined }> {
  const recovered = await recoverWals({ fs, walRoot: '/wal', groupDir: (g) => join(tmp.dir, String(g)), log: silent })
  if (!recovered.ok) throw new Error(`${recovered.error.code}: ${recovered.error.message}`)
  // small segments: a memory file system holds every pre-allocated byte
  const runtime = GroupRuntime.open({ fs, walDir: join('/wal', recovered.value.nextGeneration, 'w0'), log: silent, segmentBytes: 4 << 20 })
  if (!runtime.ok) throw new Error(runtime.error.message)
  removeGenerations(fs, '/wal', recovered.value.generations)
  return { runtime: runtime.value, expectApplied: recovered.value.expect.get(GROUP) }
}

async function openReplica(runtime: GroupRuntime, s: ReplicaSpec): Promise<PartitionReplica> {
  const r = await PartitionReplica.open(s, runtime, silent, new Prng(1))
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  return r.value
}

async function fetchAll(replica: PartitionReplica, offset = 0): Promise<Uint8Array[]> {
  const f = await replica.fetch(offset, 64 << 20, 100_000, 0)
  if (!f.ok) throw new Error(f.error.message)
  return f.batches
}

describe('partition replica - the batch header is the one home of its facts', () => {
  it("a re-framed batch is stored, answered and retained by its own header, not by the original's", async () => {
    const { runtime } = await runtimeOver(new MemoryWalFs())
    const replica = await openReplica(runtime, spec())
    // record 1 is over the message limit and the youngest: the kept records are 1,000 and 3,000
    const big = new Uint8Array(limits.produce.messageBytesMax + 1)
    const sent = encodeRecordBatch([
      { value: 'a', timestamp: 1_000 },
      { value: big, timestamp: 9_000 },
      { value: 'c', timestamp: 3_000 },
    ])
    const r = await replica.produce(sent, false)
    expect(r).toMatchObject({ ok: true, summary: { count: 3, baseOffset: 0, errors: [{ index: 1, error: { code: 'MESSAGE_TOO_LARGE' } }] } })
    expect(replica.offsets()).toEqual({ highWatermark: 2, logStartOffset: 0 })
    const [stored] = await fetchAll(replica)
    const h = readBatchHeader(stored!)
    expect(h.ok && [h.value.baseOffset, h.value.recordCount, h.value.maxTimestamp]).toEqual([0, 2, 3_000])

    // retention goes by the stored batch's maxTimestamp (3,000): kept at 3,500, dropped at 5,000;
    // by the original's (9,000) it would have stayed until 10,000
    await replica.enforceRetention(3_500)
    expect(replica.offsets().logStartOffset).toBe(0)
    await replica.enforceRetention(5_000)
    expect(replica.offsets()).toEqual({ highWatermark: 2, logStartOffset: 2 })

    await replica.close()
    await runtime.close()
  })

  it('re-applies a format 1 produce command a crash left in the WAL, after the upgrade, and serves it', async () => {
    const fs = new MemoryWalFs()
    // an earlier build's replica: it proposes format 1 and dies before its store saw a thing
    const before = await runtimeOver(fs)
    const sm = new PartitionStateMachine()
    const old = await HostedGroup.open({
      groupId: GROUP,
      dir: spec().dir,
      nodeId: 1,
      voters: [1],
      electionTicks: 10,
      runtime: before.runtime,
      log: silent,
      prng: new Prng(2),
      restore: () => ok(0),
      apply: (e) => sm.apply(e.index, e.data),
      snapshot: () => sm.snapshot(),
    })
    if (!old.ok) throw new Error(old.error.message)
    await old.value.leadAlone(5_000)
    const batches = [
      encodeRecordBatch([{ value: 'one', timestamp: 10 }, { value: 'two', timestamp: 20 }], { producerId: 8, producerEpoch: 0, baseSequence: 0 }),
      encodeRecordBatch([{ value: 'three', timestamp: 30 }]),
    ]
    for (const b of batches) expect((await old.value.actor.propose([produceV1(b, { atomic: false })])).ok).toBe(true)
    expect(sm.nextOffset).toBe(3)
    before.runtime.loop.remove(old.value.actor)
    await old.value.store.close()

    // this build, on what was synced
    const after = await runtimeOver(fs.crash())
    const replica = await openReplica(after.runtime, spec({ retentionMs: null, ...(after.expectApplied === undefined ? {} : { expectApplied: after.expectApplied }) }))
    expect(replica.offsets()).toEqual({ highWatermark: 3, logStartOffset: 0 })
    const served = (await fetchAll(replica)).map((b) => readBatchHeader(b))
    expect(served.map((h) => h.ok && [h.value.baseOffset, h.value.recordCount, h.value.maxTimestamp])).toEqual([
      [0, 2, 20],
      [2, 1, 30],
    ])
    // producer 8's retry of its format 1 batch is recognised: the idempotence state came from the batch header
    const retry = await replica.produce(batches[0]!, false)
    expect(retry).toMatchObject({ ok: true, summary: { count: 2, baseOffset: 0, duplicate: true } })
    const next = await replica.produce(encodeRecordBatch([{ value: 'four' }]), false)
    expect(next).toMatchObject({ ok: true, summary: { count: 1, baseOffset: 3 } })
    await replica.close()
    await after.runtime.close()
  })
})

describe('partition replica - a received snapshot the crash kept from being installed', () => {
  it('is dropped when the replica opens: the store serves what it held before the transfer, records written past it unseen', async () => {
    const fs = new MemoryWalFs()
    const first = await runtimeOver(fs)
    const replica = await openReplica(first.runtime, spec({ retentionMs: null }))
    for (const v of ['a', 'b', 'c']) expect((await replica.produce(encodeRecordBatch([{ value: v, timestamp: 10 }]), false)).ok).toBe(true)
    await replica.close()
    await first.runtime.close()

    // what a transfer leaves if the process dies after the received snapshot was synced, before the core took it
    const dir = spec().dir
    const opened = await GroupStore.open(dir, { mustExist: true })
    if (!opened.ok) throw new Error(opened.error.message)
    const stray = encodeRecordBatch([{ value: 'from a leader', timestamp: 20 }])
    setBaseOffset(stray, 3)
    opened.value.store.putRecord(3, stray)
    opened.value.store.putPendingSnapshot({ index: 99, term: 7, conf: { voters: [1, 2, 3] }, blob: Uint8Array.of(1, 2, 3) })
    expect((await opened.value.store.flush({ sync: true })).ok).toBe(true)
    await opened.value.store.close()

    const again = await runtimeOver(fs.crash())
    const back = await openReplica(again.runtime, spec({ retentionMs: null, ...(again.expectApplied === undefined ? {} : { expectApplied: again.expectApplied }) }))
    expect(back.offsets()).toEqual({ highWatermark: 3, logStartOffset: 0 })
    expect((await fetchAll(back)).length).toBe(3)
    await back.close()
    await again.runtime.close()
    const after = await GroupStore.open(dir, { mustExist: true })
    if (!after.ok) throw new Error(after.error.message)
    expect(after.value.state.pendingSnapshot).toBeNull()
    expect(after.value.state.applied?.index).toBeLessThan(99)
    await after.value.store.close()
  })
})
