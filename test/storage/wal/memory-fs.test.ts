import { describe, expect, it } from 'vitest'
import { Prng } from '../../../src/base/index.js'
import { MemoryWalFs } from '../../../src/storage/wal/index.js'
import type { WalFile } from '../../../src/storage/wal/index.js'

function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: { code: string; message: string } }): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  return r.value
}

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs)

/** A file /d/f holding `content`, created, synced and its entry synced. */
function durableFile(content: Uint8Array): { fs: MemoryWalFs; h: WalFile } {
  const fs = new MemoryWalFs()
  unwrap(fs.mkdirp('/d'))
  const h = unwrap(fs.create('/d/f'))
  unwrap(fs.writev(h, [content], 0))
  unwrap(fs.datasync(h))
  unwrap(fs.syncDir('/d'))
  return { fs, h }
}

describe('memory fs - durability', () => {
  it('a write is durable only after datasync', () => {
    const { fs, h } = durableFile(bytes(1, 2, 3))
    unwrap(fs.writev(h, [bytes(9, 9)], 1))
    expect([...fs.readAll('/d/f')]).toEqual([1, 9, 9])
    expect([...fs.crash().readAll('/d/f')]).toEqual([1, 2, 3])
    unwrap(fs.datasync(h))
    expect([...fs.crash().readAll('/d/f')]).toEqual([1, 9, 9])
  })

  it('an unsynced extension is lost with its size', () => {
    const { fs, h } = durableFile(bytes(1, 2))
    unwrap(fs.writev(h, [bytes(3, 4)], 2))
    expect([...fs.crash().readAll('/d/f')]).toEqual([1, 2])
  })

  it('a created file exists after a crash only once its directory is synced, even if its data was', () => {
    const fs = new MemoryWalFs()
    unwrap(fs.mkdirp('/d'))
    const h = unwrap(fs.create('/d/f'))
    unwrap(fs.writev(h, [bytes(1)], 0))
    unwrap(fs.datasync(h))
    expect(fs.crash().exists('/d/f')).toBe(false)
    unwrap(fs.syncDir('/d'))
    expect(fs.crash().exists('/d/f')).toBe(true)
  })

  it('rename and remove are undone by a crash before syncDir', () => {
    const { fs } = durableFile(bytes(7))
    unwrap(fs.rename('/d/f', '/d/g'))
    let after = fs.crash()
    expect(after.exists('/d/f') && !after.exists('/d/g')).toBe(true)
    unwrap(fs.syncDir('/d'))
    after = fs.crash()
    expect(!after.exists('/d/f') && after.exists('/d/g')).toBe(true)
    unwrap(fs.remove('/d/g'))
    expect([...fs.crash().readAll('/d/g')]).toEqual([7])
  })

  it("'keep' keeps unsynced writes and directory entries", () => {
    const fs = new MemoryWalFs()
    unwrap(fs.mkdirp('/d'))
    const h = unwrap(fs.create('/d/f'))
    unwrap(fs.writev(h, [bytes(1, 2)], 0))
    expect([...fs.crash({ unsynced: 'keep' }).readAll('/d/f')]).toEqual([1, 2])
  })

  it("'tear' keeps earlier unsynced writes and the first tearAt bytes of the last, cut back to a sector boundary", () => {
    const { fs, h } = durableFile(new Uint8Array(2048))
    unwrap(fs.writev(h, [bytes(1, 1)], 0))
    unwrap(fs.writev(h, [new Uint8Array(1600).fill(2)], 100))
    const sum = (b: Uint8Array): number => b.reduce((n, x) => n + x, 0)
    // 100 + 1000 bytes fall in sector 2 (1024..1535): the write keeps its bytes up to 1024
    const torn = fs.crash({ unsynced: 'tear', tearAt: 1000 }).readAll('/d/f')
    expect([...torn.subarray(0, 2)]).toEqual([1, 1])
    expect(sum(torn.subarray(100, 1024))).toBe(2 * 924)
    expect(sum(torn.subarray(1024))).toBe(0)
    // a tear inside the first, partly written sector keeps nothing of the write
    expect(sum(fs.crash({ unsynced: 'tear', tearAt: 300 }).readAll('/d/f').subarray(100))).toBe(0)
    // a tear past the end keeps all of it
    expect(sum(fs.crash({ unsynced: 'tear', tearAt: 1600 }).readAll('/d/f').subarray(100))).toBe(2 * 1600)
    const random = fs.crash({ unsynced: 'tear', prng: new Prng(5) }).readAll('/d/f')
    expect([...random.subarray(0, 2)]).toEqual([1, 1])
  })

  it("'sectors' keeps each 512-byte sector on its own, the same for the same seed", () => {
    const { fs, h } = durableFile(new Uint8Array(4096))
    unwrap(fs.writev(h, [new Uint8Array(4096).fill(1)], 0))
    const a = fs.crash({ unsynced: 'sectors', prng: new Prng(42) }).readAll('/d/f')
    const b = fs.crash({ unsynced: 'sectors', prng: new Prng(42) }).readAll('/d/f')
    expect(a).toEqual(b)
    const kept = [0, 1, 2, 3, 4, 5, 6, 7].map((s) => a[s * 512])
    for (let s = 0; s < 8; s++) expect(a.subarray(s * 512, s * 512 + 512).every((x) => x === kept[s])).toBe(true)
    expect(new Set(kept).size).toBe(2) // some sectors landed, some did not (for this seed)
  })
})

describe('memory fs - faults', () => {
  it('failNext fails the next calls of one kind, then lets them through', () => {
    const { fs, h } = durableFile(bytes(1))
    fs.failNext('write', 'EIO', 2)
    expect(fs.writev(h, [bytes(2)], 0)).toMatchObject({ ok: false, error: { code: 'EIO' } })
    expect(fs.writev(h, [bytes(2)], 0)).toMatchObject({ ok: false, error: { code: 'EIO' } })
    expect(fs.writev(h, [bytes(2)], 0)).toEqual({ ok: true, value: 1 })
    fs.failNext('create', 'ENOSPC')
    expect(fs.create('/d/x')).toMatchObject({ ok: false, error: { code: 'ENOSPC' } })
    fs.failNext('rename', 'EIO')
    expect(fs.rename('/d/f', '/d/y')).toMatchObject({ ok: false, error: { code: 'EIO' } })
  })

  it('a failed datasync forgets the unsynced writes (fsyncgate): a retry succeeds, a crash loses them', () => {
    const { fs, h } = durableFile(bytes(1, 2))
    unwrap(fs.writev(h, [bytes(9)], 0))
    fs.failNext('sync', 'EIO')
    expect(fs.datasync(h).ok).toBe(false)
    expect(fs.datasync(h).ok).toBe(true)
    expect([...fs.readAll('/d/f')]).toEqual([9, 2])
    expect([...fs.crash().readAll('/d/f')]).toEqual([1, 2])
  })

  it('setCapacity makes growth fail with ENOSPC, never an overwrite, until space is freed', () => {
    const { fs, h } = durableFile(new Uint8Array(100))
    fs.setCapacity(100)
    expect(fs.writev(h, [bytes(1)], 100)).toMatchObject({ ok: false, error: { code: 'ENOSPC' } })
    expect(fs.writev(h, [bytes(1)], 99).ok).toBe(true)
    const g = unwrap(fs.create('/d/g'))
    expect(fs.writev(g, [bytes(1)], 0)).toMatchObject({ ok: false, error: { code: 'ENOSPC' } })
    unwrap(fs.remove('/d/f'))
    expect(fs.writev(g, [bytes(1)], 0).ok).toBe(true)
    fs.setCapacity(Infinity)
    expect(fs.writev(g, [new Uint8Array(1000)], 0).ok).toBe(true)
  })

  it('shortWriteNext writes half and says so', () => {
    const { fs, h } = durableFile(new Uint8Array(4))
    fs.shortWriteNext()
    expect(fs.writev(h, [bytes(1, 1), bytes(2, 2)], 0)).toEqual({ ok: true, value: 2 })
    expect([...fs.readAll('/d/f')]).toEqual([1, 1, 0, 0])
  })

  it('flipBit damages the durable copy too', () => {
    const { fs } = durableFile(bytes(0, 0))
    fs.flipBit('/d/f', 1, 3)
    expect([...fs.crash().readAll('/d/f')]).toEqual([0, 8])
  })

  it("'manual' async calls wait for runAsync", async () => {
    const fs = new MemoryWalFs({ async: 'manual' })
    unwrap(fs.mkdirp('/d'))
    let done = false
    void fs.writeSyncedAsync('/d/f', true, [bytes(5)], 0).then(() => (done = true))
    await new Promise((r) => setImmediate(r))
    expect(done || fs.exists('/d/f')).toBe(false)
    expect(fs.pendingAsync).toBe(1)
    await fs.runAsync()
    expect(done).toBe(true)
    expect([...fs.readAll('/d/f')]).toEqual([5])
  })
})

describe('memory fs - crash of a crashed machine', () => {
  it('what survived one crash is durable through the next', () => {
    const { fs } = durableFile(bytes(1, 2, 3))
    const once = fs.crash()
    expect([...once.crash().readAll('/d/f')]).toEqual([1, 2, 3])
  })
})
