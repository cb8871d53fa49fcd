import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MemoryStorage } from '../../src/raft/index.js'
import type { Entry, HardState, Ready } from '../../src/raft/index.js'
import { GroupStore, LogEngine, MemoryWalFs, Wal, listGenerations, recoverWals, removeGenerations } from '../../src/storage/index.js'
import type { WalFs } from '../../src/storage/index.js'
import { ent, ents, ready, tempDir } from './helpers.js'

let tmp: { dir: string; remove: () => Promise<void> }
beforeEach(async () => {
  tmp = await tempDir()
})
afterEach(async () => {
  await tmp.remove()
})

const silent = { info() {}, warn() {} }
const WAL_ROOT = '/wal'
const GEN = '/wal/00000001'

/** Counts the data syncs a file system makes. */
function counting(fs: MemoryWalFs): { fs: WalFs; syncs: () => number } {
  let n = 0
  const wrapped = new Proxy(fs, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown
      if (prop === 'datasync') return (file: number) => (n++, target.datasync(file))
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  return { fs: wrapped as unknown as WalFs, syncs: () => n }
}

function engineOn(fs: WalFs, dir = join(GEN, 'w0')): LogEngine {
  const r = Wal.open({ fs, dir, segmentBytes: 1 << 16 }, () => {})
  if (!r.ok) throw new Error(r.error.message)
  return new LogEngine(r.value.wal)
}

async function createStore(group: number): Promise<string> {
  const dir = join(tmp.dir, String(group))
  const r = await GroupStore.open(dir)
  if (!r.ok) throw new Error(r.error.message)
  await r.value.store.close()
  return dir
}

async function storeState(group: number) {
  const r = await GroupStore.open(join(tmp.dir, String(group)), { mustExist: true })
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  await r.value.store.close()
  return r.value.state
}

function recover(fs: WalFs) {
  return recoverWals({ fs, walRoot: WAL_ROOT, groupDir: (g) => join(tmp.dir, String(g)), log: silent })
}

/** A view whose log starts after `index` (a host that compacted there). */
function viewAt(index: number, term: number): MemoryStorage {
  const v = new MemoryStorage([1])
  v.applySnapshot({ metadata: { index, term, conf: { voters: [1] } }, data: new Uint8Array(0) })
  return v
}

const hs = (term: number, commit: number, vote = 1): HardState => ({ term, vote, commit })
const names = (es: readonly Entry[]) => es.map((e) => `${e.index}@${e.term}`)

describe('log engine - one WAL for many groups', () => {
  it('group commit: the Readys of every group in a turn make one write and one sync, then become current', () => {
    const mem = new MemoryWalFs()
    const { fs, syncs } = counting(mem)
    const engine = engineOn(fs)
    const views = [1, 2, 3].map((g) => {
      const v = new MemoryStorage([1])
      engine.addGroup(g, v, { index: 0, term: 0 })
      return v
    })
    engine.commit()
    const before = syncs()
    for (let g = 1; g <= 3; g++) engine.stage(g, ready({ entries: ents(1, [1, 1]), hardState: hs(1, 0) }))
    expect(views[0]!.lastIndex()).toBe(0) // not current before it is durable
    expect(engine.commit().ok).toBe(true)
    expect(syncs() - before).toBe(1)
    for (const v of views) expect(v.lastIndex()).toBe(2)
  })

  it('a turn that only moves commit indexes needs no sync; its records ride with the next one', () => {
    const mem = new MemoryWalFs()
    const { fs, syncs } = counting(mem)
    const engine = engineOn(fs)
    const v = new MemoryStorage([1])
    engine.addGroup(1, v, { index: 0, term: 0 })
    engine.stage(1, ready({ entries: ents(1, [1]), hardState: hs(1, 0) }))
    engine.commit()
    const before = syncs()
    const commitOnly: Ready = { ...ready({ hardState: hs(1, 1) }), mustSync: false }
    engine.stage(1, commitOnly)
    expect(engine.commit().ok).toBe(true)
    expect(syncs() - before).toBe(0)
    expect(v.hardState().commit).toBe(1)
  })

  it('a failed commit leaves the views as they were, and the same records commit once the disk has room', () => {
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    const v = new MemoryStorage([1])
    engine.addGroup(1, v, { index: 0, term: 0 })
    engine.commit()
    mem.failNext('write', 'ENOSPC')
    engine.stage(1, ready({ entries: ents(1, [1, 1]), hardState: hs(1, 0) }))
    const r = engine.commit()
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.code).toBe('WAL_FULL')
    expect(v.lastIndex()).toBe(0)
    expect(engine.commit().ok).toBe(true)
    expect(v.lastIndex()).toBe(2)
  })
})

describe('recovery - the WAL replayed into the partition stores', () => {
  it('what was synced survives a crash, what was not is gone, and the store gets it all', async () => {
    await createStore(1)
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    engine.addGroup(1, new MemoryStorage([1]), { index: 0, term: 0 })
    engine.stage(1, ready({ entries: ents(1, [1, 1, 2]), hardState: hs(2, 2) }))
    expect(engine.commit().ok).toBe(true)
    // staged but never committed: the crash takes it
    engine.stage(1, ready({ entries: [ent(4, 2)], hardState: hs(2, 3) }))
    const after = mem.crash()
    const r = await recover(after)
    expect(r.ok).toBe(true)
    if (r.ok) {
      expect(r.value.generations).toEqual(['00000001'])
      expect(r.value.nextGeneration).toBe('00000002')
      expect(r.value.expect.get(1)).toBe(0)
    }
    const st = await storeState(1)
    expect(names(st.entries)).toEqual(['1@1', '2@1', '3@2'])
    expect(st.hardState).toEqual(hs(2, 2))
  })

  it('replays in order: a later leader replacing a suffix wins, and replay twice changes nothing', async () => {
    await createStore(1)
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    engine.addGroup(1, new MemoryStorage([1]), { index: 0, term: 0 })
    engine.stage(1, ready({ entries: ents(1, [1, 1, 1, 1]), hardState: hs(1, 1) }))
    engine.commit()
    engine.stage(1, ready({ entries: ents(3, [3]), hardState: hs(3, 2, 2) }))
    engine.commit()
    for (let round = 0; round < 2; round++) {
      expect((await recover(mem.crash())).ok).toBe(true)
      const st = await storeState(1)
      expect(names(st.entries)).toEqual(['1@1', '2@1', '3@3'])
      expect(st.hardState).toEqual(hs(3, 2, 2))
    }
  })

  it('refuses a store behind the checkpoint the log holds (it lost synced data), naming it', async () => {
    const dir = await createStore(7)
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    engine.addGroup(7, viewAt(40, 2), { index: 0, term: 0 })
    engine.checkpointBegin(7)
    engine.checkpointed(7, { index: 40, term: 2 })
    engine.stage(7, ready({ entries: [ent(41, 2)], hardState: hs(2, 41) }))
    engine.commit()
    const r = await recover(mem.crash())
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error.code).toBe('STORE_CORRUPT')
      expect(r.error.message).toContain(dir)
      expect(r.error.message).toContain('synced up to 40')
    }
  })

  it('refuses a log that resumes past the end of its store (entries lost in between)', async () => {
    await createStore(3)
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    engine.addGroup(3, viewAt(4, 1), { index: 0, term: 0 })
    engine.stage(3, ready({ entries: ents(5, [1, 1]), hardState: hs(1, 5) }))
    engine.commit()
    const r = await recover(mem.crash())
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.message).toMatch(/entries 1\.\.4 are lost/)
  })

  it('a removed group needs no store, and a missing store of a live group is refused', async () => {
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    engine.addGroup(5, new MemoryStorage([1]), { index: 0, term: 0 })
    engine.addGroup(6, new MemoryStorage([1]), { index: 0, term: 0 })
    engine.stage(5, ready({ entries: ents(1, [1]), hardState: hs(1, 1) }))
    engine.stage(6, ready({ entries: ents(1, [1]), hardState: hs(1, 1) }))
    engine.commit()
    engine.removeGroup(5)
    engine.commit()
    const r = await recover(mem.crash())
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error.code).toBe('STORE_MISSING')
      expect(r.error.message).toContain(join(tmp.dir, '6'))
    }
  })

  it('a store nothing changed since its checkpoint is not rewritten, but still held to it', async () => {
    await createStore(2)
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    engine.addGroup(2, new MemoryStorage([1]), { index: 0, term: 0 })
    engine.commit()
    const r = await recover(mem.crash())
    expect(r.ok && r.value.groups).toBe(0)
    expect(r.ok && r.value.expect.get(2)).toBe(0)
  })

  it('the replayed generations are removed once the new one is written, and are not replayed again', async () => {
    await createStore(1)
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    engine.addGroup(1, new MemoryStorage([1]), { index: 0, term: 0 })
    engine.stage(1, ready({ entries: ents(1, [1]), hardState: hs(1, 1) }))
    engine.commit()
    const r = await recover(mem)
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(removeGenerations(mem, WAL_ROOT, r.value.generations).ok).toBe(true)
    expect(listGenerations(mem, WAL_ROOT)).toEqual({ ok: true, value: [] })
    const again = await recover(mem)
    expect(again.ok && again.value.records).toBe(0)
  })

  it('carrying a checkpoint forward past a group\'s newer, uncovered entries keeps them replayed (found by the partition simulator, seed 1217 x5)', async () => {
    await createStore(5)
    await createStore(6)
    const mem = new MemoryWalFs()
    const engine = engineOn(mem) // 64 KiB segments
    engine.addGroup(5, new MemoryStorage([1]), { index: 0, term: 0 })
    engine.addGroup(6, new MemoryStorage([1]), { index: 0, term: 0 })
    // group 5's checkpoint lands in the first segment
    engine.checkpointBegin(5)
    engine.checkpointed(5, { index: 0, term: 0 })
    expect(engine.commit().ok).toBe(true)
    // group 6 fills it, so what follows goes into the next segment
    engine.stage(6, ready({ entries: [ent(1, 1, new Uint8Array(60_000))], hardState: hs(1, 1) }))
    expect(engine.commit().ok).toBe(true)
    engine.stage(6, ready({ entries: [ent(2, 1, new Uint8Array(20_000))], hardState: hs(1, 2) }))
    expect(engine.commit().ok).toBe(true)
    // group 5's acknowledged entries, in the second segment, covered by no checkpoint
    engine.stage(5, ready({ entries: ents(1, [1, 1, 1]), hardState: hs(1, 3) }))
    expect(engine.commit().ok).toBe(true)
    expect(engine.carryForward(1)).toBeGreaterThanOrEqual(1)
    expect(engine.commit().ok).toBe(true)
    const r = await recover(mem.crash())
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true)
    const st = await storeState(5)
    expect(names(st.entries)).toEqual(['1@1', '2@1', '3@1'])
    expect(st.hardState).toEqual(hs(1, 3))
  })
})

describe('recovery - a snapshot the core installed before the store took it in', () => {
  /** A store at applied 2 with entries 3..4 past it, and (if `pending`) a received snapshot at 10. */
  async function storeBehind(pending: { index: number; term: number } | null): Promise<void> {
    const r = await GroupStore.open(join(tmp.dir, '1'))
    if (!r.ok) throw new Error(r.error.message)
    const s = r.value.store
    s.saveApplied({ index: 2, term: 1, conf: { voters: [1, 2, 3] }, blob: Uint8Array.of(2) })
    s.replaceEntries(3, 2, ents(3, [1, 1]))
    if (pending) s.putPendingSnapshot({ index: pending.index, term: pending.term, conf: { voters: [1, 2, 3] }, blob: Uint8Array.of(10) })
    expect((await s.flush({ sync: true })).ok).toBe(true)
    await s.close()
  }

  /** A WAL in which the group's core installed a snapshot at 10 (term 2), and appended 11..12 after it. */
  function walWithSnapshot(): MemoryWalFs {
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    engine.addGroup(1, viewAt(2, 1), { index: 2, term: 1 })
    engine.stage(1, ready({ entries: ents(3, [1, 1]), hardState: hs(1, 2) }))
    engine.stage(1, ready({ snapshot: { metadata: { index: 10, term: 2, conf: { voters: [1, 2, 3] } }, data: new Uint8Array(0) }, hardState: hs(2, 10) }))
    engine.stage(1, ready({ entries: ents(11, [2, 2]), hardState: hs(2, 10) }))
    expect(engine.commit().ok).toBe(true)
    return mem.crash()
  }

  it('makes the received snapshot the applied state: the old entries go, those after the snapshot stay', async () => {
    await storeBehind({ index: 10, term: 2 })
    const r = await recover(walWithSnapshot())
    expect(r.ok && r.value.snapshotsInstalled).toBe(1)
    const st = await storeState(1)
    expect(st.applied).toMatchObject({ index: 10, term: 2 })
    expect([...st.applied!.blob]).toEqual([10])
    expect(st.pendingSnapshot).toBeNull()
    expect(names(st.entries)).toEqual(['11@2', '12@2'])
  })

  it('refuses a store that holds neither the snapshot nor its received copy, naming it', async () => {
    await storeBehind(null)
    const r = await recover(walWithSnapshot())
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error.code).toBe('STORE_CORRUPT')
      expect(r.error.message).toContain(join(tmp.dir, '1'))
      expect(r.error.message).toContain('snapshot at 10')
    }
  })

  it('refuses a received copy of another snapshot than the one the WAL names', async () => {
    await storeBehind({ index: 9, term: 2 })
    const r = await recover(walWithSnapshot())
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.message).toContain('a received snapshot at 9')
  })

  it('leaves a received copy the WAL never vouched for where it is (the group drops it when it opens)', async () => {
    await storeBehind({ index: 10, term: 2 })
    const mem = new MemoryWalFs()
    const engine = engineOn(mem)
    engine.addGroup(1, viewAt(2, 1), { index: 2, term: 1 })
    engine.stage(1, ready({ entries: ents(3, [1, 1, 1]), hardState: hs(1, 2) }))
    expect(engine.commit().ok).toBe(true)
    const r = await recover(mem.crash())
    expect(r.ok && r.value.snapshotsInstalled).toBe(0)
    const st = await storeState(1)
    expect(st.applied?.index).toBe(2)
    expect(names(st.entries)).toEqual(['3@1', '4@1', '5@1'])
    expect(st.pendingSnapshot?.index).toBe(10)
  })
})
