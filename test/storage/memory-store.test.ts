import { describe, expect, it } from 'vitest'
import { MemoryStoreDisk } from '../../src/storage/index.js'

const conf = { voters: [1, 2, 3] }
const bytes = (n: number): Uint8Array => new Uint8Array([n, n, n])

describe('MemoryStoreDisk (the simulator partition store)', () => {
  it('reads what was written; a crash keeps what was synced and a prefix of the unsynced flushes', async () => {
    let disk = new MemoryStoreDisk()
    const opened = await disk.open('/g', {})
    if (!opened.ok) throw new Error(opened.error.message)
    const s = opened.value.store
    s.putRecord(0, bytes(0))
    s.saveApplied({ index: 1, term: 1, conf, blob: bytes(9) })
    expect((await s.flush({ sync: true })).ok).toBe(true)
    s.putRecord(1, bytes(1))
    await s.flush({ sync: false })
    s.putRecord(2, bytes(2))
    await s.flush({ sync: false })
    const read = await s.readRecords(0, 10)
    expect(read.ok && read.value.map(([o]) => o)).toEqual([0, 1, 2])
    expect(disk.unsyncedFlushes('/g')).toBe(2)
    // in use until closed
    expect((await disk.open('/g', {})).ok).toBe(false)

    const lost = disk.crash()
    const kept1 = disk.crash(() => 1)
    for (const [d, want] of [[lost, [0]], [kept1, [0, 1]]] as const) {
      const again = await d.open('/g', { mustExist: true, expectApplied: 1 })
      if (!again.ok) throw new Error(again.error.message)
      const r = await again.value.store.readRecords(0, 10)
      expect(r.ok && r.value.map(([o]) => o)).toEqual(want)
      expect(again.value.state.applied?.index).toBe(1)
    }
    disk = lost
    // a store behind the applied index the WAL vouched for lost synced data
    expect((await disk.crash().open('/g', { mustExist: true, expectApplied: 5 })).ok).toBe(false)
    // a store the WAL says exists, missing
    const missing = await new MemoryStoreDisk().open('/g', { mustExist: true })
    expect(!missing.ok && missing.error.code).toBe('STORE_MISSING')
  })
})
