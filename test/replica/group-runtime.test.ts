import { describe, expect, it } from 'vitest'
import { Prng, fail, ok } from '../../src/base/index.js'
import type { Result } from '../../src/base/index.js'
import { GroupActor } from '../../src/group/index.js'
import { MemoryStorage } from '../../src/raft/index.js'
import { GroupRuntime } from '../../src/replica/index.js'
import { MemoryWalFs } from '../../src/storage/index.js'

const silent = { info() {}, warn() {}, error() {}, debug() {} }
const enc = new TextEncoder()

async function until(what: string, f: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !f(); i++) await new Promise((r) => setTimeout(r, 2))
  if (!f()) throw new Error(`timed out waiting for ${what}`)
}

/** A runtime over a MemoryWalFs whose retry timers the test fires, hosting one lone-voter group that leads. */
async function hostOne() {
  const fs = new MemoryWalFs()
  const timers: Array<() => void> = []
  const opened = GroupRuntime.open({ fs, walDir: '/wal/w0', log: silent, segmentBytes: 64 << 10, after: (_ms, fn) => timers.push(fn) })
  if (!opened.ok) throw new Error(opened.error.message)
  const runtime = opened.value
  const view = new MemoryStorage([1])
  const store: { checkpoint: Result<{ index: number; term: number }, string> } = { checkpoint: ok({ index: 0, term: 0 }) }
  expect(runtime.host(1, view, { index: 0, term: 0 }, { checkpoint: async () => store.checkpoint }).ok).toBe(true)
  const actor = new GroupActor<number>(runtime.loop, { groupId: 1, nodeId: 1, storage: view, stateMachine: { apply: () => 0 }, prng: new Prng(1), applied: 0, log: silent })
  runtime.loop.add(actor)
  actor.campaign()
  await until('the group to lead', () => actor.isLeader() && actor.appliedIndex >= view.lastIndex())
  const closeGroup = (): void => {
    runtime.loop.remove(actor)
    runtime.unhost(1, { removed: false })
  }
  return { fs, timers, runtime, actor, store, closeGroup }
}

describe('GroupRuntime - what close reports about the storage, and a stalled turn after close', () => {
  it('a healthy runtime closes with nothing to report', async () => {
    const { runtime, actor, closeGroup } = await hostOne()
    expect((await actor.propose([enc.encode('a')])).ok).toBe(true)
    closeGroup()
    expect(await runtime.close()).toEqual([])
  })

  it('a turn stalled on a full disk: close reports STORAGE_FULL, and the retry that fires after close does not reach the closed WAL', async () => {
    const { fs, timers, runtime, actor, closeGroup } = await hostOne()
    fs.failNext('write', 'ENOSPC', 1_000)
    const proposed = actor.propose([enc.encode('a')])
    await until('the loop to stall', () => runtime.loop.blocked !== null)
    expect(runtime.loop.blocked?.code).toBe('STORAGE_FULL')
    expect(timers).toHaveLength(1)
    closeGroup()
    expect((await proposed).ok).toBe(false)
    expect(await runtime.close()).toEqual([{ code: 'STORAGE_FULL', message: expect.stringMatching(/ENOSPC/) }])
    // the loop's retry timer, due after close (it used to throw "Wal.commit after close" in the worker)
    expect(() => timers.shift()!()).not.toThrow()
  })

  it('after a failed fdatasync close reports STORAGE_FAILED with the error', async () => {
    const { fs, runtime, actor, closeGroup } = await hostOne()
    fs.failNext('sync', 'EIO')
    const r = await actor.propose([enc.encode('a')])
    expect(r.ok ? null : r.error.code).toBe('STORAGE_FAILED')
    closeGroup()
    expect(await runtime.close()).toEqual([{ code: 'STORAGE_FAILED', message: expect.stringMatching(/fdatasync .* failed: EIO/) }])
  })

  it('a group whose last checkpoint could not write its store is reported at close; a later checkpoint that could clears it', async () => {
    const a = await hostOne()
    a.store.checkpoint = fail('STORE_FULL', 'group store /x: the disk is full')
    expect(await a.runtime.checkpointNow(1)).toBe(false)
    a.closeGroup()
    expect(await a.runtime.close()).toEqual([{ code: 'STORAGE_FULL', message: 'group 1: its state could not be written to its store: group store /x: the disk is full' }])

    const b = await hostOne()
    b.store.checkpoint = fail('STORE_FAILED', 'group store /x failed a write: EIO')
    expect(await b.runtime.checkpointNow(1)).toBe(false)
    b.store.checkpoint = ok({ index: b.actor.appliedIndex, term: b.actor.appliedTerm })
    expect(await b.runtime.checkpointNow(1)).toBe(true)
    b.closeGroup()
    expect(await b.runtime.close()).toEqual([])
  })
})
