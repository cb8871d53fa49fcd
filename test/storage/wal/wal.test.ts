import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Prng } from '../../../src/base/index.js'
import { MemoryWalFs, NodeWalFs } from '../../../src/storage/wal/index.js'
import type { WalFs, WalRecord } from '../../../src/storage/wal/index.js'
import { DIR, commitAll, counting, expectRecords, openWal, rec, turn } from './helpers.js'

const temps: string[] = []
afterEach(async () => {
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true })
})

/** Commits of 1..5 records from 3 groups, indexes rising per group. */
function workload(seed: number, commits: number): WalRecord[][] {
  const prng = new Prng(seed)
  const next = [0, 0, 0]
  const out: WalRecord[][] = []
  for (let c = 0; c < commits; c++) {
    const batch: WalRecord[] = []
    for (let k = prng.range(1, 5); k > 0; k--) {
      const g = prng.int(3)
      batch.push(rec(g, ++next[g]!, 1 + (c >> 4), prng.range(0, 300), prng.range(1, 199)))
    }
    out.push(batch)
  }
  return out
}

describe('wal - round trip', () => {
  const systems: [string, () => Promise<{ fs: WalFs; dir: string }>][] = [
    ['MemoryWalFs', async () => ({ fs: new MemoryWalFs(), dir: DIR })],
    [
      'NodeWalFs',
      async () => {
        const dir = await mkdtemp(join(tmpdir(), 'raftmq-wal-'))
        temps.push(dir)
        return { fs: new NodeWalFs(), dir: join(dir, 'wal', 'w0') }
      },
    ],
  ]
  for (const [name, make] of systems) {
    it(`${name}: what was committed comes back, in order, with its segment seq, across reopens`, async () => {
      const { fs, dir } = await make()
      const batches = workload(1, 120)
      const expected: WalRecord[] = []
      const seqs: number[] = []
      let w = openWal(fs, { dir, segmentBytes: 4096 })
      expect(w.seen).toEqual([])
      expect(w.report).toMatchObject({ segments: 1, records: 0, firstSeq: 1, lastSeq: 1, tornBytesDropped: 0 })
      for (const [c, batch] of batches.entries()) {
        const seq = commitAll(w.wal, batch)
        expected.push(...batch)
        seqs.push(...batch.map(() => seq))
        if (c % 7 === 0) await turn()
        if (c === 60) {
          w.wal.close()
          await w.wal.settled()
          w = openWal(fs, { dir, segmentBytes: 4096 })
          expectRecords(w.seen, expected)
        }
      }
      expect(w.wal.activeSeq).toBeGreaterThan(3)
      w.wal.close()
      await w.wal.settled()
      const again = openWal(fs, { dir, segmentBytes: 4096 })
      expectRecords(again.seen, expected)
      expect(again.seen.map((s) => s.seq)).toEqual(seqs)
      expect(again.report).toMatchObject({ records: expected.length, firstSeq: 1, lastSeq: w.wal.activeSeq, tornBytesDropped: 0, tornTails: [] })
      again.wal.close()
      await again.wal.settled()
    })
  }

  it('an empty commit writes nothing', () => {
    const { fs, counts } = counting(new MemoryWalFs())
    const { wal } = openWal(fs)
    for (const k of Object.keys(counts)) delete counts[k]
    expect(wal.commit()).toEqual({ ok: true, value: { seq: 1, bytes: 0 } })
    expect(counts).toEqual({})
  })

  it('pendingRecords and pendingBytes count what add() queued, until commit', () => {
    const { wal } = openWal(new MemoryWalFs())
    wal.add(rec(1, 1, 1, 10))
    wal.add(rec(2, 1, 1, 0))
    expect(wal.pendingRecords).toBe(2)
    expect(wal.pendingBytes).toBe(33 + 10 + 33)
    commitAll(wal, [])
    expect([wal.pendingRecords, wal.pendingBytes]).toEqual([0, 0])
  })

  it('add asserts what is a caller bug: a type outside 1..199, an unsafe index, a payload past the bound', () => {
    const { wal } = openWal(new MemoryWalFs())
    expect(() => wal.add({ ...rec(1, 1), type: 200 })).toThrow(/type/)
    expect(() => wal.add({ ...rec(1, 1), type: 0 })).toThrow(/type/)
    expect(() => wal.add({ ...rec(1, 1), index: 2 ** 53 })).toThrow(/index/)
    expect(() => wal.add({ ...rec(1, 1), group: -1 })).toThrow(/group/)
    expect(() => wal.add({ ...rec(1, 1), payload: new Uint8Array((64 << 20) + 1) })).toThrow(/payload/)
  })
})

describe('wal - group commit', () => {
  it('records of several groups cost exactly one writev and one datasync', async () => {
    const { fs, counts, reset } = counting(new MemoryWalFs())
    const { wal } = openWal(fs, { segmentBytes: 1 << 20 })
    await turn() // the next segment's background preparation settles
    reset()
    const batch = Array.from({ length: 40 }, (_, k) => rec(k % 4, 1 + (k >> 2)))
    commitAll(wal, batch)
    expect(counts).toEqual({ writev: 1, datasync: 1 })
  })

  it('a commit of many large records is still one writev and one datasync (every payload copied into its sectors)', async () => {
    const { fs, counts, reset } = counting(new MemoryWalFs())
    const { wal } = openWal(fs, { segmentBytes: 8 << 20 })
    await turn()
    reset()
    const batch = Array.from({ length: 600 }, (_, k) => rec(k % 8, 1 + k, 1, 5000))
    commitAll(wal, batch)
    expect(counts).toEqual({ writev: 1, datasync: 1 })
    wal.close()
    expectRecords(openWal(fs, { segmentBytes: 8 << 20 }).seen, batch)
  })

  it('a roll into the prepared segment is still one writev and one datasync', async () => {
    const { fs, counts, reset } = counting(new MemoryWalFs())
    const { wal } = openWal(fs, { segmentBytes: 8192 })
    await turn()
    // one sector each: 12 of the 15 after the header
    for (let i = 1; i <= 12; i++) commitAll(wal, [rec(1, i, 1, 100)])
    expect(wal.nextPrepared).toBe(true)
    reset()
    const before = wal.activeSeq
    commitAll(wal, [rec(1, 13, 1, 1500)])
    expect(wal.activeSeq).toBe(before + 1)
    expect(counts.writev).toBe(1)
    expect(counts.datasync).toBe(1)
    expect(counts.create ?? 0).toBe(0)
    expect(counts.rename ?? 0).toBe(0)
    expect(counts.syncDir ?? 0).toBe(0)
  })
})

describe('wal - segments', () => {
  it('a commit that does not fit goes whole into the next segment; records never span segments', () => {
    const fs = new MemoryWalFs()
    const { wal } = openWal(fs, { segmentBytes: 1024 })
    const bySeq = new Map<number, number[]>()
    const all: WalRecord[] = []
    for (let i = 1; i <= 60; i++) {
      const batch = [rec(1, i, 1, 40 + (i % 5) * 30), rec(2, i, 1, 10)]
      const seq = commitAll(wal, batch)
      bySeq.set(seq, [...(bySeq.get(seq) ?? []), i])
      all.push(...batch)
    }
    expect(bySeq.size).toBeGreaterThan(5)
    // None grew past the segment size (some are header-only files the commits extended:
    // this loop never lets the background preparation run).
    for (const name of (fs.list(DIR) as { value: string[] }).value) {
      if (name.endsWith('.wal')) expect(fs.readAll(`${DIR}/${name}`).length).toBeLessThanOrEqual(1024)
    }
    wal.close()
    const { seen } = openWal(fs, { segmentBytes: 1024 })
    expectRecords(seen, all)
    // Every record of a commit is replayed from the segment the commit said it went to.
    for (const [seq, commits] of bySeq) {
      for (const i of commits) expect(seen.filter((s) => s.index === i).map((s) => s.seq)).toEqual([seq, seq])
    }
  })

  it('a commit larger than a segment gets a segment sized to hold it', () => {
    const fs = new MemoryWalFs()
    const { wal } = openWal(fs, { segmentBytes: 1024 })
    const first = [rec(1, 1, 1, 3000)] // into the empty first segment, which grows
    const second = [rec(1, 2, 1, 100)]
    const third = [rec(1, 3, 1, 5000), rec(2, 1, 1, 2000)] // rolls, then grows the next
    const fourth = [rec(1, 4, 1, 10)]
    expect(commitAll(wal, first)).toBe(1)
    expect(commitAll(wal, second)).toBe(2)
    expect(commitAll(wal, third)).toBe(3)
    expect(commitAll(wal, fourth)).toBe(4)
    expect(fs.readAll(`${DIR}/0000000003.wal`).length).toBeGreaterThan(7000)
    wal.close()
    const { seen } = openWal(fs, { segmentBytes: 1024 })
    expectRecords(seen, [...first, ...second, ...third, ...fourth])
    expect(seen.map((s) => s.seq)).toEqual([1, 2, 3, 3, 4])
  })

  it('retire removes the oldest segments, never the active one, and a reopen starts after them', () => {
    const fs = new MemoryWalFs()
    const { wal } = openWal(fs, { segmentBytes: 1024, recycle: false })
    const bySeq = new Map<number, WalRecord[]>()
    for (let i = 1; i <= 50; i++) {
      const r = rec(1, i, 1, 100)
      const seq = commitAll(wal, [r])
      bySeq.set(seq, [...(bySeq.get(seq) ?? []), r])
    }
    const active = wal.activeSeq
    const sizeOf = (seq: number): number => fs.readAll(`${DIR}/${String(seq).padStart(10, '0')}.wal`).length
    const liveFrom = (first: number): number => Array.from({ length: active - first + 1 }, (_, k) => sizeOf(first + k)).reduce((a, b) => a + b)
    expect(wal.liveBytes).toBe(liveFrom(1))
    expect(wal.retire(3)).toEqual({ ok: true, value: undefined })
    expect(wal.liveBytes).toBe(liveFrom(4))
    const names = (fs.list(DIR) as { value: string[] }).value.filter((n) => n.endsWith('.wal'))
    expect(names[0]).toBe('0000000004.wal')
    expect(wal.retire(10_000).ok).toBe(true)
    expect(wal.activeSeq).toBe(active)
    expect(wal.liveBytes).toBe(sizeOf(active))
    commitAll(wal, [rec(1, 51, 1, 100)])
    // Each retire step was durable: a crash now changes nothing.
    const after = openWal(fs.crash(), { segmentBytes: 1024 })
    expect(after.report.firstSeq).toBe(active)
    expectRecords(after.seen, [...bySeq.get(active)!, rec(1, 51, 1, 100)])
  })

  it('retired segments are recycled: renamed for reuse, then prepared with only a header', async () => {
    const fs = new MemoryWalFs()
    const watched = counting(fs)
    const { wal } = openWal(watched.fs, { segmentBytes: 2048 })
    for (let i = 1; i <= 40; i++) {
      commitAll(wal, [rec(1, i, 1, 100)])
      await turn()
    }
    const names = (): string[] => (fs.list(DIR) as { value: string[] }).value
    expect(wal.retire(wal.activeSeq - 1).ok).toBe(true)
    expect(names().filter((n) => n.endsWith('.free')).length).toBeGreaterThan(0)
    const freeBefore = names().filter((n) => n.endsWith('.free')).length
    watched.reset()
    for (let i = 41; i <= 80; i++) {
      commitAll(wal, [rec(1, i, 1, 100)])
      await turn()
    }
    expect(names().filter((n) => n.endsWith('.free')).length).toBeLessThan(freeBefore)
    expect(watched.counts.create ?? 0).toBe(0)
    expect(watched.counts.writeSyncedAsync).toBeGreaterThan(0) // the header, into a recycled file
    wal.close()
    expectRecords(openWal(fs, { segmentBytes: 2048 }).seen.slice(-5), [76, 77, 78, 79, 80].map((i) => rec(1, i, 1, 100)))
  })
})

describe('wal - background preparation', () => {
  async function inPhase(runs: number): Promise<{ fs: MemoryWalFs; wal: ReturnType<typeof openWal>['wal']; all: WalRecord[] }> {
    const fs = new MemoryWalFs({ async: 'manual' })
    const { wal } = openWal(fs, { segmentBytes: 1024 })
    await fs.runAsync(runs)
    const all: WalRecord[] = []
    for (let i = 1; i <= 12; i++) {
      const r = rec(1, i, 1, 100)
      commitAll(wal, [r])
      all.push(r)
    }
    return { fs, wal, all }
  }

  // The fresh job's calls: 1 write+sync, 2 rename, 3 directory sync (then it is adopted).
  const phases: [string, number][] = [
    ['writing', 0],
    ['renaming', 1],
    ['syncing the directory', 2],
    ['done', 3],
  ]
  for (const [phase, runs] of phases) {
    it(`a roll while the job is ${phase} completes, and everything recovers after a crash`, async () => {
      const { fs, wal, all } = await inPhase(runs)
      expect(wal.activeSeq).toBeGreaterThan(1)
      await fs.runAsync()
      for (let i = 13; i <= 30; i++) {
        const r = rec(2, i, 1, 60)
        commitAll(wal, [r])
        all.push(r)
        await fs.runAsync()
      }
      const after = openWal(fs.crash(), { segmentBytes: 1024 })
      expectRecords(after.seen, all)
      const left = (fs.crash().list(DIR) as { value: string[] }).value
      expect(left.filter((n) => n.endsWith('.prep'))).toEqual([])
    })
  }

  it('a zero fill the writer overtook runs to its end and its file is kept for reuse; one that fails is removed off the commit thread', async () => {
    for (const fails of [false, true]) {
      const mem = new MemoryWalFs({ async: 'manual' })
      const { fs, counts, reset } = counting(mem)
      const { wal } = openWal(fs, { segmentBytes: 4 << 20 }) // four 1 MiB chunks of zero fill
      await mem.runAsync(2) // the job has created its temp file and written a first chunk
      reset()
      commitAll(wal, [rec(1, 1, 1, (4 << 20) - 4096)])
      commitAll(wal, [rec(1, 2, 1, 10_000)]) // rolls: the job is overtaken mid-fill
      expect(wal.activeSeq).toBe(2)
      if (fails) mem.setCapacity(mem.usedBytes) // the rest of the fill meets a full disk
      await mem.runAsync()
      await wal.settled()
      const names = (mem.list(DIR) as { value: string[] }).value
      expect(names.filter((n) => n.endsWith('.prep'))).toEqual([])
      expect(counts.remove ?? 0).toBe(0) // never a synchronous unlink on the commit thread
      if (fails) {
        expect(counts.removeAsync).toBeGreaterThanOrEqual(1) // and the next job, which meets the full disk too
      } else {
        // a whole, zero-filled file, now free: the next preparation only writes a header into it
        expect(counts.removeAsync ?? 0).toBe(0)
        expect(names.filter((n) => n.endsWith('.free')).length + (wal.nextPrepared ? 1 : 0)).toBeGreaterThanOrEqual(1)
        expect(counts.writeSyncedAsync).toBeGreaterThanOrEqual(4)
      }
      wal.close()
      await wal.settled()
    }
  })

  it('a roll that comes before the job is ready takes a header-only segment (no zero fill on the commit path)', async () => {
    const fs = new MemoryWalFs({ async: 'manual' })
    const { wal } = openWal(fs, { segmentBytes: 64 << 10 })
    commitAll(wal, [rec(1, 1, 1, 60_000)])
    commitAll(wal, [rec(1, 2, 1, 10_000)]) // rolls: the job has not run
    expect(wal.activeSeq).toBe(2)
    expect(fs.readAll(`${DIR}/0000000002.wal`).length).toBeLessThan(12_000)
    await fs.runAsync()
    // The overtaken job's zero-filled file is kept for reuse, not thrown away.
    expect((fs.list(DIR) as { value: string[] }).value.filter((n) => n.endsWith('.free')).length).toBe(1)
  })
})
