import { describe, expect, it } from 'vitest'
import { MemoryWalFs } from '../../../src/storage/wal/index.js'
import type { WalRecord } from '../../../src/storage/wal/index.js'
import { commitAll, counting, expectRecords, lyingSync, openWal, rec } from './helpers.js'

describe('wal faults - disk full', () => {
  it('ENOSPC creating the next segment is WAL_FULL; once space returns the same records commit and recover', () => {
    const fs = new MemoryWalFs()
    // a header and 7 sectors; a commit of one 100 B record takes one
    const { wal } = openWal(fs, { segmentBytes: 4096 })
    const committed: WalRecord[] = []
    for (let i = 1; i <= 5; i++) {
      const r = rec(1, i, 1, 100)
      commitAll(wal, [r])
      committed.push(r)
    }
    fs.setCapacity(fs.usedBytes) // no file may grow: the next segment cannot be made
    const batch = [rec(1, 6, 1, 1200), rec(2, 1, 1, 10)] // 3 sectors: does not fit
    for (const r of batch) wal.add(r)
    for (let attempt = 0; attempt < 3; attempt++) {
      const c = wal.commit()
      expect(c.ok).toBe(false)
      if (!c.ok) expect(c.error.code).toBe('WAL_FULL')
      expect(wal.pendingRecords).toBe(2)
    }
    const more = rec(3, 1, 1, 5)
    wal.add(more) // what arrives meanwhile joins the retry
    fs.setCapacity(Infinity)
    const c = wal.commit()
    expect(c.ok && c.value.seq).toBe(2)
    wal.close()
    expectRecords(openWal(fs.crash(), { segmentBytes: 4096 }).seen, [...committed, ...batch, more])
  })

  it('ENOSPC from a write is WAL_FULL and the retry rewrites from the last good position', () => {
    const fs = new MemoryWalFs()
    const { wal } = openWal(fs, { segmentBytes: 8192 })
    commitAll(wal, [rec(1, 1)])
    fs.shortWriteNext() // half of it lands ...
    fs.failNext('write', 'ENOSPC') // ... then the rest fails
    const r = [rec(1, 2, 1, 300), rec(1, 3, 1, 300)]
    for (const x of r) wal.add(x)
    expect(wal.commit()).toMatchObject({ ok: false, error: { code: 'WAL_FULL' } })
    expect(wal.commit().ok).toBe(true)
    commitAll(wal, [rec(1, 4)])
    wal.close()
    expectRecords(openWal(fs.crash(), { segmentBytes: 8192 }).seen, [rec(1, 1), ...r, rec(1, 4)])
  })

  it('ENOSPC on create through failNext, and background preparation that meets ENOSPC, are WAL_FULL too', async () => {
    const fs = new MemoryWalFs({ async: 'manual' })
    const { wal } = openWal(fs, { segmentBytes: 4096 })
    fs.setCapacity(fs.usedBytes)
    await fs.runAsync() // the background job fails for want of space: no prepared segment
    fs.setCapacity(Infinity)
    expect(wal.nextPrepared).toBe(false)
    for (let i = 1; i <= 5; i++) commitAll(wal, [rec(1, i, 1, 100)])
    fs.failNext('create', 'ENOSPC')
    wal.add(rec(1, 6, 1, 1200))
    expect(wal.commit()).toMatchObject({ ok: false, error: { code: 'WAL_FULL' } })
    expect(wal.commit().ok).toBe(true)
    expect(wal.activeSeq).toBe(2)
  })

  it('short writes are completed by more writev calls', () => {
    const fs = new MemoryWalFs()
    const { fs: watched, counts, reset } = counting(fs)
    const { wal } = openWal(watched, { segmentBytes: 8192 })
    reset()
    fs.shortWriteNext(2)
    commitAll(wal, [rec(1, 1, 1, 500), rec(2, 1, 1, 500)])
    expect(counts.writev).toBe(3)
    expect(counts.datasync).toBe(1)
    wal.close()
    expectRecords(openWal(fs.crash(), { segmentBytes: 8192 }).seen, [rec(1, 1, 1, 500), rec(2, 1, 1, 500)])
  })
})

describe('wal faults - I/O errors are final', () => {
  it('EIO on fdatasync is WAL_IO, and the WAL refuses every later commit without touching the disk', () => {
    const fs = new MemoryWalFs()
    const { fs: watched, counts, reset } = counting(fs)
    const { wal } = openWal(watched, { segmentBytes: 4096 })
    commitAll(wal, [rec(1, 1)])
    fs.failNext('sync', 'EIO')
    wal.add(rec(1, 2))
    const c = wal.commit()
    expect(c).toMatchObject({ ok: false, error: { code: 'WAL_IO' } })
    if (!c.ok) expect(c.error.message).toMatch(/fdatasync of .*0000000001\.wal failed: EIO/)
    reset()
    // A retried fdatasync would "succeed" (the kernel forgot the failed pages): never retry.
    expect(wal.commit()).toMatchObject({ ok: false, error: { code: 'WAL_IO' } })
    wal.add(rec(1, 3))
    expect(wal.commit()).toMatchObject({ ok: false, error: { code: 'WAL_IO' } })
    expect(wal.retire(1)).toMatchObject({ ok: false, error: { code: 'WAL_IO' } })
    expect(counts.writev ?? 0).toBe(0)
    expect(counts.datasync ?? 0).toBe(0)
    // And indeed what the failed sync held never became durable.
    expectRecords(openWal(fs.crash(), { segmentBytes: 4096 }).seen, [rec(1, 1)])
  })

  it('ENOSPC from fdatasync is WAL_IO as well: a failed sync is never retried', () => {
    const fs = new MemoryWalFs()
    const { wal } = openWal(fs, { segmentBytes: 4096 })
    fs.failNext('sync', 'ENOSPC')
    wal.add(rec(1, 1))
    expect(wal.commit()).toMatchObject({ ok: false, error: { code: 'WAL_IO' } })
    expect(wal.commit()).toMatchObject({ ok: false, error: { code: 'WAL_IO' } })
  })

  it('EIO on a write is WAL_IO, and final', () => {
    const fs = new MemoryWalFs()
    const { wal } = openWal(fs, { segmentBytes: 4096 })
    fs.failNext('write', 'EIO')
    wal.add(rec(1, 1))
    expect(wal.commit()).toMatchObject({ ok: false, error: { code: 'WAL_IO' } })
    expect(wal.commit()).toMatchObject({ ok: false, error: { code: 'WAL_IO' } })
  })

  it('EIO in background preparation fails the WAL at its next commit', async () => {
    const fs = new MemoryWalFs({ async: 'manual' })
    const { wal } = openWal(fs, { segmentBytes: 1024 })
    fs.failNext('rename', 'EIO') // the job's rename of its temp file into place
    await fs.runAsync()
    wal.add(rec(1, 1))
    const c = wal.commit()
    expect(c).toMatchObject({ ok: false, error: { code: 'WAL_IO' } })
    if (!c.ok) expect(c.error.message).toMatch(/background preparation .* failed \(renaming\): EIO/)
  })

  it('a crash after a failed commit recovers what was acknowledged before it', () => {
    const base = new MemoryWalFs()
    const lying = lyingSync(base)
    const { wal } = openWal(lying.fs, { segmentBytes: 4096 })
    commitAll(wal, [rec(1, 1), rec(2, 1)])
    base.failNext('sync', 'EIO')
    wal.add(rec(1, 2))
    expect(wal.commit().ok).toBe(false)
    for (const unsynced of ['drop', 'keep'] as const) {
      const seen = openWal(base.crash({ unsynced }), { segmentBytes: 4096 }).seen
      expectRecords(seen.slice(0, 2), [rec(1, 1), rec(2, 1)])
    }
  })
})
