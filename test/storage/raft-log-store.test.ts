import { Buffer } from 'node:buffer'
import { cp, rm } from 'node:fs/promises'
import { ClassicLevel } from 'classic-level'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AssertionError } from '../../src/base/index.js'
import { ConfChangeOp, EntryType, TERM_UNAVAILABLE, encodeConfChange, entryBytes } from '../../src/raft/index.js'
import { LevelRaftStorage, stateMachineKey } from '../../src/storage/index.js'
import { FORMAT_KEY, encodeEntryValue, encodeFormat, entryKey } from '../../src/storage/keys.js'
import { dataFor, ent, ents, logOf, openStore, ready, tempDir } from './helpers.js'

let dir: string
let remove: () => Promise<void>
const open: LevelRaftStorage[] = []

beforeEach(async () => {
  ;({ dir, remove } = await tempDir())
})

afterEach(async () => {
  for (const st of open.splice(0)) await st.close()
  await remove()
})

async function store(opts: Parameters<typeof openStore>[1] = {}): Promise<LevelRaftStorage> {
  const st = await openStore(dir, opts)
  open.push(st)
  return st
}

async function reopen(st: LevelRaftStorage, opts: Parameters<typeof openStore>[1] = {}): Promise<LevelRaftStorage> {
  await st.close()
  return store(opts)
}

const hs = (term: number, commit: number, vote = 1) => ({ term, vote, commit })

describe('storage - a fresh store', () => {
  it('starts like a fresh MemoryStorage: empty snapshot at 0 with the initial voters', async () => {
    let st = await store({ voters: [3, 1, 2] })
    for (let round = 0; round < 2; round++) {
      expect(st.firstIndex()).toBe(1)
      expect(st.lastIndex()).toBe(0)
      expect(st.term(0)).toBe(0)
      expect(st.term(1)).toBe(TERM_UNAVAILABLE)
      expect(st.initialState()).toEqual({ hardState: { term: 0, vote: 0, commit: 0 }, conf: { voters: [1, 2, 3] } })
      expect(st.snapshot().metadata).toEqual({ index: 0, term: 0, conf: { voters: [1, 2, 3] } })
      expect(st.snapshot().data.length).toBe(0)
      expect(st.loadApplied()).toBeNull()
      st = await reopen(st, { voters: [9] }) // the voters of an existing store are its own
    }
  })

  it('a joining node may start with no voters', async () => {
    const st = await store({ voters: [] })
    expect(st.initialState().conf.voters).toEqual([])
  })
})

describe('storage - persist and reopen', () => {
  it('entries, their types and bytes, and the hard state survive a reopen', async () => {
    let st = await store()
    const batch1 = [ent(1, 1, new Uint8Array(0)), ent(2, 1), ent(3, 1, new Uint8Array(116 * 1024).fill(0xab))]
    const cc = ent(4, 2, encodeConfChange({ op: ConfChangeOp.AddVoter, nodeId: 2 }, { voters: [1, 2] }), EntryType.ConfChange)
    await st.persist(ready({ entries: batch1, hardState: hs(1, 0) }))
    await st.persist(ready({ entries: [cc, ent(5, 2)], hardState: hs(2, 3) }))
    const check = (s: LevelRaftStorage) => {
      expect(s.lastIndex()).toBe(5)
      expect(s.hardState()).toEqual(hs(2, 3))
      expect([0, 1, 2, 3, 4, 5, 6].map((i) => s.term(i))).toEqual([0, 1, 1, 1, 2, 2, TERM_UNAVAILABLE])
      const got = s.entries(1, 6, Infinity)
      const want = [...batch1, cc, ent(5, 2)]
      expect(got.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString('hex')])).toEqual(
        want.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString('hex')]),
      )
    }
    check(st)
    st = await reopen(st)
    check(st)
    expect(st.initialState().hardState).toEqual(hs(2, 3))
  })

  // §5.3: new entries replace a conflicting suffix; a longer old suffix is deleted, not left behind
  it('truncates a conflicting suffix, on disk too', async () => {
    let st = await store()
    await st.persist(ready({ entries: ents(1, [1, 1, 1, 2, 2, 2, 2]), hardState: hs(2, 2) }))
    await st.persist(ready({ entries: ents(3, [3, 3]), hardState: hs(3, 2) }))
    expect(await logOf(st)).toEqual(['1@1', '2@1', '3@3', '4@3'])
    expect(st.term(5)).toBe(TERM_UNAVAILABLE)
    expect(() => st.entries(1, 6, Infinity)).toThrow(AssertionError)
    st = await reopen(st)
    expect(await logOf(st)).toEqual(['1@1', '2@1', '3@3', '4@3'])
    expect([2, 3, 4, 5].map((i) => st.term(i))).toEqual([1, 3, 3, TERM_UNAVAILABLE])
    // a replacement within one term, longer than what it replaces
    await st.persist(ready({ entries: ents(4, [4, 4, 4]), hardState: hs(4, 2) }))
    st = await reopen(st)
    expect(await logOf(st)).toEqual(['1@1', '2@1', '3@3', '4@4', '5@4', '6@4'])
  })

  it('refuses a gap and a term going backwards', async () => {
    const st = await store()
    await st.persist(ready({ entries: ents(1, [2, 2]) }))
    await expect(st.persist(ready({ entries: ents(4, [2]) }))).rejects.toThrow(AssertionError)
    // a failed write stops the store (fail-stop): every later write fails too
    await expect(st.persist(ready({ entries: ents(3, [2]) }))).rejects.toThrow(/failed earlier/)
  })

  it('state machine writes ride in the same batch and read back by range', async () => {
    let st = await store()
    const k = (n: number) => stateMachineKey(Uint8Array.of(0xaa, n))
    await st.persist(ready({ entries: ents(1, [1]), hardState: hs(1, 1) }), [
      { type: 'put', key: k(1), value: Uint8Array.of(1) },
      { type: 'put', key: k(2), value: Uint8Array.of(2) },
    ])
    await st.saveApplied(1, Uint8Array.of(), [{ type: 'del', key: k(1) }, { type: 'put', key: k(3), value: Uint8Array.of(3) }])
    st = await reopen(st)
    const got = await st.readStateMachine(Uint8Array.of(0xaa), null, 10)
    expect(got.map(([key, v]) => [[...key], [...v]])).toEqual([
      [[0xaa, 2], [2]],
      [[0xaa, 3], [3]],
    ])
    await expect(st.persist(ready({}), [{ type: 'put', key: entryKey(1), value: Uint8Array.of() }])).rejects.toThrow(AssertionError)
  })
})

describe('storage - commit-only Readies', () => {
  /** What a process killed now would find on disk: a copy of the directory, opened. */
  async function onDiskNow(): Promise<{ commit: number; applied: number | null }> {
    const copy = `${dir}-copy`
    await rm(copy, { recursive: true, force: true })
    await cp(dir, copy, { recursive: true })
    const st = await openStore(copy)
    const seen = { commit: st.initialState().hardState.commit, applied: st.loadApplied()?.index ?? null }
    await st.close()
    await rm(copy, { recursive: true, force: true })
    return seen
  }
  const commitOnly = (commit: number, committed: number[], term = 1) => ({
    ...ready({ hardState: hs(term, commit), committedEntries: committed.map((i) => ent(i, 1)) }),
    mustSync: false,
  })

  it('write nothing: the commit rides with the next write, with saveApplied, and with close', async () => {
    let st = await store()
    await st.persist(ready({ entries: ents(1, [1, 1, 1]), hardState: hs(1, 0) }))
    await st.persist(commitOnly(2, [1, 2]))
    expect(st.hardState()).toEqual(hs(1, 2)) // what the core reads moves at once
    expect(await onDiskNow()).toEqual({ commit: 0, applied: null })
    // the next synced Ready has no hard state of its own: the unwritten one goes with it
    await st.persist(ready({ entries: ents(4, [1]) }))
    expect(await onDiskNow()).toEqual({ commit: 2, applied: null })
    // saveApplied may save up to the in-memory commit: it writes that commit with the applied state
    await st.persist(commitOnly(4, [3, 4]))
    await st.saveApplied(4, Uint8Array.of(4))
    expect(await onDiskNow()).toEqual({ commit: 4, applied: 4 })
    // a newer hard state supersedes an unwritten one
    await st.persist(ready({ entries: ents(5, [1]) }))
    await st.persist(commitOnly(5, [5]))
    await st.persist(ready({ entries: ents(6, [2]), hardState: { term: 2, vote: 1, commit: 5 } }))
    expect(await onDiskNow()).toEqual({ commit: 5, applied: 4 })
    // close writes what is left
    await st.persist(commitOnly(6, [6], 2))
    st = await reopen(st)
    expect(st.initialState().hardState).toEqual({ term: 2, vote: 1, commit: 6 })
  })
})

describe('storage - applied state and snapshots', () => {
  it('saveApplied moves the snapshot to the applied index; a reopen loads only the entries after it', async () => {
    let st = await store({ voters: [1] })
    await st.persist(ready({ entries: ents(1, [1, 1, 2, 2, 2, 2]), hardState: hs(2, 5) }))
    await st.saveApplied(4, Uint8Array.of(4, 4))
    expect(st.loadApplied()).toEqual({ index: 4, blob: Uint8Array.of(4, 4) })
    expect(st.snapshot().metadata).toEqual({ index: 4, term: 2, conf: { voters: [1] } })
    expect([...st.snapshot().data]).toEqual([4, 4])
    expect(st.firstIndex()).toBe(1) // the log is the record store: nothing is deleted
    st = await reopen(st)
    expect({ ...st.loadApplied()!, blob: [...st.loadApplied()!.blob] }).toEqual({ index: 4, blob: [4, 4] })
    expect(st.snapshot().metadata.index).toBe(4)
    expect(st.cacheInfo()).toMatchObject({ firstIndex: 5, entries: 2 })
    expect(await logOf(st)).toEqual(['1@1', '2@1', '3@2', '4@2', '5@2', '6@2'])
    await expect(st.saveApplied(6, Uint8Array.of())).rejects.toThrow(/beyond the durable commit/)
  })

  it('follows configuration changes so the snapshot carries the configuration as of its index', async () => {
    let st = await store({ voters: [1] })
    const add2 = ent(3, 1, encodeConfChange({ op: ConfChangeOp.AddVoter, nodeId: 2 }, { voters: [1, 2] }), EntryType.ConfChange)
    await st.persist(ready({ entries: [ent(1, 1), ent(2, 1), add2, ent(4, 1)], hardState: hs(1, 4) }))
    await st.saveApplied(2, Uint8Array.of())
    expect(st.snapshot().metadata.conf.voters).toEqual([1])
    st = await reopen(st) // the change after the snapshot is found again by the load
    const add3 = ent(5, 1, encodeConfChange({ op: ConfChangeOp.AddVoter, nodeId: 3 }, { voters: [1, 2, 3] }), EntryType.ConfChange)
    await st.persist(ready({ entries: [add3], hardState: hs(1, 5) }))
    await st.saveApplied(4, Uint8Array.of())
    expect(st.snapshot().metadata.conf.voters).toEqual([1, 2])
    await st.saveApplied(5, Uint8Array.of())
    st = await reopen(st)
    expect(st.initialState().conf.voters).toEqual([1, 2, 3])
  })

  // §7 InstallSnapshot: the snapshot replaces the whole log, and becomes the applied state
  it('a Ready with a snapshot replaces the log and the applied state', async () => {
    let st = await store({ voters: [] })
    await st.persist(ready({ entries: ents(1, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), hardState: hs(1, 2, 0) }))
    const snap = { metadata: { index: 8, term: 3, conf: { voters: [1, 2, 3] } }, data: Uint8Array.of(8, 8, 8) }
    await st.persist(ready({ snapshot: snap, entries: ents(9, [3, 4]), hardState: hs(4, 8, 0) }))
    const check = async (s: LevelRaftStorage) => {
      expect(s.firstIndex()).toBe(9)
      expect(s.lastIndex()).toBe(10)
      expect([7, 8, 9, 10].map((i) => s.term(i))).toEqual([TERM_UNAVAILABLE, 3, 3, 4])
      expect(s.initialState().conf.voters).toEqual([1, 2, 3])
      expect(s.snapshot().metadata).toEqual(snap.metadata)
      expect([...s.snapshot().data]).toEqual([8, 8, 8])
      expect(s.loadApplied()?.index).toBe(8)
      expect(await logOf(s)).toEqual(['9@3', '10@4'])
      expect((await s.readEntries(5, 6)).ok).toBe(false)
    }
    await check(st)
    st = await reopen(st)
    await check(st)
  })
})

describe('storage - compaction', () => {
  it('drops entries through an index, keeps its term, and refuses to outrun the saved state', async () => {
    let st = await store()
    await st.persist(ready({ entries: ents(1, [1, 1, 2, 2, 3, 3, 3, 4, 4, 4]), hardState: hs(4, 9) }))
    await expect(st.compact(5)).rejects.toThrow(/saveApplied first/)
    st = await reopen(st) // (the failed compact stopped that handle: fail-stop)
    await st.saveApplied(7, Uint8Array.of(7))
    await st.compact(4)
    const check = async (s: LevelRaftStorage) => {
      expect(s.firstIndex()).toBe(5)
      expect(s.lastIndex()).toBe(10)
      expect([3, 4, 5, 8, 10].map((i) => s.term(i))).toEqual([TERM_UNAVAILABLE, 2, 3, 4, 4])
      expect(() => s.entries(4, 6, Infinity)).toThrow(AssertionError)
      expect(await logOf(s)).toEqual(['5@3', '6@3', '7@3', '8@4', '9@4', '10@4'])
      const r = await s.readEntries(3, 6)
      expect(r.ok ? 'ok' : r.error.code).toBe('COMPACTED')
      expect(s.snapshot().metadata.index).toBe(7) // compaction moves the floor, not the snapshot
    }
    await check(st)
    await st.compact(2) // older than the floor: nothing happens
    st = await reopen(st)
    await check(st)
    await st.compact(7)
    expect(st.firstIndex()).toBe(8)
    expect(st.term(7)).toBe(3)
    st = await reopen(st)
    expect(await logOf(st)).toEqual(['8@4', '9@4', '10@4'])
    expect(st.term(7)).toBe(3)
  })

  it('entries a crash left below the floor (an interrupted range delete) are removed at open', async () => {
    const st = await store()
    await st.persist(ready({ entries: ents(1, [1, 1, 1, 1, 1, 1]), hardState: hs(1, 6) }))
    await st.saveApplied(6, Uint8Array.of())
    await st.compact(4)
    await st.close()
    open.length = 0
    const raw = () => new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    const db = raw()
    await db.put(entryKey(2), encodeEntryValue(ent(2, 1))) // as if the delete had not reached it
    await db.close()
    const again = await store()
    expect(again.firstIndex()).toBe(5)
    expect(await logOf(again)).toEqual(['5@1', '6@1'])
    await again.close()
    open.length = 0
    const check = raw()
    expect(await check.get(entryKey(2))).toBeUndefined()
    await check.close()
  })

  it('term lookups agree with a model across many terms, compactions and truncations', async () => {
    let st = await store()
    const model: number[] = [0] // model[i] = term of entry i; model[0] stands for the floor
    let floor = 0
    let term = 1
    let commit = 0
    for (let round = 0; round < 40; round++) {
      const last = floor + model.length - 1
      let from = last + 1
      if (round % 7 === 3 && last > commit + 2) from = last - 1 // truncate an uncommitted suffix
      if (round % 3 === 0) term++
      const n = 1 + (round % 5)
      model.length = from - floor
      for (let k = 0; k < n; k++) model.push(term)
      commit = Math.max(commit, from - 1)
      await st.persist(ready({ entries: ents(from, Array(n).fill(term)), hardState: hs(term, commit) }))
      if (round % 9 === 8) {
        await st.saveApplied(commit, Uint8Array.of())
        const through = commit - 2
        await st.compact(through)
        if (through > floor) {
          model.splice(0, through - floor)
          floor = through
        }
      }
      if (round % 10 === 9) st = await reopen(st)
      expect(st.firstIndex()).toBe(floor + 1)
      for (let i = floor - 1; i <= floor + model.length; i++) {
        const want = i < floor || i >= floor + model.length ? TERM_UNAVAILABLE : model[i - floor]
        expect(st.term(i), `term(${i}) round ${round}`).toBe(want)
      }
    }
    expect(floor).toBeGreaterThan(40) // the walk did compact (and, by construction, truncate)
    expect(new Set(model).size).toBeGreaterThan(1)
  })
})

describe('storage - reading entries', () => {
  // §5.3: AppendEntries "may send more than one for efficiency", bounded in bytes
  it('entries() stops at the byte limit but returns at least one entry', async () => {
    const st = await store()
    const e1 = ent(1, 1, new Uint8Array(4))
    await st.persist(ready({ entries: [e1, ent(2, 1, new Uint8Array(4)), ent(3, 1, new Uint8Array(4))] }))
    const one = entryBytes(e1)
    expect(st.entries(1, 4, 1)).toHaveLength(1)
    expect(st.entries(1, 4, one)).toHaveLength(1)
    expect(st.entries(1, 4, 2 * one)).toHaveLength(2)
    expect(st.entries(1, 4, 1 << 20)).toHaveLength(3)
    expect(st.entries(2, 3, 1 << 20).map((e) => e.index)).toEqual([2])
    expect(() => st.entries(2, 2, 1 << 20)).toThrow(AssertionError)
    expect(() => st.entries(1, 5, 1 << 20)).toThrow(AssertionError)
    expect(() => st.entries(0, 2, 1 << 20)).toThrow(AssertionError)
  })

  it('evicts handed-out entries past the cache budget; readEntries reads them from disk', async () => {
    const per = entryBytes(ent(1, 1, new Uint8Array(100)))
    const st = await store({ entryCacheBytesMax: 10 * per })
    const all = Array.from({ length: 50 }, (_, k) => ent(k + 1, 1, dataFor(k + 1, 1, 100)))
    await st.persist(ready({ entries: all, hardState: hs(1, 50) }))
    // nothing handed out yet: all of it must stay, whatever the budget
    expect(st.cacheInfo()).toMatchObject({ firstIndex: 1, entries: 50 })
    await st.persist(ready({ committedEntries: all.slice(0, 30) }))
    expect(st.cacheInfo()).toMatchObject({ firstIndex: 31, entries: 20 })
    expect(() => st.entries(30, 32, Infinity)).toThrow(/evicted from the entry cache/)
    expect(st.entries(31, 51, Infinity)).toHaveLength(20)
    await st.persist(ready({ committedEntries: all.slice(30) }))
    expect(st.cacheInfo()).toMatchObject({ firstIndex: 41, entries: 10, bytes: 10 * per })
    const r = await st.readEntries(1, 51)
    expect(r.ok && r.value.map((e) => e.index)).toEqual(all.map((e) => e.index))
    expect(r.ok && r.value.every((e, k) => Buffer.from(e.data).equals(Buffer.from(all[k]!.data)))).toBe(true)
    const limited = await st.readEntries(35, 51, 7 * per)
    expect(limited.ok && limited.value.map((e) => e.index)).toEqual([35, 36, 37, 38, 39, 40, 41])
    const single = await st.readEntries(5, 51, 1)
    expect(single.ok && single.value.map((e) => e.index)).toEqual([5])
  })

  it('a pin keeps entries a lagging follower still needs', async () => {
    const per = entryBytes(ent(1, 1, new Uint8Array(100)))
    const st = await store({ entryCacheBytesMax: 5 * per })
    const all = Array.from({ length: 20 }, (_, k) => ent(k + 1, 1, dataFor(k + 1, 1, 100)))
    st.pinCacheFrom(8)
    await st.persist(ready({ entries: all, hardState: hs(1, 20), committedEntries: all }))
    expect(st.cacheInfo().firstIndex).toBe(8)
    st.pinCacheFrom(Infinity)
    expect(st.cacheInfo().firstIndex).toBe(16)
  })

  it('a damaged entry is reported, at open inside the loaded range and by readEntries outside it', async () => {
    let st = await store({ entryCacheBytesMax: 0 })
    await st.persist(ready({ entries: ents(1, [1, 1, 1, 1]), hardState: hs(1, 4) }))
    await st.saveApplied(2, Uint8Array.of())
    await st.close()
    open.length = 0
    const flip = async (index: number) => {
      const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
      const v = Buffer.from((await db.get(entryKey(index)))!)
      v[v.length - 1]! ^= 1
      await db.put(entryKey(index), v)
      await db.close()
    }
    await flip(1)
    st = await store()
    const r = await st.readEntries(1, 3)
    expect(r.ok ? 'ok' : r.error.code).toBe('CORRUPT')
    await st.close()
    open.length = 0
    await flip(3)
    const again = await LevelRaftStorage.open(dir, { voters: [1] })
    expect(again.ok ? 'ok' : again.error.code).toBe('STORE_CORRUPT')
    expect(again.ok ? '' : again.error.message).toMatch(/entry 3 fails its checksum/)
  })
})

describe('storage - opening', () => {
  it('a second opener of the same store is refused with a clear error', async () => {
    await store()
    const second = await LevelRaftStorage.open(dir, { voters: [1] })
    expect(second.ok).toBe(false)
    if (!second.ok) {
      expect(second.error.code).toBe('STORE_IN_USE')
      expect(second.error.message).toContain(`group store ${dir} is in use`)
    }
  })

  it('refuses a database that is not a raftmq store, or of another format', async () => {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    await db.put(Uint8Array.of(0x42), Uint8Array.of(1))
    await db.close()
    const foreign = await LevelRaftStorage.open(dir, { voters: [1] })
    expect(foreign.ok ? 'ok' : foreign.error.code).toBe('STORE_CORRUPT')
    const db2 = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    await db2.put(FORMAT_KEY, encodeFormat(99))
    await db2.close()
    const newer = await LevelRaftStorage.open(dir, { voters: [1] })
    expect(newer.ok ? 'ok' : newer.error.code).toBe('STORE_INCOMPATIBLE')
  })

  it('close waits for pending writes and is idempotent; a closed store refuses writes', async () => {
    const st = await store()
    const p = st.persist(ready({ entries: ents(1, [1, 1, 1]), hardState: hs(1, 0) }))
    await st.close()
    await p
    await st.close()
    open.length = 0
    expect(() => st.persist(ready({ entries: ents(4, [1]) }))).toThrow(AssertionError)
    const again = await store()
    expect(again.lastIndex()).toBe(3)
  })
})
